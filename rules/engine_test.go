package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

var stockholm = mustLoc("Europe/Stockholm")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// local builds a Europe/Stockholm wall-clock time.
func local(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, stockholm)
}

// testConfig is a unit with an exit door and two residents, and a home
// with a tracker and motion detector. r-a has consented to everything,
// r-b to nothing.
func testConfig() Config {
	night, _ := ParseWindow("22:00", "06:30")
	site := &Site{ID: "s", Night: night, Units: map[string]Window{}, Plan: DefaultPlan(),
		UnitPlans: map[string]Plan{}, Devices: map[string]*Device{}, Gateways: map[string]*Gateway{},
		Residents: map[string]*Resident{}, Supervision: map[event.DeviceType]time.Duration{
			event.PersonalTrigger: 3 * time.Minute}}
	site.Gateways["gw"] = &Gateway{ID: "gw", Site: "s", Heartbeat: 30 * time.Second, Missed: 3}
	add := func(id string, t event.DeviceType, res, room string, exit bool) {
		site.Devices[id] = &Device{ID: id, Site: "s", Gateway: "gw", Type: t, Resident: res, Unit: "u", Room: room, Exit: exit}
	}
	add("exit", event.DoorSensor, "", "entre", true)
	add("door-a", event.DoorSensor, "r-a", "1", false)
	add("bed-a", event.BedMonitor, "r-a", "1", false)
	add("btn-a", event.PersonalTrigger, "r-a", "1", false)
	add("bed-b", event.BedMonitor, "r-b", "2", false)
	add("door-b", event.DoorSensor, "r-b", "2", false)
	add("gps-a", event.Tracker, "r-a", "", false)
	add("pir-a", event.Occupancy, "r-a", "1", false)
	all := map[string]bool{}
	for n, r := range Rules {
		if r.Consent {
			all[n] = true
		}
	}
	fence := &Fence{ID: "home", Circle: &Circle{Lat: 58.35, Lon: 11.93, Radius: 100}}
	site.Residents["r-a"] = &Resident{ID: "r-a", Unit: "u", Plan: DefaultPlan(), Consent: all, Fences: []*Fence{fence}}
	site.Residents["r-b"] = &Resident{ID: "r-b", Unit: "u", Plan: DefaultPlan(), Consent: map[string]bool{}}
	return Config{Location: stockholm, Sites: map[string]*Site{"s": site}}
}

func ev(device string, t event.DeviceType, st event.State, at time.Time) *event.Event {
	return &event.Event{V: 1, ID: fmt.Sprint(at.UnixNano()), Site: "s", Gateway: "gw", Device: device, Type: t, State: st, Time: at}
}

// step is one input to the engine: an event, or a supervision tick.
type step struct {
	at    time.Time
	ev    *event.Event
	want  []string // "raise:rule" / "restore:rule" / "update:rule", in order
	check func(t *testing.T, acts []Action)
}

func run(t *testing.T, e *Engine, steps []step) {
	t.Helper()
	for i, s := range steps {
		var acts []Action
		if s.ev != nil {
			s.ev.Time = s.at
			acts, _ = e.Eval(s.ev, s.at, nil)
		} else {
			acts = e.Supervise(s.at)
		}
		var got []string
		for _, a := range acts {
			k := "raise"
			switch a.Kind {
			case Restore:
				k = "restore"
			case Update:
				k = "update"
			}
			got = append(got, k+":"+a.Rule)
		}
		if strings.Join(got, ",") != strings.Join(s.want, ",") {
			t.Fatalf("step %d at %s: actions %v, want %v", i, s.at.Format("01-02 15:04:05 MST"), got, s.want)
		}
		if s.check != nil {
			s.check(t, acts)
		}
	}
}

