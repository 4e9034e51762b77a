// Command informer is the client-go side of the informer benchmark: a SharedIndexInformer on
// the ConfigMaps of one namespace, as a Go controller would run it. It reports the time from
// start to HasSynced, the heap held per cached object (HeapAlloc after a forced GC, minus the
// same before the informer started) and the process's RSS.
//
// Usage: informer -kubeconfig FILE -namespace NS -n 3000
// Prints one JSON line: {"seconds":0.12,"heapBytesPerObject":1500,"rssMB":40,"cached":3000}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmRSS: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return -1
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	ns := flag.String("namespace", "default", "namespace of the ConfigMaps")
	n := flag.Int("n", 0, "ConfigMaps expected")
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	// Unthrottled, as the TypeScript contenders run.
	cfg.QPS, cfg.Burst = -1, 0
	client, err := corev1client.NewForConfig(cfg)
	if err != nil {
		fail(err)
	}
	lw := cache.NewListWatchFromClient(client.RESTClient(), "configmaps", *ns, fields.Everything())
	before := heap()
	informer := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, cache.Indexers{})
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(any) {}})
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	go informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		fail(fmt.Errorf("cache did not sync"))
	}
	secs := time.Since(start).Seconds()
	after := heap()
	cached := len(informer.GetStore().ListKeys())
	out, _ := json.Marshal(map[string]any{
		"seconds":            secs,
		"heapBytesPerObject": float64(after-before) / float64(max(*n, 1)),
		"rssMB":              rssMB(),
		"cached":             cached,
	})
	cancel()
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
