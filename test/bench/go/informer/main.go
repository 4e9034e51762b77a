// Command informer is the client-go side of the informer benchmark: a SharedIndexInformer on
// the ConfigMaps of one namespace, as a Go controller would run it. It reports the time from
// start to HasSynced, the heap held per cached object (HeapAlloc after a forced GC, minus the
// same before the informer started) and the process's RSS.
//
// Usage: informer -kubeconfig FILE -namespace NS -n 3000
// Prints one JSON line: {"seconds":0.12,"heapBytesPerObject":1500,"rssMB":40,"cached":3000}.
//
// With -events it is the client-go side of the event-throughput benchmark instead: once the
// cache has synced it prints {"synced":true} and counts the calls its handler receives
// (adds and updates); the bench then writes one JSON line to stdin, the last resourceVersion of every
// ConfigMap by name, and the program prints {"delivered":N} as soon as its handler has seen
// each of those versions, and exits.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
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
	events := flag.Bool("events", false, "count update events until stdin's resourceVersions are seen")
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
	if *events {
		countEvents(lw)
		return
	}
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

// catchUp records the last resourceVersion the handler saw per ConfigMap and closes done once
// every version of the target has been seen.
type catchUp struct {
	mu        sync.Mutex
	delivered int
	seen      map[string]string
	target    map[string]string
	done      chan struct{}
	closed    bool
}

func (c *catchUp) saw(cm *corev1.ConfigMap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered++
	c.seen[cm.Name] = cm.ResourceVersion
	c.check()
}

func (c *catchUp) expect(target map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target = target
	c.check()
}

func (c *catchUp) check() {
	if c.target == nil || c.closed {
		return
	}
	for name, rv := range c.target {
		if c.seen[name] != rv {
			return
		}
	}
	c.closed = true
	close(c.done)
}

func countEvents(lw cache.ListerWatcher) {
	c := &catchUp{seen: map[string]string{}, done: make(chan struct{})}
	informer := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, cache.Indexers{})
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.saw(obj.(*corev1.ConfigMap)) },
		UpdateFunc: func(_, obj any) { c.saw(obj.(*corev1.ConfigMap)) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		fail(fmt.Errorf("cache did not sync"))
	}
	fmt.Println(`{"synced":true}`)
	line, err := bufio.NewReader(os.Stdin).ReadBytes('\n')
	if err != nil {
		fail(err)
	}
	var target map[string]string
	if err := json.Unmarshal(line, &target); err != nil {
		fail(err)
	}
	c.expect(target)
	select {
	case <-c.done:
	case <-time.After(120 * time.Second):
		fail(fmt.Errorf("not caught up after %d updates", c.delivered))
	}
	c.mu.Lock()
	out, _ := json.Marshal(map[string]any{"delivered": c.delivered})
	c.mu.Unlock()
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
