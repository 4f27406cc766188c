package rules

import (
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
