// Package rtmetrics exports the Go runtime's own view of the hub's heap
// and garbage collector (package runtime/metrics) under stable vaka_go_*
// names, read at each scrape.
//
// Why besides the client library's go_* series: those come from
// runtime.ReadMemStats (a stop-the-world call per scrape before Go 1.16's
// metrics, and a summary of only the last 256 pauses), and the figures
// the alarm path cares about are not among them: the heap the last GC
// found live, the pause histogram since start (so a p99 over any window
// can be computed from its rate), and the CPU goroutines on the alarm
// path spend assisting the GC. A region's buttons going silent together
// opens a quarter of a million alarms; these series show what that costs.
package rtmetrics

import (
	"math"
	"runtime/metrics"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// PauseBuckets are the upper bounds (seconds) the runtime's fine pause
// histogram is summed into: from what the GC pauses on an idle hub
// (tens of µs) to what would hold up an alarm visibly.
var PauseBuckets = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1}

const (
	mHeapLive   = "/gc/heap/live:bytes"
	mHeapObj    = "/memory/classes/heap/objects:bytes"
	mTotal      = "/memory/classes/total:bytes"
	mGoal       = "/gc/heap/goal:bytes"
	mCycles     = "/gc/cycles/total:gc-cycles"
	mPauses     = "/sched/pauses/total/gc:seconds"
	mGoroutines = "/sched/goroutines:goroutines"
	mGCCPU      = "/cpu/classes/gc/total:cpu-seconds"
	mAssist     = "/cpu/classes/gc/mark/assist:cpu-seconds"
	mGOGC       = "/gc/gogc:percent"
	mLimit      = "/gc/gomemlimit:bytes"
)

// Collector reads runtime/metrics on every scrape.
type Collector struct {
	mu      sync.Mutex
	samples []metrics.Sample
	descs   map[string]*prometheus.Desc
	pause   *prometheus.Desc
	p99     *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a collector of the vaka_go_* series (docs/metrics in
// docs/architecture.md, "Memory and GC").
func New() *Collector {
	c := &Collector{descs: map[string]*prometheus.Desc{
		mHeapLive:   prometheus.NewDesc("vaka_go_heap_live_bytes", "Heap the last GC found reachable: what the hub keeps (about 1 KB per open alarm).", nil, nil),
		mHeapObj:    prometheus.NewDesc("vaka_go_heap_objects_bytes", "Heap occupied by objects, live and not yet swept.", nil, nil),
		mTotal:      prometheus.NewDesc("vaka_go_memory_total_bytes", "All memory the Go runtime has mapped (heap, stacks, metadata): close to the process's RSS.", nil, nil),
		mGoal:       prometheus.NewDesc("vaka_go_heap_goal_bytes", "Heap size at which the next GC cycle finishes (set by GOGC and GOMEMLIMIT).", nil, nil),
		mCycles:     prometheus.NewDesc("vaka_go_gc_cycles_total", "Completed GC cycles.", nil, nil),
		mGoroutines: prometheus.NewDesc("vaka_go_goroutines", "Live goroutines.", nil, nil),
		mGCCPU:      prometheus.NewDesc("vaka_go_gc_cpu_seconds_total", "CPU time spent in the GC (background mark, assists, pauses).", nil, nil),
		mAssist:     prometheus.NewDesc("vaka_go_gc_assist_cpu_seconds_total", "CPU time goroutines that allocate (the alarm path among them) spent helping the GC mark.", nil, nil),
		mGOGC:       prometheus.NewDesc("vaka_go_gogc_percent", "GOGC in force (-1: off).", nil, nil),
		mLimit:      prometheus.NewDesc("vaka_go_memory_limit_bytes", "GOMEMLIMIT in force (math.MaxInt64 when unset).", nil, nil),
	},
		pause: prometheus.NewDesc("vaka_go_gc_pause_seconds", "Stop-the-world GC pauses since start (every goroutine, the alarm path among them, waits for them).", nil, nil),
		p99:   prometheus.NewDesc("vaka_go_gc_pause_p99_seconds", "99th percentile of the GC pauses since start (upper bound of its bucket in the runtime's histogram).", nil, nil),
	}
	for _, n := range []string{mHeapLive, mHeapObj, mTotal, mGoal, mCycles, mPauses, mGoroutines, mGCCPU, mAssist, mGOGC, mLimit} {
		c.samples = append(c.samples, metrics.Sample{Name: n})
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.pause
	ch <- c.p99
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	metrics.Read(c.samples)
	for _, s := range c.samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			d := c.descs[s.Name]
			t := prometheus.GaugeValue
			if s.Name == mCycles {
				t = prometheus.CounterValue
			}
			ch <- prometheus.MustNewConstMetric(d, t, float64(s.Value.Uint64()))
		case metrics.KindFloat64:
			ch <- prometheus.MustNewConstMetric(c.descs[s.Name], prometheus.CounterValue, s.Value.Float64())
		case metrics.KindFloat64Histogram:
			h := s.Value.Float64Histogram()
			count, sum, buckets := Rebucket(h, PauseBuckets)
			ch <- prometheus.MustNewConstHistogram(c.pause, count, sum, buckets)
			ch <- prometheus.MustNewConstMetric(c.p99, prometheus.GaugeValue, Quantile(h, 0.99))
		}
		// KindBad: a metric this Go version does not have; left out.
	}
}

// Rebucket sums a runtime histogram into cumulative Prometheus buckets.
// A runtime bucket counts toward the first bound at or above its upper
// edge, so a bucket's count is never under-reported. The sum is estimated
// from the runtime buckets' midpoints (the runtime keeps no exact sum).
func Rebucket(h *metrics.Float64Histogram, bounds []float64) (count uint64, sum float64, out map[float64]uint64) {
	out = make(map[float64]uint64, len(bounds))
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		count += n
		mid := hi
		switch {
		case math.IsInf(hi, 1):
			mid = lo
		case !math.IsInf(lo, -1):
			mid = (lo + hi) / 2
		}
		sum += mid * float64(n)
		for _, b := range bounds {
			if hi <= b {
				out[b] += n
			}
		}
	}
	for _, b := range bounds {
		out[b] += 0 // every bound present, zero or not
	}
	return count, sum, out
}

// Quantile is the upper edge of the runtime bucket holding quantile q of
// the observations (0 when there are none): a bound, never an
// underestimate.
func Quantile(h *metrics.Float64Histogram, q float64) float64 {
	var total uint64
	for _, n := range h.Counts {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, n := range h.Counts {
		seen += n
		if seen >= rank {
			hi := h.Buckets[i+1]
			if math.IsInf(hi, 1) {
				return h.Buckets[i]
			}
			return hi
		}
	}
	return h.Buckets[len(h.Buckets)-1]
}
