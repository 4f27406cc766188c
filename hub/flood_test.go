package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
)

// A technical flood never cuts a staff screen that reads nothing: 5,000
// ungrouped "device silent" alarms (no router: each its own) overflow its
// technical lane and are summarised, while the call button pressed during
// the flood reaches it, first, in its latest state (the repeats coalesced
// into one frame). The counters say what happened.
func TestTechnicalFloodNeverCutsAndCareGoesFirst(t *testing.T) {
	const n = 5000
	c := newClock(dayTime)
	j, replay, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	reg := prometheus.NewRegistry()
	h, err := New(Options{Config: loadConfig(t, stormYAML(n)), Journal: j, Replay: replay, Now: c.Now, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	q, cancel := h.Feed()
	defer cancel()
	c.Add(40 * time.Second)
	h.HandleHeartbeat("s", "gw", nil)
	c.Add(21 * time.Second) // 61 s: the sensors are silent, the gateway is not
	h.HandleEvent("s", "gw", press("p1", c.Now()))
	h.Tick() // all 5,000 silent now
	for i := 2; i <= 4; i++ {
		h.HandleEvent("s", "gw", press(fmt.Sprint("p", i), c.Now()))
	}
	if got := gather(t, reg, "vaka_stream_subscribers_cut_total"); got != 0 {
		t.Fatalf("subscriber cut (%v) in a technical flood", got)
	}
	frames, cut := q.Next(nil, 2*n)
	if cut {
		t.Fatal("queue cut")
	}
	if len(frames) < 2 || frames[0].Alarm == nil || frames[0].Alarm.Kind != alarm.KindCall {
		t.Fatalf("first frame %+v, want the call", frames[0])
	}
	if a := frames[0].Alarm; a.Repeats() != 3 {
		t.Errorf("call frame has %d repeats, want 3: the latest state", a.Repeats())
	}
	var calls, tech, skipped int
	for _, f := range frames {
		switch {
		case f.Alarm == nil:
			skipped += f.Skipped
		case f.Alarm.Kind == alarm.KindCall:
			calls++
		default:
			tech++
		}
	}
	if calls != 1 || skipped == 0 || tech+skipped != n {
		t.Errorf("%d call frames, %d technical, %d skipped; want 1 call and technical+skipped = %d", calls, tech, skipped, n)
	}
	for name, want := range map[string]float64{
		"vaka_stream_technical_dropped_total": float64(skipped),
		"vaka_stream_summaries_total":         1,
		"vaka_stream_coalesced_total":         3,
		"vaka_stream_feed_cut_total":          0,
		"vaka_stream_subscribers_cut_total":   0,
		"vaka_alarms_grouped_total":           0,
	} {
		if got := gather(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func gather(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
