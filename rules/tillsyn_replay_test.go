package rules_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/tillsyn"
)

const replayYAML = `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    residents:
      - id: r-a
        consent: {rules: [tillsyn], recorded_by: anna, recorded_at: "2026-11-01"}
        plan:
          tillsyn:
            times: ["23:00", "02:00"]
            tolerance: 10m
            all_right: {in_bed: true, door_closed: true}
    gateways:
      - id: gw
        devices:
          - {id: bed-a, type: bed_monitor, resident: r-a}
          - {id: door-a, type: door_sensor, resident: r-a}
`

// A night's events re-run with other plans: the resident is out of bed
// 01:55–02:12. At 02:00 with 10 min tolerance that is not all right; at
// 01:30 it is; at 02:20 needing 10 min in bed it becomes all right at
// 02:22, when the resident has been back 10 min.
func TestReplayTillsynWithAnotherPlan(t *testing.T) {
	var cfg hub.Config
	if err := config.Decode("hub.yaml", []byte(replayYAML), &cfg); err != nil {
		t.Fatal(err)
	}
	loc := cfg.Loc
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, loc) }
	var evs []event.Event
	n := 0
	add := func(t time.Time, dev, dty string, st event.State) {
		n++
		evs = append(evs, event.Event{V: 1, ID: fmt.Sprintf("e%d", n), Site: "s", Gateway: "gw", Device: dev,
			Type: event.DeviceType(dty), State: st, Time: t})
	}
	for t0 := at(23, 22, 30); t0.Before(at(24, 3, 0)); t0 = t0.Add(20 * time.Minute) {
		add(t0, "door-a", "0014", event.StateClosed)
		if t0.Before(at(24, 1, 55)) || !t0.Before(at(24, 2, 12)) {
			add(t0, "bed-a", "0012", event.StateOccupied) // a repeat while in bed: a sign of life
		}
	}
	add(at(24, 1, 55), "bed-a", "0012", event.StateEmpty)
	add(at(24, 2, 12), "bed-a", "0012", event.StateOccupied)
	add(at(24, 2, 59), "door-a", "0014", event.StateClosed)

	run := func(mod func(p *tillsyn.Plan)) map[string]tillsyn.Record {
		t.Helper()
		plans := cfg.TillsynPlans()
		if len(plans) != 1 {
			t.Fatalf("%d plans", len(plans))
		}
		if mod != nil {
			mod(plans[0])
			if errs := plans[0].Check(); len(errs) > 0 {
				t.Fatalf("modified plan: %v", errs)
			}
		}
		recs := rules.ReplayTillsyn(cfg.RuleConfig(), plans, append([]event.Event(nil), evs...))
		out := map[string]tillsyn.Record{}
		for _, r := range recs {
			out[r.Wall] = r
		}
		return out
	}
	got := run(nil)
	if len(got) != 2 || got["23:00"].Outcome != tillsyn.AllRight || got["02:00"].Outcome != tillsyn.NotAllRight ||
		!got["02:00"].At.Equal(at(24, 2, 10)) {
		t.Errorf("as planned: %+v", got)
	}
	got = run(func(p *tillsyn.Plan) { p.Times = []int{23 * 60, 90} })
	if got["01:30"].Outcome != tillsyn.AllRight || !got["01:30"].At.Equal(at(24, 1, 30)) {
		t.Errorf("at 01:30: %+v", got["01:30"])
	}
	got = run(func(p *tillsyn.Plan) { p.Times = []int{23 * 60, 2*60 + 20}; p.Criteria.InBedFor = 10 * time.Minute })
	if r := got["02:20"]; r.Outcome != tillsyn.AllRight || r.At.Before(at(24, 2, 22)) || r.At.After(at(24, 2, 22).Add(tillsyn.Recheck)) {
		t.Errorf("at 02:20 needing 10 min in bed: %s at %s", r.Outcome, r.At.In(loc))
	}
}
