package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

// A GPS watch's SOS and fall alarms (Traccar sos and fallDown, mapped to
// 0010 and 0009 on a 0051 tracker) raise call and fall alarms, with the
// fix attached; a plain fix does not.
func TestTrackerAlarms(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 14, 0)
	sos := gps(north(10), 11.93, 8, t0)
	sos.Status = event.ManualAlarm
	fall := gps(north(10), 11.93, 8, t0.Add(time.Minute))
	fall.Status = event.AutomaticAlarm
	run(t, e, []step{
		{at: t0, ev: sos, want: []string{"raise:" + RuleCallButton}, check: func(t *testing.T, acts []Action) {
			if acts[0].Position == nil || acts[0].Type != event.Tracker {
				t.Errorf("sos action %+v lacks the fix or the tracker type", acts[0])
			}
		}},
		{at: t0.Add(time.Minute), ev: fall, want: []string{"raise:" + RuleFall}},
		{at: t0.Add(2 * time.Minute), ev: gps(north(10), 11.93, 8, t0)},
	})
	// An unregistered watch's SOS still raises: a person asked for help.
	u := gps(1, 2, 5, t0)
	u.Device, u.Status = "unknown-watch", event.ManualAlarm
	acts, known := e.Eval(u, t0, nil)
	if known || len(acts) != 1 || acts[0].Rule != RuleCallButton {
		t.Errorf("unknown watch sos: known %v acts %+v", known, acts)
	}
}

// A geofence alarm follows the resident: each valid fix after the raise is
// an Update with that fix (even one too coarse for the fence test), a fix
// the device flagged not valid is neither an update nor a return, and the
// step back inside is a Restore that carries its fix.
func TestGeofenceAlarmFollowsTheResident(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 14, 0)
	bad := gps(north(40), 11.93, 8, t0)
	bad.Position.Invalid = true // valid=false: inside, but must not end the alarm
	pos := func(want float64) func(*testing.T, []Action) {
		return func(t *testing.T, a []Action) {
			t.Helper()
			if a[0].Position == nil || a[0].Position.Lat != north(want) {
				t.Errorf("%v position %+v, want %v m north", a[0].Kind, a[0].Position, want)
			}
			if a[0].Key != RuleGeofenceExit+"/s/r-a" {
				t.Errorf("key %q", a[0].Key)
			}
		}
	}
	run(t, e, []step{
		{at: t0, ev: gps(north(50), 11.93, 10, t0)},
		{at: t0.Add(time.Minute), ev: gps(north(300), 11.93, 10, t0)},
		{at: t0.Add(3 * time.Minute), want: []string{"raise:" + RuleGeofenceExit}, check: pos(300)},
		{at: t0.Add(4 * time.Minute), ev: gps(north(600), 11.93, 12, t0), want: []string{"update:" + RuleGeofenceExit}, check: pos(600)},
		{at: t0.Add(5 * time.Minute), ev: gps(north(900), 11.93, 400, t0), want: []string{"update:" + RuleGeofenceExit}, check: pos(900)},
		{at: t0.Add(6 * time.Minute), ev: bad},
		{at: t0.Add(7 * time.Minute), ev: gps(north(30), 11.93, 8, t0), want: []string{"restore:" + RuleGeofenceExit}, check: pos(30)},
		// After the return, fixes are plain fixes again.
		{at: t0.Add(8 * time.Minute), ev: gps(north(20), 11.93, 8, t0)},
	})
	if e.Stats().InvalidFixes != 1 {
		t.Errorf("invalid fixes %d, want 1", e.Stats().InvalidFixes)
	}
}

// A fix flagged not valid never starts a geofence exit.
func TestInvalidFixNeverMovesAGeofence(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 14, 0)
	out := gps(north(2000), 11.93, 10, t0)
	out.Position.Invalid = true
	run(t, e, []step{
		{at: t0, ev: gps(north(50), 11.93, 10, t0)},
		{at: t0.Add(time.Minute), ev: out},
		{at: t0.Add(10 * time.Minute)},
	})
}

// An SOS without a fix (a watch indoors) raises with the device's last
// valid fix, marked LastKnown with its time and noted for staff; an invalid
// fix is never the last known one.
func TestSOSWithoutFixUsesLastKnown(t *testing.T) {
	e := New(testConfig())
	t0 := local(2026, 11, 23, 14, 0)
	inv := gps(north(5000), 11.93, 10, t0)
	inv.Position.Invalid = true
	sos := ev("gps-a", event.Tracker, event.StateNone, t0)
	sos.Status = event.ManualAlarm
	first := ev("gps-a", event.Tracker, event.StateNone, t0)
	first.Status = event.ManualAlarm
	run(t, e, []step{
		{at: t0, ev: first, want: []string{"raise:" + RuleCallButton}, check: func(t *testing.T, a []Action) {
			if a[0].Position != nil {
				t.Errorf("no fix ever: position %+v, want none", a[0].Position)
			}
		}},
		{at: t0.Add(time.Minute), ev: gps(north(50), 11.93, 9, t0)},
		{at: t0.Add(2 * time.Minute), ev: inv},
		{at: t0.Add(10 * time.Minute), ev: sos, want: []string{"raise:" + RuleCallButton}, check: func(t *testing.T, a []Action) {
			p := a[0].Position
			if p == nil || p.Lat != north(50) || p.Accuracy != 9 || p.LastKnown == nil || !p.LastKnown.Equal(t0.Add(time.Minute)) {
				t.Fatalf("position %+v, want the last valid fix marked last known at its time", p)
			}
			if !strings.Contains(a[0].Note, "last known position at") {
				t.Errorf("note %q does not tell staff the position may be old", a[0].Note)
			}
		}},
	})
}

// door_open_too_long is off unless a plan asks for it: a room door left
// open all day raises nothing by default; the resident's own plan (or the
// unit's) turns it on.
func TestDoorOpenTooLongOnlyWherePlanned(t *testing.T) {
	if Rules[RuleDoorOpenLong].Default.Enabled {
		t.Fatal("door_open_too_long is on by default")
	}
	cfg := testConfig()
	on := true
	rb := cfg.Sites["s"].Residents["r-b"]
	rb.Plan = rb.Plan.With("resident", map[string]Override{RuleDoorOpenLong: {Enabled: &on}})
	e := New(cfg)
	t0 := local(2026, 11, 23, 12, 0)
	run(t, e, []step{
		{at: t0, ev: ev("door-a", event.DoorSensor, event.StateOpen, t0)},
		{at: t0, ev: ev("exit", event.DoorSensor, event.StateOpen, t0)},
		{at: t0, ev: ev("door-b", event.DoorSensor, event.StateOpen, t0)},
		{at: t0.Add(5 * time.Minute), want: []string{"raise:" + RuleDoorOpenLong}, check: func(t *testing.T, a []Action) {
			if a[0].Device != "door-b" {
				t.Errorf("raised for %s, want only door-b (its resident's plan asks)", a[0].Device)
			}
		}},
		{at: t0.Add(2 * time.Hour)},
	})
}