func TestExitDoorAtNightAcrossDST(t *testing.T) {
	for _, tc := range []struct {
		name  string
		at    time.Time
		alarm bool
	}{
		{"ordinary night 03:00", local(2026, 11, 23, 3, 0), true},
		{"day 14:00", local(2026, 11, 23, 14, 0), false},
		{"window start 22:00 inclusive", local(2026, 11, 23, 22, 0), true},
		{"window end 06:30 exclusive", local(2026, 11, 23, 6, 30), false},
		{"21:59 before the night", local(2026, 11, 23, 21, 59), false},
		// 2026-03-29: clocks go 02:00 → 03:00; 03:30 CEST is night.
		{"spring forward 01:59 CET", local(2026, 3, 29, 1, 59), true},
		{"spring forward 03:30 CEST", local(2026, 3, 29, 3, 30), true},
		{"spring forward 06:29 CEST", local(2026, 3, 29, 6, 29), true},
		{"spring forward 06:31 CEST", local(2026, 3, 29, 6, 31), false},
		// 2026-10-25: clocks go 03:00 → 02:00; both 02:30s are night.
		{"fall back first 02:30 CEST", time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), true},
		{"fall back second 02:30 CET", time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), true},
		{"fall back 06:29 CET", local(2026, 10, 25, 6, 29), true},
		{"fall back 06:30 CET", local(2026, 10, 25, 6, 30), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(testConfig())
			var want []string
			if tc.alarm {
				want = []string{"raise:" + RuleDoorAtNight}
			}
			run(t, e, []step{{at: tc.at, ev: ev("exit", event.DoorSensor, event.StateOpen, tc.at), want: want}})
		})
	}
}

func TestContactChatterAndDoubleReports(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 2, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	run(t, e, []step{
		{at: ms(0), ev: ev("exit", event.DoorSensor, event.StateOpen, ms(0)), want: []string{"raise:" + RuleDoorAtNight}},
		{at: ms(200), ev: ev("exit", event.DoorSensor, event.StateOpen, ms(200))},     // double report
		{at: ms(400), ev: ev("exit", event.DoorSensor, event.StateClosed, ms(400))},   // chatter …
		{at: ms(700), ev: ev("exit", event.DoorSensor, event.StateOpen, ms(700))},     // … re-open within debounce
		{at: ms(900), ev: ev("exit", event.DoorSensor, event.StateClosed, ms(900))},   //
		{at: ms(950), ev: ev("exit", event.DoorSensor, event.StateClosed, ms(950))},   // double close
		{at: ms(60000), ev: ev("exit", event.DoorSensor, event.StateOpen, ms(60000))}, // a real new opening
	}[:6])
	if s := e.Stats().StateRepeats; s != 3 {
		t.Errorf("state repeats = %d, want 3 (double open, re-open in debounce, double close)", s)
	}
	run(t, e, []step{{at: ms(60000), ev: ev("exit", event.DoorSensor, event.StateOpen, ms(60000)), want: []string{"raise:" + RuleDoorAtNight}}})
}

func TestDoorOpenTooLong(t *testing.T) {
	cfg := testConfig()
	on := true
	// Off by default: the unit's plan asks for it on the exit door.
	cfg.Sites["s"].UnitPlans["u"] = DefaultPlan().With("unit", map[string]Override{RuleDoorOpenLong: {Enabled: &on}})
	e := New(cfg)
	t0 := local(2026, 11, 23, 12, 0)
	run(t, e, []step{
		{at: t0, ev: ev("exit", event.DoorSensor, event.StateOpen, t0)}, // daytime: no wander
		{at: t0.Add(4*time.Minute + 59*time.Second)},
		{at: t0.Add(5 * time.Minute), want: []string{"raise:" + RuleDoorOpenLong}, check: func(t *testing.T, a []Action) {
			if a[0].Status != event.OpenTooLong {
				t.Errorf("status %s, want 0077", a[0].Status)
			}
		}},
		{at: t0.Add(6 * time.Minute), ev: ev("exit", event.DoorSensor, event.StateClosed, t0), want: []string{"restore:" + RuleDoorOpenLong}},
		// Open and closed again before the hold: nothing.
		{at: t0.Add(10 * time.Minute), ev: ev("exit", event.DoorSensor, event.StateOpen, t0)},
		{at: t0.Add(11 * time.Minute), ev: ev("exit", event.DoorSensor, event.StateClosed, t0)},
		{at: t0.Add(20 * time.Minute)},
	})
}

