package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// evalConfig extends testConfig with a pull cord, a fall detector, and a
// unit "n" whose own night window (20:00–08:00) overrides the site's
// (22:00–06:30), with its own exit door.
func evalConfig() Config {
	c := testConfig()
	s := c.Sites["s"]
	s.Devices["pull-a"] = &Device{ID: "pull-a", Site: "s", Gateway: "gw", Type: event.FixedTrigger, Resident: "r-a", Unit: "u", Room: "1-wc"}
	s.Devices["fall-a"] = &Device{ID: "fall-a", Site: "s", Gateway: "gw", Type: event.FallDetector, Resident: "r-a", Unit: "u", Room: "1"}
	s.Devices["exit-n"] = &Device{ID: "exit-n", Site: "s", Gateway: "gw", Type: event.DoorSensor, Unit: "n", Room: "entre-n", Exit: true}
	s.Units["n"] = Window{Start: 20 * 60, End: 8 * 60}
	return c
}

// evt is a time-stamped event as a gateway would send it (no resident,
// unit or room: the registry fills them).
func evt(id, device string, t event.DeviceType, st event.State, stc event.StatusCode, at time.Time) *event.Event {
	return &event.Event{V: 1, ID: id, Site: "s", Gateway: "gw", Device: device, Type: t, State: st, Status: stc, Time: at}
}

