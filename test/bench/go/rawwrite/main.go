// Command rawwrite measures the apiserver's raw write rate for the ServiceCIDR workload: the
// writes a controller must make per object (add the finalizer, set the Ready condition), done
// by a bare concurrent loop of JSON merge patches with no informer, queue or throttle. It is
// the physical limit the controllers are compared against. Standard library only.
//
// Usage: rawwrite -server URL -token T -ca FILE -prefix bench- -n 300 -workers 32
// Prints one JSON line: {"writes":600,"seconds":1.23,"writesPerSecond":487.8}.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	server := flag.String("server", "", "apiserver URL")
	token := flag.String("token", "", "bearer token")
	caFile := flag.String("ca", "", "CA bundle of the apiserver")
	prefix := flag.String("prefix", "bench-", "ServiceCIDR name prefix; objects are PREFIX0..PREFIX(n-1)")
	n := flag.Int("n", 300, "objects")
	workers := flag.Int("workers", 32, "concurrent writers")
	flag.Parse()

	pool := x509.NewCertPool()
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fail(err)
		}
		pool.AppendCertsFromPEM(pem)
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxIdleConnsPerHost: *workers,
			// HTTP/2 as client-go uses it: one connection, many streams.
			ForceAttemptHTTP2: true,
		},
	}
	patch := func(path string, body string) error {
		req, err := http.NewRequest(http.MethodPatch, *server+path, bytes.NewBufferString(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+*token)
		req.Header.Set("Content-Type", "application/merge-patch+json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("PATCH %s: %s", path, resp.Status)
		}
		return nil
	}

	var next, writes, errors atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				base := fmt.Sprintf("/apis/networking.k8s.io/v1/servicecidrs/%s%d", *prefix, i)
				now := time.Now().UTC().Format(time.RFC3339)
				for _, p := range []struct{ path, body string }{
					{base, `{"metadata":{"finalizers":["networking.k8s.io/service-cidr-finalizer"]}}`},
					{base + "/status", `{"status":{"conditions":[{"type":"Ready","status":"True","reason":"","message":"Kubernetes Service CIDR is ready","lastTransitionTime":"` + now + `"}]}}`},
				} {
					if err := patch(p.path, p.body); err != nil {
						errors.Add(1)
						fmt.Fprintln(os.Stderr, err)
						continue
					}
					writes.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	out, _ := json.Marshal(map[string]any{
		"writes": writes.Load(), "errors": errors.Load(), "seconds": secs,
		"writesPerSecond": float64(writes.Load()) / secs,
	})
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