func TestBedExitHoldAndReturn(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 3, 0)
	run(t, e, []step{
		// r-a leaves bed and comes back within the 15 min hold: nothing.
		{at: t0, ev: ev("bed-a", event.BedMonitor, event.StateEmpty, t0)},
		{at: t0.Add(10 * time.Minute), ev: ev("bed-a", event.BedMonitor, event.StateOccupied, t0)},
		{at: t0.Add(30 * time.Minute)},
		// Leaves again and does not return.
		{at: t0.Add(40 * time.Minute), ev: ev("bed-a", event.BedMonitor, event.StateEmpty, t0)},
		{at: t0.Add(54 * time.Minute)},
		{at: t0.Add(55 * time.Minute), want: []string{"raise:" + RuleBedExit}, check: func(t *testing.T, a []Action) {
			if a[0].Resident != "r-a" || a[0].Key != RuleBedExit+"/s/r-a" {
				t.Errorf("action %+v", a[0])
			}
		}},
		{at: t0.Add(70 * time.Minute), ev: ev("bed-a", event.BedMonitor, event.StateOccupied, t0), want: []string{"restore:" + RuleBedExit}},
		// r-b has no consent: the rule does not run.
		{at: t0.Add(80 * time.Minute), ev: ev("bed-b", event.BedMonitor, event.StateEmpty, t0)},
		{at: t0.Add(3 * time.Hour)},
	})
	if e.Stats().NoConsent == 0 {
		t.Error("no-consent evaluations not counted")
	}
	// By day the bed rule does not arm.
	d := local(2026, 11, 23, 14, 0)
	run(t, e, []step{
		{at: d, ev: ev("bed-a", event.BedMonitor, event.StateEmpty, d)},
		{at: d.Add(time.Hour)},
	})
}

func TestBedExitPerResidentHold(t *testing.T) {
	cfg := testConfig()
	hold := 5 * time.Minute
	r := cfg.Sites["s"].Residents["r-a"]
	r.Plan = r.Plan.With("resident", map[string]Override{RuleBedExit: {Hold: &hold}})
	e := New(cfg)
	t0 := local(2026, 11, 23, 3, 0)
	run(t, e, []step{
		{at: t0, ev: ev("bed-a", event.BedMonitor, event.StateEmpty, t0)},
		{at: t0.Add(5 * time.Minute), want: []string{"raise:" + RuleBedExit}},
	})
}

func TestRoomDoorContext(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 2, 0)
	run(t, e, []step{
		// Bed occupied: someone else (staff) opens the door – nothing.
		{at: t0, ev: ev("bed-a", event.BedMonitor, event.StateOccupied, t0)},
		{at: t0.Add(time.Minute), ev: ev("door-a", event.DoorSensor, event.StateOpen, t0)},
		{at: t0.Add(2 * time.Minute), ev: ev("door-a", event.DoorSensor, event.StateClosed, t0)},
		// Bed empty, door opens: the resident is leaving the room.
		{at: t0.Add(3 * time.Minute), ev: ev("bed-a", event.BedMonitor, event.StateEmpty, t0)},
		{at: t0.Add(4 * time.Minute), ev: ev("door-a", event.DoorSensor, event.StateOpen, t0), want: []string{"raise:" + RuleRoomDoor}},
		{at: t0.Add(4*time.Minute + 30*time.Second), ev: ev("door-a", event.DoorSensor, event.StateClosed, t0)},
	})
	// Staff present in the room silence it.
	e.StaffPresent("s", "1", t0.Add(5*time.Minute))
	run(t, e, []step{
		{at: t0.Add(6 * time.Minute), ev: ev("door-a", event.DoorSensor, event.StateOpen, t0)},
		{at: t0.Add(6*time.Minute + 10*time.Second), ev: ev("door-a", event.DoorSensor, event.StateClosed, t0)},
	})
	// r-b has no consent: no room-door alarm even with the bed empty.
	run(t, e, []step{
		{at: t0.Add(7 * time.Minute), ev: ev("bed-b", event.BedMonitor, event.StateEmpty, t0)},
		{at: t0.Add(8 * time.Minute), ev: ev("door-b", event.DoorSensor, event.StateOpen, t0)},
	})
}

func gps(lat, lon, acc float64, at time.Time) *event.Event {
	e := ev("gps-a", event.Tracker, event.StateNone, at)
	e.Position = &event.Position{Lat: lat, Lon: lon, Accuracy: acc}
	return e
}

// offset returns a point d metres north of the fence centre.
func north(d float64) float64 { return 58.35 + d/111195 }