func TestEvalTable(t *testing.T) {
	day := local(2026, 11, 23, 14, 0)
	night := local(2026, 11, 23, 3, 0)
	type want struct {
		rule     string
		kind     alarm.Kind
		prio     alarm.Priority
		status   event.StatusCode
		lco      event.LocationCode
		resident string
		unit     string
		room     string
	}
	call := func(room string) *want {
		return &want{RuleCallButton, alarm.KindCall, 1, event.ManualAlarm, "", "r-a", "u", room}
	}
	for _, tc := range []struct {
		name  string
		ev    *event.Event
		known bool
		want  *want // nil: no action
	}{
		{"call button pressed by day", evt("1", "btn-a", event.PersonalTrigger, event.StatePressed, "", day), true, call("1")},
		{"call button pressed at night", evt("1", "btn-a", event.PersonalTrigger, event.StatePressed, "", night), true, call("1")},
		{"call button stc 0010", evt("1", "btn-a", event.PersonalTrigger, "", event.ManualAlarm, day), true, call("1")},
		{"call button stc 0110 assistance", evt("1", "btn-a", event.PersonalTrigger, "", event.Assistance, day), true, call("1")},
		{"call button radio test", evt("1", "btn-a", event.PersonalTrigger, "", "", day), true, nil},
		{"call button movement report", evt("1", "btn-a", event.PersonalTrigger, "", event.Movement, day), true, nil},
		{"fixed trigger stc 0010", evt("1", "pull-a", event.FixedTrigger, "", event.ManualAlarm, day), true, call("1-wc")},
		{"fixed trigger pressed", evt("1", "pull-a", event.FixedTrigger, event.StatePressed, "", night), true, call("1-wc")},
		{"fall detector stc 0009", evt("1", "fall-a", event.FallDetector, "", event.AutomaticAlarm, day), true,
			&want{RuleFall, alarm.KindFall, 1, event.AutomaticAlarm, "", "r-a", "u", "1"}},
		{"fall detector pressed", evt("1", "fall-a", event.FallDetector, event.StatePressed, "", night), true,
			&want{RuleFall, alarm.KindFall, 1, event.AutomaticAlarm, "", "r-a", "u", "1"}},
		{"fall detector radio test", evt("1", "fall-a", event.FallDetector, "", "", day), true, nil},
		{"fall detector stc 0010 is not a fall", evt("1", "fall-a", event.FallDetector, "", event.ManualAlarm, day), true, nil},
		{"exit door open at night", evt("1", "exit", event.DoorSensor, event.StateOpen, "", night), true,
			&want{RuleDoorAtNight, alarm.KindWander, 1, event.AutomaticAlarm, event.LocFrontDoor, "", "u", "entre"}},
		{"exit door open by day", evt("1", "exit", event.DoorSensor, event.StateOpen, "", day), true, nil},
		{"exit door closed at night", evt("1", "exit", event.DoorSensor, event.StateClosed, "", night), true, nil},
		{"exit door no state at night", evt("1", "exit", event.DoorSensor, "", "", night), true, nil},
		{"room door open at night, bed occupied", evt("1", "door-a", event.DoorSensor, event.StateOpen, "", night), true, nil},
		{"room door open at night, no consent", evt("1", "door-b", event.DoorSensor, event.StateOpen, "", night), true, nil},
		{"room door closed at night", evt("1", "door-a", event.DoorSensor, event.StateClosed, "", night), true, nil},
		{"motion", evt("1", "pir-a", event.Occupancy, event.StateMotion, "", night), true, nil},
		// Unit n's night is 20:00–08:00: 07:00 and 21:00 are night there, not on the site.
		{"unit night override 07:00, unit exit", evt("1", "exit-n", event.DoorSensor, event.StateOpen, "", local(2026, 11, 23, 7, 0)), true,
			&want{RuleDoorAtNight, alarm.KindWander, 1, event.AutomaticAlarm, event.LocFrontDoor, "", "n", "entre-n"}},
		{"unit night override 21:00, unit exit", evt("1", "exit-n", event.DoorSensor, event.StateOpen, "", local(2026, 11, 23, 21, 0)), true,
			&want{RuleDoorAtNight, alarm.KindWander, 1, event.AutomaticAlarm, event.LocFrontDoor, "", "n", "entre-n"}},
		{"unit night override 08:00, unit exit", evt("1", "exit-n", event.DoorSensor, event.StateOpen, "", local(2026, 11, 23, 8, 0)), true, nil},
		{"site exit at 07:00 (site night over)", evt("1", "exit", event.DoorSensor, event.StateOpen, "", local(2026, 11, 23, 7, 0)), true, nil},
		{"site exit at 21:00 (site night not begun)", evt("1", "exit", event.DoorSensor, event.StateOpen, "", local(2026, 11, 23, 21, 0)), true, nil},
		{"unit exit at 03:00 (night in both)", evt("1", "exit-n", event.DoorSensor, event.StateOpen, "", night), true,
			&want{RuleDoorAtNight, alarm.KindWander, 1, event.AutomaticAlarm, event.LocFrontDoor, "", "n", "entre-n"}},
		// Unregistered: a call button still raises, flagged unknown; nothing else does.
		{"unregistered call button", evt("1", "nobody", event.PersonalTrigger, event.StatePressed, "", day), false,
			&want{RuleCallButton, alarm.KindCall, 1, event.ManualAlarm, "", "", "", ""}},
		{"unregistered fall detector", evt("1", "nobody", event.FallDetector, "", event.AutomaticAlarm, night), false,
			&want{RuleFall, alarm.KindFall, 1, event.AutomaticAlarm, "", "", "", ""}},
		{"unregistered exit door at night", evt("1", "nobody", event.DoorSensor, event.StateOpen, "", night), false, nil},
		{"unregistered radio test", evt("1", "nobody", event.PersonalTrigger, "", "", night), false, nil},
		{"registered device, other site", func() *event.Event {
			x := evt("1", "btn-a", event.PersonalTrigger, event.StatePressed, "", day)
			x.Site = "elsewhere"
			return x
		}(), false, &want{RuleCallButton, alarm.KindCall, 1, event.ManualAlarm, "", "", "", ""}},
		{"registered device, other gateway", func() *event.Event {
			x := evt("1", "exit", event.DoorSensor, event.StateOpen, "", night)
			x.Gateway = "gw-2"
			return x
		}(), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(evalConfig())
			acts, known := e.Eval(tc.ev, tc.ev.Time, nil)
			if known != tc.known {
				t.Errorf("known = %v, want %v", known, tc.known)
			}
			if tc.want == nil {
				if len(acts) != 0 {
					t.Fatalf("actions %+v, want none", acts)
				}
				return
			}
			if len(acts) != 1 {
				t.Fatalf("%d actions %+v, want 1", len(acts), acts)
			}
			a, w := acts[0], tc.want
			if a.Kind != Raise || a.Rule != w.rule || a.Alarm != w.kind || a.Priority != w.prio || a.Status != w.status || a.Location != w.lco {
				t.Errorf("action %s %s %s p%d stc %s lco %s; want raise %s %s p%d stc %s lco %s",
					kindName(a.Kind), a.Rule, a.Alarm, a.Priority, a.Status, a.Location, w.rule, w.kind, w.prio, w.status, w.lco)
			}
			if a.Resident != w.resident || a.Unit != w.unit || a.Room != w.room {
				t.Errorf("who/where %q/%q/%q, want %q/%q/%q", a.Resident, a.Unit, a.Room, w.resident, w.unit, w.room)
			}
			if a.Event != tc.ev || a.Site != tc.ev.Site || a.Gateway != tc.ev.Gateway || a.Device != tc.ev.Device || a.Type != tc.ev.Type {
				t.Errorf("action does not carry its source event: %+v", a)
			}
			if wantKey := w.rule + "/" + tc.ev.Site + "/" + tc.ev.Device; a.Key != wantKey {
				t.Errorf("key %q, want %q", a.Key, wantKey)
			}
		})
	}
}

