package hub

import (
	"fmt"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	gcq "github.com/vaka-care/vaka/internal/rtmetrics"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/store"
)

// liveHeap is the heap the last GC found reachable, after a full GC: what
// the process needs to keep, not what it has allocated since.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// memAlarms is how many alarms BenchmarkOpenAlarmMemory opens: 20,000 by
// default, VAKA_MEM_ALARMS=250000 for the storm's figure.
func memAlarms(b *testing.B) int {
	if v := os.Getenv("VAKA_MEM_ALARMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("VAKA_MEM_ALARMS=%q: want a positive count", v)
		}
		return n
	}
	return 20_000
}

// BenchmarkOpenAlarmMemory opens N technical alarms in the hub the way a
// region's supervised buttons going silent does (device_silent, one per
// device, each followed by the notifier's notify step), and reports the
// heap the hub keeps per open alarm: live (as opened) and after a restart
// (rebuilt from the journal, where every string comes fresh from JSON).
// The device strings are made once beforehand, as the rules' config holds
// them; the key is built per alarm, as the engine does.
func BenchmarkOpenAlarmMemory(b *testing.B) {
	n := memAlarms(b)
	type dev struct{ site, gw, id, unit, room, res string }
	devs := make([]dev, n)
	for i := range devs {
		devs[i] = dev{site: fmt.Sprintf("site%02d", i%16), gw: fmt.Sprintf("gw%05d", i/100), id: fmt.Sprintf("btn%07d", i),
			unit: fmt.Sprintf("unit%03d", i/1000), room: strconv.Itoa(i % 400), res: fmt.Sprintf("r%07d", i)}
	}
	const note = "ingen signal på 1m5s / silent for 1m5s"
	to := []string{"tekniker1", "tekniker2"}
	var live, restarted float64
	var fixed uint64
	var raiseP99, raiseMax time.Duration
	var pauseP99, pauseMax float64
	// What a hub costs with no alarm (its de-duplication table, maps):
	// the restart's figure must not count it.
	base := liveHeap()
	{
		j, _, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		h, err := New(Options{Config: loadConfig(b, hubYAML), Journal: j, Now: time.Now})
		if err != nil {
			b.Fatal(err)
		}
		empty := liveHeap() - base
		runtime.KeepAlive(h)
		j.Close()
		fixed = empty
	}
	for range b.N {
		dir := b.TempDir()
		c := newClock(dayTime)
		j, _, err := store.Open(dir, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		h, err := New(Options{Config: loadConfig(b, hubYAML), Journal: j, Now: c.Now})
		if err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, n)
		p0 := gcPauses()
		base = liveHeap()
		b.StartTimer()
		for i, d := range devs {
			now := c.Now().Add(time.Duration(i) * time.Millisecond)
			t0 := time.Now()
			h.apply(rules.Action{Kind: rules.Raise, Rule: rules.RuleDeviceSilent, Key: rules.RuleDeviceSilent + "/" + d.site + "/" + d.id,
				Alarm: alarm.KindTechnical, Priority: 3, Status: event.RadioTestMissing, Site: d.site, Gateway: d.gw, Device: d.id,
				Type: event.PersonalTrigger, Unit: d.unit, Room: d.room, Resident: d.res, Note: note}, now)
			lat = append(lat, time.Since(t0))
		}
		for i := range n {
			id := fmt.Sprintf("A%06d", i+1)
			if err := h.Record(alarm.Transition{Alarm: id, Action: alarm.ActNotify, By: "notify", Receiver: "tekniker", To: to}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if got := h.openCount(); got != n {
			b.Fatalf("%d alarms open, want %d", got, n)
		}
		pauses := gcPauses()
		for k := range pauses.Counts {
			pauses.Counts[k] -= p0.Counts[k]
		}
		live = float64(liveHeap()-base) / float64(n)
		slices.Sort(lat)
		raiseP99, raiseMax = lat[len(lat)*99/100], lat[len(lat)-1]
		pauseP99 = gcq.Quantile(pauses, 0.99)
		pauseMax = gcq.Quantile(pauses, 1)
		if p := os.Getenv("VAKA_MEM_PROFILE"); p != "" {
			writeHeapProfile(b, p+".live")
		}
		runtime.KeepAlive(h)
		j.Close()
		h = nil

		// Restart: the hub rebuilt from its journal.
		base = liveHeap()
		// As service.Start does: the journal replayed as it is read.
		rb := NewRebuilder(nil)
		j, err = store.OpenEach(dir, store.Options{}, rb.Add)
		if err != nil {
			b.Fatal(err)
		}
		h, err = New(Options{Config: loadConfig(b, hubYAML), Journal: j, Rebuilt: rb, Now: c.Now})
		if err != nil {
			b.Fatal(err)
		}
		rb = nil
		if got := h.openCount(); got != n {
			b.Fatalf("after restart %d alarms open, want %d", got, n)
		}
		restarted = (float64(liveHeap()) - float64(base) - float64(fixed)) / float64(n)
		if p := os.Getenv("VAKA_MEM_PROFILE"); p != "" {
			writeHeapProfile(b, p+".restarted")
		}
		runtime.KeepAlive(h)
		j.Close()
	}
	b.ReportMetric(live, "B/open-alarm")
	b.ReportMetric(restarted, "B/open-alarm-restarted")
	b.ReportMetric(float64(n), "alarms")
	b.ReportMetric(float64(raiseP99.Microseconds()), "raise-p99-µs")
	b.ReportMetric(float64(raiseMax.Microseconds()), "raise-max-µs")
	b.ReportMetric(pauseP99*1e6, "gc-pause-p99-µs")
	b.ReportMetric(pauseMax*1e6, "gc-pause-max-µs")
}

// gcPauses is the runtime's histogram of stop-the-world GC pauses.
func gcPauses() *rtmetrics.Float64Histogram {
	s := []rtmetrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}}
	rtmetrics.Read(s)
	h := s[0].Value.Float64Histogram()
	return &rtmetrics.Float64Histogram{Counts: slices.Clone(h.Counts), Buckets: h.Buckets}
}

// writeHeapProfile writes a heap profile to path (VAKA_MEM_PROFILE=path:
// where the bytes per open alarm go, for go tool pprof -sample_index=inuse_space).
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// openCount is the number of open alarms.
func (h *Hub) openCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.openByKey)
}
