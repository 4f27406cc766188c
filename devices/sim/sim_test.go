package sim_test

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/sim"
	"github.com/vaka-care/vaka/event"
)

// play runs the simulation for d of fake time inside the current synctest
// bubble and returns what it emitted.
func play(t *testing.T, opts sim.Options, devs []devices.Device, d time.Duration) []event.Event {
	t.Helper()
	s, err := sim.New(opts, devs)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Init(t.Context()); !ok || err != nil {
		t.Fatalf("Init = %v, %v", ok, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var got []event.Event
	done := make(chan error)
	go func() {
		done <- s.Run(ctx, func(ev event.Event) {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		})
	}()
	time.Sleep(d)
	synctest.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

var pseudonym = regexp.MustCompile(`^r-[0-9a-f]{4}$`)

func TestNightWander(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at midnight UTC; begin just before 03:00.
		time.Sleep(3*time.Hour - sim.DefaultFirst)
		start := time.Now()
		got := play(t, sim.Options{
			Scenarios:   []string{sim.NightWander},
			Interval:    time.Hour, // only one scenario in the window
			NoTelemetry: true,
			Seed:        42,
		}, nil, sim.DefaultFirst+sim.WanderDoorShutAfter+time.Second)

		t0 := start.Add(sim.DefaultFirst)
		if t0.Hour() != 3 || t0.Minute() != 0 {
			t.Fatalf("scenario starts at %s, want 03:00", t0.Format(time.TimeOnly))
		}
		want := []struct {
			dty   event.DeviceType
			state event.State
			stc   event.StatusCode
			at    time.Time
		}{
			{event.BedMonitor, event.StateEmpty, "", t0},
			{event.Occupancy, event.StateMotion, event.Movement, t0.Add(sim.WanderCorridorAfter)},
			{event.DoorSensor, event.StateOpen, "", t0.Add(sim.WanderDoorOpenAfter)},
			{event.DoorSensor, event.StateClosed, "", t0.Add(sim.WanderDoorShutAfter)},
		}
		if len(got) != len(want) {
			t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			ev := got[i]
			if ev.Type != w.dty || ev.State != w.state || ev.Status != w.stc || !ev.Time.Equal(w.at) {
				t.Errorf("event %d = {%s %s %q %s}, want {%s %s %q %s}", i,
					ev.Type, ev.State, ev.Status, ev.Time.Format(time.TimeOnly),
					w.dty, w.state, w.stc, w.at.Format(time.TimeOnly))
			}
			if ev.Unit != "unit-a" {
				t.Errorf("event %d: unit %q", i, ev.Unit)
			}
			ev.V, ev.ID = event.Version, "test"
			if err := ev.Validate(); err != nil {
				t.Errorf("event %d invalid: %v", i, err)
			}
		}
		bed, pir, door := got[0], got[1], got[2]
		if !pseudonym.MatchString(bed.Resident) {
			t.Errorf("bed event resident %q is not a pseudonym", bed.Resident)
		}
		if pir.Device != "pir-corridor" || pir.Resident != "" {
			t.Errorf("motion from %s (resident %q), want the corridor detector", pir.Device, pir.Resident)
		}
		if door.Device != "door-exit" || got[3].Device != "door-exit" {
			t.Errorf("door events from %s/%s, want the unit exit door", door.Device, got[3].Device)
		}
		if bed.Battery != nil {
			t.Error("a mains-powered bed monitor reported a battery level")
		}
		if pir.Battery == nil || door.Battery == nil {
			t.Error("battery devices did not report their level")
		}
	})
}

func TestSeedIsDeterministic(t *testing.T) {
	run := func(seed uint64) (evs []event.Event, start time.Time) {
		synctest.Test(t, func(t *testing.T) {
			start = time.Now()
			evs = play(t, sim.Options{Seed: seed}, nil, time.Hour)
		})
		return evs, start
	}
	a, start := run(7)
	b, _ := run(7)
	c, _ := run(8)
	if len(a) < 60 {
		t.Fatalf("an hour of demo gave only %d events", len(a))
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different runs")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same run")
	}

	first := false
	kinds := map[string]int{}
	empty := map[string]bool{}
	for i, ev := range a {
		if ev.Time.Equal(start.Add(sim.DefaultFirst)) && (ev.State == event.StatePressed || ev.State == event.StateEmpty || ev.State == event.StateOccupied) {
			first = true
		}
		if ev.Resident != "" && !pseudonym.MatchString(ev.Resident) {
			t.Fatalf("event %d: resident %q is not a pseudonym", i, ev.Resident)
		}
		if i > 0 && ev.Time.Before(a[i-1].Time) {
			t.Fatalf("event %d goes back in time", i)
		}
		ev.V, ev.ID = event.Version, "test"
		if err := ev.Validate(); err != nil {
			t.Fatalf("event %d invalid: %v", i, err)
		}
		kinds[string(ev.Type)+"/"+string(ev.State)+"/"+string(ev.Status)]++
		if ev.Type == event.BedMonitor {
			if ev.State == event.StateEmpty && empty[ev.Device] {
				t.Fatalf("event %d: bed %s empty twice without getting back in", i, ev.Device)
			}
			empty[ev.Device] = ev.State == event.StateEmpty
		}
	}
	if !first {
		t.Error("no scenario started at First (5s)")
	}
	for _, k := range []string{"0003/pressed/0010", "0012/empty/", "0014/open/", "0018/motion/0119"} {
		if kinds[k] == 0 {
			t.Errorf("an hour of demo never produced %s (got %v)", k, kinds)
		}
	}
}

func TestNewRefusesUnplayableScenario(t *testing.T) {
	devs := []devices.Device{{ID: "btn-1", Driver: sim.Name, Type: "0003", Resident: "r-0001"}}
	_, err := sim.New(sim.Options{Scenarios: []string{sim.NightWander}}, devs)
	if err == nil || !strings.Contains(err.Error(), sim.NightWander) {
		t.Fatalf("got %v, want an error naming %s", err, sim.NightWander)
	}
	if _, err := sim.New(sim.Options{Scenarios: []string{sim.CallButton}}, devs); err != nil {
		t.Fatalf("call_button with a button: %v", err)
	}
}

func TestOptionsCheck(t *testing.T) {
	o := sim.Options{Scenarios: []string{"call_button", "disco"}, Interval: time.Millisecond, First: -time.Second}
	err := o.Check("sim")
	if err == nil {
		t.Fatal("bad options passed")
	}
	for _, want := range []string{"sim.scenarios.1", "sim.interval", "sim.first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "sim.scenarios.0") {
		t.Errorf("a valid scenario was refused: %v", err)
	}
}
