package rules

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

// BenchmarkEvalBackground measures the rules on the events that make up
// most traffic: sensor reports that raise nothing (a door by day, motion).
func BenchmarkEvalBackground(b *testing.B) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 14, 0)
	evs := []*event.Event{
		ev("pir-a", event.Occupancy, event.StateMotion, t0),
		ev("door-a", event.DoorSensor, event.StateOpen, t0),
		ev("door-a", event.DoorSensor, event.StateClosed, t0),
		ev("btn-a", event.PersonalTrigger, event.StateNone, t0), // radio test
	}
	buf := make([]Action, 0, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := evs[i%len(evs)]
		buf, _ = e.Eval(x, t0.Add(time.Duration(i)*time.Second), buf[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEvalCallButton measures the alarm path proper.
func BenchmarkEvalCallButton(b *testing.B) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 3, 0)
	x := ev("btn-a", event.PersonalTrigger, event.StatePressed, t0)
	buf := make([]Action, 0, 8)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = e.Eval(x, t0, buf[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSupervision250k supervises 250,000 call buttons (about every
// Swedish social alarm), each sending a radio test every 60 s, over ten
// simulated minutes with a tick per second. 100 buttons fall silent at
// minute 3; each must be detected within heartbeat + 10 s. Reports the
// worst detection delay, the engine's heap and the CPU per tick.
func BenchmarkSupervision250k(b *testing.B) {
	const (
		devices = 250_000
		perGW   = 100
		beat    = 60 * time.Second
		silent  = 100
	)
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		site := &Site{ID: "s", Plan: DefaultPlan(), Devices: map[string]*Device{}, Gateways: map[string]*Gateway{},
			Residents: map[string]*Resident{}, Supervision: map[event.DeviceType]time.Duration{event.PersonalTrigger: beat + 5*time.Second}}
		ids := make([]string, devices)
		for i := 0; i < devices; i++ {
			gw := fmt.Sprintf("gw%04d", i/perGW)
			ids[i] = fmt.Sprintf("btn%06d", i)
			site.Devices[ids[i]] = &Device{ID: ids[i], Site: "s", Gateway: gw, Type: event.PersonalTrigger}
			if i%perGW == 0 {
				site.Gateways[gw] = &Gateway{ID: gw, Site: "s", Heartbeat: 24 * time.Hour}
			}
		}
		e := New(Config{Sites: map[string]*Site{"s": site}})
		t0 := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
		e.Expect(t0)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.StartTimer()
		x := &event.Event{V: 1, Site: "s", Type: event.PersonalTrigger, Time: t0}
		var buf []Action
		stoppedAt := map[string]time.Time{}
		var worst time.Duration
		detected := 0
		var tickCPU time.Duration
		ticks := 0
		for sec := 1; sec <= 600; sec++ {
			now := t0.Add(time.Duration(sec) * time.Second)
			// Devices i with i%60 == sec%60 beat this second: 250k/60 per second.
			for i := sec % 60; i < devices; i += 60 {
				if i < silent && sec >= 180 {
					if _, ok := stoppedAt[ids[i]]; !ok {
						// Silent from its first missed beat on.
						stoppedAt[ids[i]] = now
					}
					continue
				}
				x.Device, x.Gateway = ids[i], site.Devices[ids[i]].Gateway
				buf, _ = e.Eval(x, now, buf[:0])
			}
			s := time.Now()
			acts := e.Supervise(now)
			tickCPU += time.Since(s)
			ticks++
			for _, a := range acts {
				if a.Rule != RuleDeviceSilent {
					continue
				}
				since, ok := stoppedAt[a.Device]
				if !ok {
					b.Fatalf("device %s raised silent but was beating", a.Device)
				}
				detected++
				if d := now.Sub(since); d > worst {
					worst = d
				}
			}
		}
		if detected != silent {
			b.Fatalf("detected %d of %d silent devices", detected, silent)
		}
		if worst > beat+10*time.Second {
			b.Fatalf("worst detection %v after the missed beat, want ≤ heartbeat + 10 s", worst)
		}
		b.ReportMetric(worst.Seconds(), "worst-detect-s")
		b.ReportMetric(float64(m1.HeapInuse-m0.HeapInuse)/(1<<20), "engine-MiB")
		b.ReportMetric(float64(tickCPU.Microseconds())/float64(ticks), "µs/tick")
	}
}