func TestGeofenceJitterDoesNotAlarm(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 14, 0)
	var steps []step
	// 20 minutes of fixes jittering across the 100 m edge (95–125 m) with
	// 15–40 m accuracy, and some with no accuracy at all: no alarm.
	dist := []float64{95, 104, 110, 99, 118, 125, 101, 108}
	acc := []float64{15, 20, 30, 40, 25, 35, 0, 30}
	for i := 0; i < 40; i++ {
		at := t0.Add(time.Duration(i) * 30 * time.Second)
		steps = append(steps, step{at: at, ev: gps(north(dist[i%len(dist)]), 11.93, acc[i%len(acc)], at)})
		steps = append(steps, step{at: at.Add(15 * time.Second)})
	}
	run(t, e, steps)
	if e.Stats().GPSGated == 0 {
		t.Error("fixes without accuracy were not gated")
	}
}

func TestGeofenceExitHoldTrackAndReentry(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 14, 0)
	run(t, e, []step{
		{at: t0, ev: gps(north(50), 11.93, 10, t0)},
		{at: t0.Add(time.Minute), ev: gps(north(300), 11.93, 12, t0)},
		// Poor fix back near home does not count as re-entry.
		{at: t0.Add(90 * time.Second), ev: gps(north(90), 11.93, 400, t0)},
		{at: t0.Add(2*time.Minute + 59*time.Second)},
		{at: t0.Add(3 * time.Minute), want: []string{"raise:" + RuleGeofenceExit}, check: func(t *testing.T, a []Action) {
			if a[0].Position == nil || len(a[0].Track) < 2 {
				t.Errorf("alarm lacks position or track: %+v", a[0])
			}
			if a[0].Location != event.LocGeofence {
				t.Errorf("lco %s", a[0].Location)
			}
		}},
		{at: t0.Add(5 * time.Minute), ev: gps(north(40), 11.93, 8, t0), want: []string{"restore:" + RuleGeofenceExit}},
		// A brief excursion shorter than the hold: nothing.
		{at: t0.Add(10 * time.Minute), ev: gps(north(400), 11.93, 8, t0)},
		{at: t0.Add(11 * time.Minute), ev: gps(north(20), 11.93, 8, t0)},
		{at: t0.Add(15 * time.Minute)},
	})
}

// quietGateway: a config whose gateway heartbeat is too slow to matter, so
// a test of device supervision is not about the gateway.
func quietGateway() Config {
	c := testConfig()
	c.Sites["s"].Gateways["gw"].Heartbeat = 24 * time.Hour
	return c
}

func TestCallButtonAndSupervision(t *testing.T) {
	e := New(quietGateway())
	t0 := local(2026, 11, 23, 1, 0)
	e.Expect(t0)
	press := ev("btn-a", event.PersonalTrigger, event.StatePressed, t0)
	run(t, e, []step{
		{at: t0.Add(time.Minute), ev: press, want: []string{"raise:" + RuleCallButton}},
		// Radio tests keep it supervised.
		{at: t0.Add(3 * time.Minute), ev: ev("btn-a", event.PersonalTrigger, event.StateNone, t0)},
		{at: t0.Add(5*time.Minute + 59*time.Second)},
		{at: t0.Add(6 * time.Minute), want: []string{"raise:" + RuleDeviceSilent}, check: func(t *testing.T, a []Action) {
			if a[0].Status != event.RadioTestMissing {
				t.Errorf("a silent call button is stc %s, want 0123", a[0].Status)
			}
		}},
		{at: t0.Add(7 * time.Minute), ev: ev("btn-a", event.PersonalTrigger, event.StateNone, t0), want: []string{"restore:" + RuleDeviceSilent}},
	})
}

func TestGatewayOfflineInhibitsDeviceSilence(t *testing.T) {
	e := New(quietGateway())
	t0 := local(2026, 11, 23, 1, 0)
	e.Expect(t0)
	if _, ok := e.GatewayStatus("s", "gw", false, t0.Add(time.Minute)); !ok {
		t.Fatal("last will did not raise")
	}
	// The button is silent because its gateway is: no device alarm.
	run(t, e, []step{{at: t0.Add(10 * time.Minute)}})
	a, ok := e.GatewayStatus("s", "gw", true, t0.Add(11*time.Minute))
	if !ok || a.Kind != Restore {
		t.Fatalf("online did not restore: %+v %v", a, ok)
	}
	// Back online: a fresh supervision period, then the silent device is caught.
	run(t, e, []step{
		{at: t0.Add(13 * time.Minute)},
		{at: t0.Add(14*time.Minute + 1*time.Second), want: []string{"raise:" + RuleDeviceSilent}},
	})
}

