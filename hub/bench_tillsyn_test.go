package hub

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/store"
	"github.com/vaka-care/vaka/tillsyn"
)

// processCPU is the process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration { return rusage(tb, syscall.RUSAGE_SELF) }

// rusageThread is getrusage's RUSAGE_THREAD (Linux): the calling thread's
// CPU, for a goroutine locked to its thread.
const rusageThread = 1

// threadCPU is the calling thread's CPU time so far.
func threadCPU(tb testing.TB) time.Duration { return rusage(tb, rusageThread) }

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
// night. Each planned instant gets a measuring window of tillsynWindow
// (long enough for the paced look-ins to finish), the same with look-ins
// off and on, and the same background traffic: a call press every 2 ms
// (its latency kept when it starts inside a window) and every sensor
// reporting a minute before.
//
// It reports, per sub-benchmark (lookins=false is the baseline):
//   - alarm-p50-µs, alarm-p99-µs: the alarm path in the windows;
//   - cpu-µs/look-in: the CPU of the hub's supervision goroutine itself
//     (locked to its thread, RUSAGE_THREAD), scheduling included;
//   - proc-cpu-µs/look-in: the process CPU in the windows minus the
//     baseline's (adds the garbage collector's share; noisier);
//   - tick-ms/instant: wall time of the tick that makes one instant's
//     look-ins (paced: mostly pauses).
//
// "No measurable change" is judged over several counts, the difference
// of the medians of alarm-p99 against the run-to-run spread of the
// baseline:
//
//	go test -count=5 ./hub -run XXX -bench TillsynRegionNight -benchtime 1x
func BenchmarkTillsynRegionNight(b *testing.B) {
	const n = 10_000
	cfg := regionConfig(b, n)
	loc := cfg.Loc
	// The process's CPU time in the windows without look-ins, per window:
	// subtracted from the windows with them, it leaves the look-ins' own.
	var offCPUPerWindow time.Duration
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("lookins=%v", on), func(b *testing.B) {
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
			var seq atomic.Int64
			send := func(gw, dev, dty, state string) {
				id := seq.Add(1)
				p := fmt.Appendf(nil, `{"v":1,"id":"e%d","device":%q,"dty":%q,"state":%q,"ts":%q}`, id, dev, dty, state, c.Now().UTC().Format(time.RFC3339))
				if r := h.HandleEvent("region", gw, p); r.Code != event.ReplyOK {
					b.Fatalf("reply %+v", r)
				}
			}
			// prime: every sensor reports (a sign of life and its state),
			// every gateway beats, a minute before the look-in.
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
			// The alarm path: a call press every 2 ms, its latency kept
			// when it starts inside a measuring window.
			var (
				mu      sync.Mutex
				window  bool
				samples []time.Duration
			)
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
					in := window
					mu.Unlock()
					t0 := time.Now()
					send("gw-btn", fmt.Sprintf("btn-%d", k%100), "0003", "pressed")
					if d := time.Since(t0); in {
						mu.Lock()
						samples = append(samples, d)
						mu.Unlock()
					}
				}
			}()
			// The supervision goroutine on its own thread, so the thread's
			// CPU is the look-ins' own.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var inTick, windowCPU, tickCPU time.Duration
			windows := 0
			made := 0
			night := 0
			for b.Loop() {
				base := time.Date(2026, 11, 10+night, 0, 0, 0, 0, loc)
				night++
				for _, at := range []time.Time{base.Add(23 * time.Hour), base.Add(26 * time.Hour), base.Add(29 * time.Hour)} {
					c.mu.Lock()
					c.now = at.Add(-time.Minute)
					c.mu.Unlock()
					prime()
					c.mu.Lock()
					c.now = at
					c.mu.Unlock()
					mu.Lock()
					window = true
					mu.Unlock()
					cpu0 := processCPU(b)
					t0 := time.Now()
					if on {
						c0 := threadCPU(b)
						h.tillsynTick(at)
						tickCPU += threadCPU(b) - c0
					}
					inTick += time.Since(t0)
					if rest := tillsynWindow - time.Since(t0); rest > 0 {
						time.Sleep(rest) // equal windows with and without look-ins
					}
					windowCPU += processCPU(b) - cpu0
					windows++
					mu.Lock()
					window = false
					mu.Unlock()
				}
				if on {
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
			}
			close(stop)
			<-done
			slices.Sort(samples)
			if len(samples) > 0 {
				b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds()), "alarm-p99-µs")
				b.ReportMetric(float64(samples[len(samples)/2].Microseconds()), "alarm-p50-µs")
				b.ReportMetric(float64(len(samples)), "alarm-samples")
			}
			if !on && windows > 0 {
				offCPUPerWindow = windowCPU / time.Duration(windows)
			}
			if made > 0 {
				b.ReportMetric(float64(tickCPU.Microseconds())/float64(made), "cpu-µs/look-in")
				b.ReportMetric(float64((windowCPU-offCPUPerWindow*time.Duration(windows)).Microseconds())/float64(made), "proc-cpu-µs/look-in")
				b.ReportMetric(float64(inTick.Milliseconds())/float64(windows), "tick-ms/instant")
			}
		})
	}
}