func kindName(k ActionKind) string {
	switch k {
	case Raise:
		return "raise"
	case Restore:
		return "restore"
	}
	return fmt.Sprint("kind", int(k))
}

func TestEvalRegistryFillsWhoAndWhereButPayloadWins(t *testing.T) {
	e := New(evalConfig())
	at := local(2026, 11, 23, 14, 0)
	x := evt("1", "btn-a", event.PersonalTrigger, event.StatePressed, "", at)
	if _, known := e.Eval(x, at, nil); !known {
		t.Fatal("registered device unknown")
	}
	if x.Resident != "r-a" || x.Unit != "u" || x.Room != "1" {
		t.Errorf("registry did not fill the event: %+v", x)
	}
	y := evt("2", "btn-a", event.PersonalTrigger, event.StatePressed, "", at)
	y.Room = "visiting-7"
	acts, _ := e.Eval(y, at, nil)
	if len(acts) != 1 || acts[0].Room != "visiting-7" || acts[0].Resident != "r-a" {
		t.Errorf("payload room lost: %+v", acts)
	}
	// Lookup reflects the registry.
	if d, ok := e.Lookup("s", "btn-a"); !ok || d.Resident != "r-a" {
		t.Errorf("Lookup = %+v %v", d, ok)
	}
	if _, ok := e.Lookup("s", "nobody"); ok {
		t.Error("Lookup found an unregistered device")
	}
	if _, ok := e.Lookup("nowhere", "btn-a"); ok {
		t.Error("Lookup found a device in an unknown site")
	}
}

func TestEvalAppendsToOut(t *testing.T) {
	e := New(evalConfig())
	at := local(2026, 11, 23, 3, 0)
	prev := Action{Rule: "previous"}
	out, _ := e.Eval(evt("1", "btn-a", event.PersonalTrigger, event.StatePressed, "", at), at, []Action{prev})
	if len(out) != 2 || out[0].Rule != "previous" || out[1].Rule != RuleCallButton {
		t.Errorf("out %+v", out)
	}
	if e.Stats().Events != 1 {
		t.Errorf("events counted %d", e.Stats().Events)
	}
}

// Every press is an action; grouping repeats into one alarm is the hub's
// job, by the action's key.
func TestEvalCallButtonEveryPressSameKey(t *testing.T) {
	e := New(evalConfig())
	at := local(2026, 11, 23, 3, 0)
	var keys []string
	for i := 0; i < 3; i++ {
		acts, _ := e.Eval(evt(fmt.Sprint(i), "btn-a", event.PersonalTrigger, event.StatePressed, "", at), at.Add(time.Duration(i)*time.Second), nil)
		if len(acts) != 1 {
			t.Fatalf("press %d: %+v", i, acts)
		}
		keys = append(keys, acts[0].Key)
	}
	if keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("keys differ: %v", keys)
	}
}

// gwConfig is one gateway (heartbeat 30 s, 3 missed) with no device
// supervision, so the tests are about the gateway alone.
func gwConfig() Config {
	c := evalConfig()
	c.Sites["s"].Supervision = nil
	return c
}

func wantGatewayAction(t *testing.T, a Action, kind ActionKind) {
	t.Helper()
	st := event.Offline
	if kind == Restore {
		st = event.Restoral
	}
	if a.Kind != kind || a.Rule != RuleGatewayOffline || a.Key != GatewayKey("s", "gw") || a.Key != "gateway_offline/s/gw" ||
		a.Alarm != alarm.KindTechnical || a.Priority != 3 || a.Status != st || a.Site != "s" || a.Gateway != "gw" || a.Type != event.CommLink {
		t.Errorf("gateway action %+v, want %s", a, kindName(kind))
	}
}