func TestGatewayHeartbeatsMissed(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 1, 0)
	e.Expect(t0)
	e.Heartbeat("s", "gw", t0.Add(30*time.Second))
	if acts := e.Supervise(t0.Add(2 * time.Minute)); len(acts) != 0 {
		t.Fatalf("offline before 3 missed beats: %+v", acts)
	}
	acts := e.Supervise(t0.Add(2*time.Minute + 1*time.Second))
	if len(acts) != 1 || acts[0].Rule != RuleGatewayOffline {
		t.Fatalf("acts = %+v", acts)
	}
}

func TestBatteryLowOnceAndRestored(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 12, 0)
	bat := func(p int) *event.Event {
		x := ev("door-a", event.DoorSensor, event.StateNone, t0)
		x.Battery = &p
		return x
	}
	run(t, e, []step{
		{at: t0, ev: bat(12), want: []string{"raise:" + RuleBatteryLow}},
		{at: t0.Add(time.Hour), ev: bat(11)},
		{at: t0.Add(2 * time.Hour), ev: bat(20)}, // hysteresis: not yet restored
		{at: t0.Add(3 * time.Hour), ev: bat(100), want: []string{"restore:" + RuleBatteryLow}},
	})
}

func TestInactivityWindowAndInhibition(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 8, 0)
	run(t, e, []step{
		{at: t0, ev: ev("pir-a", event.Occupancy, event.StateMotion, t0)},
		{at: t0.Add(4*time.Hour - time.Second)},
		{at: t0.Add(4 * time.Hour), want: []string{"raise:" + RuleInactivity}},
		{at: t0.Add(5 * time.Hour), ev: ev("pir-a", event.Occupancy, event.StateMotion, t0), want: []string{"restore:" + RuleInactivity}},
	})
	// Motion at 20:00, then none: 00:00 is outside the 07–22 window, so
	// the alarm waits for the window to open.
	t1 := local(2026, 11, 23, 20, 0)
	run(t, e, []step{
		{at: t1, ev: ev("pir-a", event.Occupancy, event.StateMotion, t1)},
		{at: local(2026, 11, 24, 6, 59)},
		{at: local(2026, 11, 24, 7, 0), want: []string{"raise:" + RuleInactivity}},
	})
}

func TestUnknownDeviceStillRaisesCallButFlagged(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 12, 0)
	x := ev("nobody-knows", event.PersonalTrigger, event.StatePressed, t0)
	acts, known := e.Eval(x, t0, nil)
	if known || len(acts) != 1 || acts[0].Rule != RuleCallButton {
		t.Fatalf("acts %+v known %v", acts, known)
	}
	y := ev("nobody-knows-door", event.DoorSensor, event.StateOpen, t0)
	if acts, known := e.Eval(y, t0, nil); known || len(acts) != 0 {
		t.Fatalf("unknown door raised %+v", acts)
	}
	// Registered device on the wrong gateway is unknown too.
	z := ev("btn-a", event.PersonalTrigger, event.StatePressed, t0)
	z.Gateway = "other"
	if _, known := e.Eval(z, t0, nil); known {
		t.Fatal("device accepted from a gateway it is not registered on")
	}
}

func TestSetConfigKeepsPendingState(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 3, 0)
	run(t, e, []step{{at: t0, ev: ev("bed-a", event.BedMonitor, event.StateEmpty, t0)}})
	// Reload with a shorter hold: the pending bed exit re-arms against it.
	cfg := testConfig()
	hold := 5 * time.Minute
	r := cfg.Sites["s"].Residents["r-a"]
	r.Plan = r.Plan.With("resident", map[string]Override{RuleBedExit: {Hold: &hold}})
	e.SetConfig(cfg)
	run(t, e, []step{{at: t0.Add(5 * time.Minute), want: []string{"raise:" + RuleBedExit}}})
}

