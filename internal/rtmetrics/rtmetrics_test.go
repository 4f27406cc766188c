package rtmetrics

import (
	"math"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRebucketAndQuantile(t *testing.T) {
	h := &metrics.Float64Histogram{
		Buckets: []float64{math.Inf(-1), 10e-6, 40e-6, 200e-6, 3e-3, 2, math.Inf(1)},
		Counts:  []uint64{1, 10, 80, 8, 1, 0},
	}
	count, sum, b := Rebucket(h, []float64{50e-6, 1e-3, 5e-3})
	if count != 100 {
		t.Errorf("count %d, want 100", count)
	}
	// ≤ 50 µs: the buckets ending at 10 µs and 40 µs; ≤ 1 ms adds the one
	// ending at 200 µs; ≤ 5 ms the one ending at 3 ms; the one ending at 2 s
	// only in +Inf (the count).
	if b[50e-6] != 11 || b[1e-3] != 91 || b[5e-3] != 99 {
		t.Errorf("buckets %v", b)
	}
	if sum <= 0 || sum > 3 {
		t.Errorf("sum %v", sum)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 200e-6}, {0.99, 3e-3}, {0.999, 2}, {0.05, 40e-6}} {
		if got := Quantile(h, c.q); got != c.want {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	if Quantile(&metrics.Float64Histogram{Buckets: []float64{0, 1}, Counts: []uint64{0}}, 0.99) != 0 {
		t.Error("quantile of nothing should be 0")
	}
}

// The collector exports every series with values the runtime can have:
// after two forced GCs, cycles and pauses are counted and the live heap is
// positive.
func TestCollectorExportsRuntimeSeries(t *testing.T) {
	runtime.GC()
	runtime.GC()
	reg := prometheus.NewRegistry()
	reg.MustRegister(New())
	mfs, err := reg.Gather()
	if err != nil || len(mfs) < 12 {
		t.Fatalf("gathered %d series: %v", len(mfs), err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.GetGauge() != nil:
			got[mf.GetName()] = m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			got[mf.GetName()] = m.GetCounter().GetValue()
		case m.GetHistogram() != nil:
			got[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
		}
	}
	for _, name := range []string{"vaka_go_heap_live_bytes", "vaka_go_heap_objects_bytes", "vaka_go_memory_total_bytes", "vaka_go_heap_goal_bytes",
		"vaka_go_gc_cycles_total", "vaka_go_gc_pause_seconds", "vaka_go_goroutines", "vaka_go_gc_pause_p99_seconds"} {
		if got[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, got[name])
		}
	}
	if got["vaka_go_gc_cycles_total"] < 2 || got["vaka_go_gc_pause_seconds"] < 2 {
		t.Errorf("after two GCs: %v cycles, %v pauses", got["vaka_go_gc_cycles_total"], got["vaka_go_gc_pause_seconds"])
	}
	if p := got["vaka_go_gc_pause_p99_seconds"]; p > 1 {
		t.Errorf("pause p99 %v s", p)
	}
	for name := range got {
		if !strings.HasPrefix(name, "vaka_go_") {
			t.Errorf("unexpected series %s", name)
		}
	}
}