func TestGatewayStatusRaisesOnceAndRestores(t *testing.T) {
	e := New(gwConfig())
	t0 := local(2026, 11, 23, 3, 0)
	if _, ok := e.GatewayStatus("s", "gw", true, t0); ok {
		t.Error("first online raised or restored something")
	}
	a, ok := e.GatewayStatus("s", "gw", false, t0.Add(time.Second))
	if !ok {
		t.Fatal("offline raised nothing")
	}
	wantGatewayAction(t, a, Raise)
	if a, ok := e.GatewayStatus("s", "gw", false, t0.Add(2*time.Second)); ok {
		t.Errorf("second offline raised again: %+v", a)
	}
	// Still offline: supervision does not raise it a second time.
	if acts := e.Supervise(t0.Add(time.Hour)); len(acts) != 0 {
		t.Errorf("supervision raised an offline gateway again: %+v", acts)
	}
	a, ok = e.GatewayStatus("s", "gw", true, t0.Add(time.Hour))
	if !ok {
		t.Fatal("online did not restore")
	}
	wantGatewayAction(t, a, Restore)
	if _, ok := e.GatewayStatus("s", "gw", true, t0.Add(time.Hour+time.Second)); ok {
		t.Error("second online restored again")
	}
	// And again: a second outage raises anew.
	if a, ok := e.GatewayStatus("s", "gw", false, t0.Add(2*time.Hour)); !ok || a.Kind != Raise {
		t.Error("second outage did not raise")
	}
	// A heartbeat from an offline gateway restores it too.
	if a, ok := e.Heartbeat("s", "gw", t0.Add(3*time.Hour)); !ok || a.Kind != Restore {
		t.Errorf("heartbeat did not restore: %+v %v", a, ok)
	}
	if _, ok := e.Heartbeat("s", "gw", t0.Add(3*time.Hour+time.Second)); ok {
		t.Error("heartbeat of an online gateway did something")
	}
}

func TestSuperviseMissedHeartbeats(t *testing.T) {
	e := New(gwConfig())
	t0 := local(2026, 11, 23, 3, 0)
	e.Expect(t0)
	// 3 × 30 s = 90 s of silence is allowed; the first instant after is not.
	if acts := e.Supervise(t0.Add(90 * time.Second)); len(acts) != 0 {
		t.Fatalf("offline at exactly 3 missed beats: %+v", acts)
	}
	acts := e.Supervise(t0.Add(90*time.Second + time.Nanosecond))
	if len(acts) != 1 {
		t.Fatalf("after 3 missed beats: %+v", acts)
	}
	wantGatewayAction(t, acts[0], Raise)
	if acts := e.Supervise(t0.Add(10 * time.Minute)); len(acts) != 0 {
		t.Errorf("raised twice: %+v", acts)
	}
	// A beat restores; supervision starts over from that beat.
	b := t0.Add(20 * time.Minute)
	a, ok := e.Heartbeat("s", "gw", b)
	if !ok {
		t.Fatal("beat did not restore")
	}
	wantGatewayAction(t, a, Restore)
	for _, tc := range []struct {
		at   time.Time
		beat bool
		want int
	}{
		{b.Add(30 * time.Second), true, 0},
		{b.Add(60 * time.Second), true, 0},
		{b.Add(149 * time.Second), false, 0}, // 89 s after the last beat
		{b.Add(150 * time.Second), false, 0}, // 90 s
		{b.Add(150*time.Second + time.Millisecond), false, 1},
	} {
		if tc.beat {
			if _, ok := e.Heartbeat("s", "gw", tc.at); ok {
				t.Fatalf("beat at %v of an online gateway did something", tc.at)
			}
			continue
		}
		if acts := e.Supervise(tc.at); len(acts) != tc.want {
			t.Fatalf("at %v: %d actions %+v, want %d", tc.at.Sub(b), len(acts), acts, tc.want)
		}
	}
}

func TestSuperviseMissedDefaultsToThree(t *testing.T) {
	c := gwConfig()
	c.Sites["s"].Gateways["gw"].Missed = 0
	e := New(c)
	t0 := local(2026, 11, 23, 3, 0)
	e.Expect(t0)
	if acts := e.Supervise(t0.Add(90 * time.Second)); len(acts) != 0 {
		t.Fatalf("%+v", acts)
	}
	if acts := e.Supervise(t0.Add(91 * time.Second)); len(acts) != 1 {
		t.Fatalf("missed 0 does not mean 3: %+v", acts)
	}
}