func TestExplain(t *testing.T) {
	e := New(testConfig())
	x, err := e.Explain("s", "r-b", local(2026, 11, 23, 3, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !x.NightNow {
		t.Error("03:00 not night")
	}
	for _, r := range x.Rules {
		if r.Rule == RuleBedExit && (r.Runs || !strings.Contains(r.Why, "consent")) {
			t.Errorf("bed_exit for r-b without consent: %+v", r)
		}
		if r.Rule == RuleCallButton && !r.Runs {
			t.Errorf("call button must always run: %+v", r)
		}
	}
	if _, err := e.Explain("s", "nobody", time.Now()); err == nil {
		t.Error("unknown resident explained")
	}
}

func TestReplayHoldWhatIf(t *testing.T) {
	t0 := local(2026, 11, 23, 2, 0)
	var lines []string
	// Three bed exits lasting 8, 12 and 20 minutes.
	for i, d := range []int{8, 12, 20} {
		start := t0.Add(time.Duration(i) * time.Hour)
		for _, x := range []struct {
			at time.Time
			st string
		}{{start, "empty"}, {start.Add(time.Duration(d) * time.Minute), "occupied"}} {
			lines = append(lines, fmt.Sprintf(`{"v":1,"id":"e%d%s","site":"s","gateway":"gw","device":"bed-a","dty":"0012","state":%q,"ts":%q}`,
				i, x.st, x.st, x.at.UTC().Format(time.RFC3339)))
		}
	}
	lines = append(lines, "not json", `{"v":1}`)
	evs, skipped, err := ReadEvents(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil || skipped != 2 || len(evs) != 6 {
		t.Fatalf("read: %d events, %d skipped, %v", len(evs), skipped, err)
	}
	rep := Replay(testConfig(), evs)
	if rep.PerRule[RuleBedExit] != 1 {
		t.Errorf("15 min hold: %d bed-exit alarms, want 1 (the 20 min one)", rep.PerRule[RuleBedExit])
	}
	cfg := testConfig()
	hold := 10 * time.Minute
	r := cfg.Sites["s"].Residents["r-a"]
	r.Plan = r.Plan.With("what-if", map[string]Override{RuleBedExit: {Hold: &hold}})
	if rep := Replay(cfg, evs); rep.PerRule[RuleBedExit] != 2 {
		t.Errorf("10 min hold: %d bed-exit alarms, want 2", rep.PerRule[RuleBedExit])
	}
}

func TestGatewayReportsFaultsAndDeviceOffline(t *testing.T) {
	e := New(quietGateway())
	t0 := local(2026, 11, 23, 2, 0)
	off := ev("door-a", event.DoorSensor, event.StateNone, t0)
	off.Status = event.Offline
	lost := ev("gw", event.CommLink, event.StateNone, t0)
	lost.Status = event.IPConnectionFailed
	back := ev("door-a", event.DoorSensor, event.StateClosed, t0)
	run(t, e, []step{
		{at: t0, ev: lost, want: []string{"raise:" + RuleGatewayFault}},
		{at: t0.Add(time.Second), ev: off, want: []string{"raise:" + RuleDeviceSilent}},
		{at: t0.Add(2 * time.Second), ev: off}, // reported again: still one alarm
		{at: t0.Add(time.Minute), ev: back, want: []string{"restore:" + RuleDeviceSilent}},
	})
	devs, _ := e.Health()
	if devs[0].Status == "silent" {
		t.Errorf("restored device still listed silent: %+v", devs[0])
	}
}

func TestHealthListsTroubleFirst(t *testing.T) {
	e := New(quietGateway())
	t0 := local(2026, 11, 23, 12, 0)
	e.Expect(t0)
	low := ev("door-a", event.DoorSensor, event.StateClosed, t0)
	b := 9
	low.Battery = &b
	e.Eval(low, t0, nil)
	e.Eval(ev("pir-a", event.Occupancy, event.StateMotion, t0), t0, nil)
	e.Supervise(t0.Add(4 * time.Minute)) // btn-a never heard: its 3 min supervision fires
	devs, gws := e.Health()
	if devs[0].Device != "btn-a" || devs[0].Status != "silent" {
		t.Fatalf("first = %+v, want the silent call button", devs[0])
	}
	var order []string
	for _, d := range devs {
		order = append(order, d.Status)
	}
	last := -1
	for _, s := range order {
		if statusRank[s] < last {
			t.Fatalf("health not sorted by trouble: %v", order)
		}
		last = statusRank[s]
	}
	if devs[len(devs)-1].Status != "ok" || len(gws) != 1 {
		t.Fatalf("devices %v gateways %+v", order, gws)
	}
	for _, d := range devs {
		if d.Device == "door-a" && (d.Status != "low_battery" || d.Battery != 9) {
			t.Errorf("door-a = %+v", d)
		}
	}
}
