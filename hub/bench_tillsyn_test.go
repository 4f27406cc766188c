package hub

import (
	"fmt"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/store"
	"github.com/vaka-care/vaka/tillsyn"
)

// processCPU is the process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration { return rusage(tb, syscall.RUSAGE_SELF) }

// gcCycles is how many garbage collections have finished.
func gcCycles() uint64 {
	s := []rtmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// gcAssist is the CPU time goroutines spent assisting the garbage
// collector's marking: the share of a collection that lands on whoever
// allocates while it runs, alarms included.
func gcAssist() time.Duration {
	s := []rtmetrics.Sample{{Name: "/cpu/classes/gc/mark/assist:cpu-seconds"}}
	rtmetrics.Read(s)
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// counterValue is a counter's value (as /metrics would show it).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if c.Write(&m) != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// heapAllocs is how many bytes the process has allocated on the heap.
func heapAllocs() uint64 {
	s := []rtmetrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

func rusage(tb testing.TB, who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tillsynWindow is each planned instant's measuring window, with look-ins
// off and on: a little longer than the paced look-ins of 10,000 residents
// take (tick-ms/instant), so most alarms measured run beside them.
const tillsynWindow = 600 * time.Millisecond

// regionConfig is a region's night: n residents with a bed monitor, a door
// sensor and a plan of three look-ins each, on n/100 gateways, plus 100 call
// buttons of residents without a plan (the alarm path being measured).
func regionConfig(tb testing.TB, n int) *Config {
	tb.Helper()
	tol := 10 * time.Minute
	cfg := &Config{Demo: true, Timezone: "Europe/Stockholm", MQTT: MQTTConfig{TCP: "127.0.0.1:0"}, HTTP: HTTPConfig{Address: "127.0.0.1:0"}}
	s := Site{ID: "region", Night: Night{Start: "22:00", End: "06:30"}}
	for g := 0; g < n/100; g++ {
		gw := Gateway{ID: fmt.Sprintf("gw-%d", g), Heartbeat: time.Hour}
		for k := 0; k < 100; k++ {
			id := fmt.Sprintf("r-%d", g*100+k)
			s.Residents = append(s.Residents, Resident{ID: id,
				Consent: Consent{Rules: []string{"tillsyn"}, RecordedBy: "anna", RecordedAt: "2026-11-01"},
				Plan: PlanConfig{Tillsyn: &TillsynConfig{Times: []string{"23:00", "02:00", "05:00"}, Tolerance: &tol,
					AllRight: TillsynCriteria{InBed: true, DoorClosed: true, NoAlarmOpen: true}}}})
			gw.Devices = append(gw.Devices, Device{ID: "bed-" + id, Type: "bed_monitor", Resident: id},
				Device{ID: "door-" + id, Type: "door_sensor", Resident: id})
		}
		s.Gateways = append(s.Gateways, gw)
	}
	btns := Gateway{ID: "gw-btn", Heartbeat: time.Hour}
	for k := 0; k < 100; k++ {
		btns.Devices = append(btns.Devices, Device{ID: fmt.Sprintf("btn-%d", k), Type: "personal_trigger", Resident: fmt.Sprintf("x-%d", k)})
	}
	s.Gateways = append(s.Gateways, btns)
	s.Supervision = map[string]time.Duration{"personal_trigger": 0}
	cfg.Sites = []Site{s}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// BenchmarkTillsynRegionNight: 10,000 residents × 3 look-ins computed by
// the hub (snapshot, judgement, journal record) while call-button presses
// run through the alarm path from another goroutine. One iteration is one
// night.
//
// Each planned instant gets two measuring windows back to back, one
// without look-ins and one with them (their order alternating), each
// tillsynWindow long (longer if the look-ins take longer), with the same
// background traffic: every sensor reports a minute before the instant,
// and a call button is pressed every 2 ms; a press's latency is kept for
// the window it starts in. Pairing the windows within one process and
// within a second keeps the noise of a shared machine out of the
// comparison as far as it can be.
//
// It reports:
//   - alarm-p50-off-µs, alarm-p99-off-µs: the alarm path without look-ins;
//   - alarm-p50-on-µs, alarm-p99-on-µs: the same with look-ins running;
//   - alarm-p99-diff-µs: on minus off, this run's difference;
//   - cpu-µs/look-in: the process CPU in windows with look-ins minus the
//     windows without, per look-in: the look-ins' own, with the garbage
//     collector's and the scheduler's share (so a little noisy);
//   - alloc-B/look-in: heap bytes allocated, the same way;
//   - gc-off/window, gc-on/window: collections inside a window (each
//     window starts from a collected heap), and gc-assist-µs-off/window,
//     gc-assist-µs-on/window: the CPU goroutines spent assisting them;
//   - lane-wait-ms/instant: how long the look-ins waited for alarms on
//     their way (they give way to the alarm lane, lanes.go);
//   - late-look-ins: look-ins judged past their deadline (expected 0);
//   - tick-ms/instant: wall time until one instant's look-ins are all
//     judged (paced: mostly pauses and waits; ticks back to back, where
//     the hub's are a second apart).
//
// One run's p99 difference means little on a shared machine: "no
// measurable change" is judged over several runs (`make bench-tillsyn`,
// docs/benchmarks-tillsyn.md, internal/benchdoc/tillsyn.go): the median
// and interquartile range of the runs' differences against the run-to-run
// spread of the p99 without look-ins, with a bootstrap interval:
//
//	go test -run '^$' -bench TillsynRegionNight -benchtime 1x -count 10 ./hub/
func BenchmarkTillsynRegionNight(b *testing.B) {
	const n = 10_000
	cfg := regionConfig(b, n)
	loc := cfg.Loc
	j, replay, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	c := newClock(time.Date(2026, 11, 10, 21, 0, 0, 0, loc))
	h, err := New(Options{Config: cfg, Journal: j, Replay: replay, Now: c.Now})
	if err != nil {
		b.Fatal(err)
	}
	setClock := func(t time.Time) {
		c.mu.Lock()
		c.now = t
		c.mu.Unlock()
	}
	var seq atomic.Int64
	send := func(gw, dev, dty, state string) {
		id := seq.Add(1)
		p := fmt.Appendf(nil, `{"v":1,"id":"e%d","device":%q,"dty":%q,"state":%q,"ts":%q}`, id, dev, dty, state, c.Now().UTC().Format(time.RFC3339))
		if r := h.HandleEvent("region", gw, p); r.Code != event.ReplyOK {
			b.Errorf("reply %+v", r)
		}
	}
	// prime: every sensor reports (a sign of life and its state), every
	// gateway beats, a minute before the look-in.
	prime := func() {
		for g := 0; g < n/100; g++ {
			h.HandleHeartbeat("region", fmt.Sprintf("gw-%d", g), nil)
			for k := 0; k < 100; k++ {
				id := fmt.Sprintf("r-%d", g*100+k)
				send(fmt.Sprintf("gw-%d", g), "bed-"+id, "0012", "occupied")
				send(fmt.Sprintf("gw-%d", g), "door-"+id, "0014", "closed")
			}
		}
	}
	// The alarm path: a call press every 2 ms, its latency kept for the
	// window it starts in (0: none, 1: without look-ins, 2: with them).
	var (
		mu      sync.Mutex
		window  int
		samples [3][]time.Duration
	)
	setWindow := func(w int) {
		mu.Lock()
		window = w
		mu.Unlock()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			mu.Lock()
			w := window
			mu.Unlock()
			t0 := time.Now()
			send("gw-btn", fmt.Sprintf("btn-%d", k%100), "0003", "pressed")
			if d := time.Since(t0); w > 0 {
				mu.Lock()
				samples[w] = append(samples[w], d)
				mu.Unlock()
			}
		}
	}()
	var inTick time.Duration
	var procCPU [3]time.Duration
	var gcs, allocs [3]uint64
	var assist [3]time.Duration
	wait0, late0 := counterValue(h.ts.laneWait), counterValue(h.ts.late)
	windows, made, night := 0, 0, 0
	for b.Loop() {
		base := time.Date(2026, 11, 10+night, 0, 0, 0, 0, loc)
		night++
		// The night is queued when it begins (22:00), as the hub's first
		// tick of the night does, outside the windows: they measure the
		// look-ins' bursts.
		start := base.Add(22 * time.Hour)
		setClock(start)
		t0 := time.Now()
		h.tillsynTick(start)
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "schedule-ms/night")
		for i, at := range []time.Time{base.Add(23 * time.Hour), base.Add(26 * time.Hour), base.Add(29 * time.Hour)} {
			setClock(at.Add(-time.Minute))
			prime()
			setClock(at)
			order := []int{1, 2}
			if (windows+i)%2 == 1 {
				order = []int{2, 1}
			}
			for _, w := range order {
				// Each window starts from a collected heap, so a
				// collection inside it is that window's own doing (the
				// priming's garbage would otherwise fall on either).
				runtime.GC()
				setWindow(w)
				cpu0, gc0, al0, as0 := processCPU(b), gcCycles(), heapAllocs(), gcAssist()
				t0 := time.Now()
				if w == 2 {
					// Ticks back to back until the instant is judged (the
					// hub's are a second apart: this is denser).
					for k := 0; k < 1000; k++ {
						h.tillsynTick(at)
						if h.TillsynPending() == 0 {
							break
						}
					}
					inTick += time.Since(t0)
				}
				if rest := tillsynWindow - time.Since(t0); rest > 0 {
					time.Sleep(rest)
				}
				procCPU[w] += processCPU(b) - cpu0
				gcs[w] += gcCycles() - gc0
				allocs[w] += heapAllocs() - al0
				assist[w] += gcAssist() - as0
				setWindow(0)
			}
			windows++
		}
		recs := h.TillsynRecords()
		ok := 0
		for _, r := range recs {
			if r.Night == base.Format("2006-01-02") {
				made++
				if r.Outcome == tillsyn.AllRight {
					ok++
				}
			}
		}
		if ok != 3*n {
			b.Fatalf("night %d: %d of %d look-ins all right", night, ok, 3*n)
		}
	}
	close(stop)
	<-done
	var p99 [3]float64
	for w, name := range map[int]string{1: "off", 2: "on"} {
		s := samples[w]
		slices.Sort(s)
		if len(s) > 0 {
			p99[w] = float64(s[len(s)*99/100].Microseconds())
			b.ReportMetric(float64(s[len(s)/2].Microseconds()), "alarm-p50-"+name+"-µs")
			b.ReportMetric(p99[w], "alarm-p99-"+name+"-µs")
		}
	}
	if len(samples[1]) > 0 && len(samples[2]) > 0 {
		b.ReportMetric(p99[2]-p99[1], "alarm-p99-diff-µs")
	}
	b.ReportMetric(float64(len(samples[1])+len(samples[2])), "alarm-samples")
	if windows > 0 {
		b.ReportMetric(float64(gcs[1])/float64(windows), "gc-off/window")
		b.ReportMetric(float64(gcs[2])/float64(windows), "gc-on/window")
		b.ReportMetric(float64(assist[1].Microseconds())/float64(windows), "gc-assist-µs-off/window")
		b.ReportMetric(float64(assist[2].Microseconds())/float64(windows), "gc-assist-µs-on/window")
		b.ReportMetric((counterValue(h.ts.laneWait)-wait0)*1000/float64(windows), "lane-wait-ms/instant")
		b.ReportMetric(counterValue(h.ts.late)-late0, "late-look-ins")
	}
	if made > 0 {
		b.ReportMetric(float64(int64(allocs[2])-int64(allocs[1]))/float64(made), "alloc-B/look-in")
		b.ReportMetric(float64((procCPU[2]-procCPU[1]).Microseconds())/float64(made), "cpu-µs/look-in")
		b.ReportMetric(float64(inTick.Milliseconds())/float64(windows), "tick-ms/instant")
	}
}