func TestExpectArmsGatewaysNeverHeard(t *testing.T) {
	t0 := local(2026, 11, 23, 3, 0)
	// Without Expect a gateway never heard is not supervised …
	e := New(gwConfig())
	if acts := e.Supervise(t0.Add(24 * time.Hour)); len(acts) != 0 {
		t.Fatalf("unarmed gateway raised: %+v", acts)
	}
	// … with Expect (hub start) it is, from the moment of start.
	e = New(gwConfig())
	e.Expect(t0)
	if acts := e.Supervise(t0.Add(90 * time.Second)); len(acts) != 0 {
		t.Fatalf("raised too early: %+v", acts)
	}
	acts := e.Supervise(t0.Add(91 * time.Second))
	if len(acts) != 1 {
		t.Fatalf("gateway never heard after start was not raised: %+v", acts)
	}
	wantGatewayAction(t, acts[0], Raise)
	// Expect does not reset a gateway that was heard.
	e = New(gwConfig())
	e.Heartbeat("s", "gw", t0)
	e.Expect(t0.Add(time.Minute))
	if acts := e.Supervise(t0.Add(91 * time.Second)); len(acts) != 1 {
		t.Fatalf("Expect moved the last beat of a gateway heard before: %+v", acts)
	}
}

func TestMarkOfflinePreventsDoubleRaise(t *testing.T) {
	e := New(gwConfig())
	t0 := local(2026, 11, 23, 3, 0)
	e.MarkOffline("s", "gw") // the journal has an open offline alarm
	e.Expect(t0)
	if acts := e.Supervise(t0.Add(time.Hour)); len(acts) != 0 {
		t.Errorf("supervision raised a gateway already marked offline: %+v", acts)
	}
	if a, ok := e.GatewayStatus("s", "gw", false, t0.Add(time.Hour)); ok {
		t.Errorf("last will raised a gateway already marked offline: %+v", a)
	}
	a, ok := e.GatewayStatus("s", "gw", true, t0.Add(2*time.Hour))
	if !ok {
		t.Fatal("online after MarkOffline did not restore")
	}
	wantGatewayAction(t, a, Restore)
}

// A gateway not in the config still has its Last Will heard.
func TestGatewayStatusUnconfiguredGateway(t *testing.T) {
	e := New(gwConfig())
	t0 := local(2026, 11, 23, 3, 0)
	a, ok := e.GatewayStatus("s", "gw-x", false, t0)
	if !ok || a.Kind != Raise || a.Key != GatewayKey("s", "gw-x") {
		t.Fatalf("unconfigured gateway offline: %+v %v", a, ok)
	}
	if acts := e.Supervise(t0.Add(24 * time.Hour)); len(acts) != 0 {
		t.Errorf("unconfigured gateway supervised: %+v", acts)
	}
}

// BenchmarkEval: the alarm path (call button) and the background traffic
// that raises nothing (a door by day).
func BenchmarkEval(b *testing.B) {
	day := local(2026, 11, 23, 14, 0)
	night := local(2026, 11, 23, 3, 0)
	for _, bc := range []struct {
		name string
		at   time.Time
		evs  []*event.Event
		acts int // actions per event, checked once
	}{
		{"call_button", night, []*event.Event{evt("1", "btn-a", event.PersonalTrigger, event.StatePressed, "", night)}, 1},
		{"door_by_day", day, []*event.Event{
			evt("1", "exit", event.DoorSensor, event.StateOpen, "", day),
			evt("2", "exit", event.DoorSensor, event.StateClosed, "", day),
		}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := New(evalConfig())
			buf := make([]Action, 0, 8)
			if acts, _ := e.Eval(bc.evs[0], bc.at, buf[:0]); len(acts) != bc.acts {
				b.Fatalf("%d actions, want %d", len(acts), bc.acts)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// 4 s apart (never contact chatter), always 14:00–18:00 of
				// successive days, with the hub's once-a-second supervision
				// amortised in so pending timers do not pile up.
				d := time.Duration(i) * 4 * time.Second
				now := bc.at.Add(d/(4*time.Hour)*24*time.Hour + d%(4*time.Hour))
				buf, _ = e.Eval(bc.evs[i%len(bc.evs)], now, buf[:0])
				if i%256 == 255 {
					if acts := e.Supervise(now); len(acts) != 0 {
						b.Fatalf("supervision raised %+v", acts)
					}
				}
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
