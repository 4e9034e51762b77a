// Command workqueue is the client-go side of the work-queue benchmark: add/get/done through
// k8s.io/client-go/util/workqueue's typed rate-limiting queue for a fixed time, with 1 and with
// 50 workers (4 producers over 1,000 keys), with and without metrics (a Prometheus provider
// as kube-controller-manager registers one). Prints one JSON line per scenario.
package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

type promProvider struct{ reg *prometheus.Registry }

func (p promProvider) gauge(name, q string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "workqueue_" + name, ConstLabels: prometheus.Labels{"name": q}})
	p.reg.MustRegister(g)
	return g
}
func (p promProvider) counter(name, q string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "workqueue_" + name, ConstLabels: prometheus.Labels{"name": q}})
	p.reg.MustRegister(c)
	return c
}
func (p promProvider) histogram(name, q string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "workqueue_" + name, ConstLabels: prometheus.Labels{"name": q},
		Buckets: prometheus.ExponentialBuckets(10e-9, 10, 12)})
	p.reg.MustRegister(h)
	return h
}
func (p promProvider) NewDepthMetric(q string) workqueue.GaugeMetric { return p.gauge("depth", q) }
func (p promProvider) NewAddsMetric(q string) workqueue.CounterMetric {
	return p.counter("adds_total", q)
}
func (p promProvider) NewLatencyMetric(q string) workqueue.HistogramMetric {
	return p.histogram("queue_duration_seconds", q)
}
func (p promProvider) NewWorkDurationMetric(q string) workqueue.HistogramMetric {
	return p.histogram("work_duration_seconds", q)
}
func (p promProvider) NewUnfinishedWorkSecondsMetric(q string) workqueue.SettableGaugeMetric {
	return p.gauge("unfinished_work_seconds", q)
}
func (p promProvider) NewLongestRunningProcessorSecondsMetric(q string) workqueue.SettableGaugeMetric {
	return p.gauge("longest_running_processor_seconds", q)
}
func (p promProvider) NewRetriesMetric(q string) workqueue.CounterMetric {
	return p.counter("retries_total", q)
}

func run(name string, d time.Duration, producers, workers, keys int, metrics bool) map[string]any {
	cfg := workqueue.TypedRateLimitingQueueConfig[string]{Name: ""}
	if metrics {
		cfg.Name = name
		cfg.MetricsProvider = promProvider{prometheus.NewRegistry()}
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), cfg)
	var done atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	names := make([]string, keys)
	for i := range names {
		names[i] = "ns/key-" + strconv.Itoa(i)
	}
	start := time.Now()
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := p; !stop.Load(); i += producers {
				q.Add(names[i%keys])
				if q.Len() > keys {
					time.Sleep(time.Microsecond)
				}
			}
		}(p)
	}
	var workersWG sync.WaitGroup
	for w := 0; w < workers; w++ {
		workersWG.Add(1)
		go func() {
			defer workersWG.Done()
			for {
				k, shutdown := q.Get()
				if shutdown {
					return
				}
				q.Forget(k)
				q.Done(k)
				done.Add(1)
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	q.ShutDown()
	workersWG.Wait()
	secs := time.Since(start).Seconds()
	return map[string]any{"scenario": name, "itemsPerSecond": float64(done.Load()) / secs, "seconds": secs}
}

func main() {
	d := time.Second
	for _, s := range []struct {
		name                     string
		producers, workers, keys int
		metrics                  bool
	}{
		{"1 worker", 1, 1, 1000, false},
		{"1 worker, metrics", 1, 1, 1000, true},
		{"4 producers, 50 workers, 1k keys", 4, 50, 1000, false},
		{"4 producers, 50 workers, 1k keys, metrics", 4, 50, 1000, true},
	} {
		out, _ := json.Marshal(run(s.name, d, s.producers, s.workers, s.keys, s.metrics))
		fmt.Println(string(out))
	}
}
