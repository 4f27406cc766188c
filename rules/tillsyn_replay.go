package rules

import (
	"sort"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/tillsyn"
)

// ReplayTillsyn runs cfg's rules over events in time order, as Replay
// does, and makes the plans' look-ins at their planned times from the
// state the events left, so a night can be re-run with another plan
// ("what if the 02:00 look-in were at 01:30, or needed 10 min in bed").
//
// A replay has no staff: a care alarm counts as open from its raise to
// its restore (the cause gone). Look-ins planned after the log's last
// event are left out (the log ended, not the sensors).
func ReplayTillsyn(cfg Config, plans []*tillsyn.Plan, evs []event.Event) []tillsyn.Record {
	if len(evs) == 0 || len(plans) == 0 {
		return nil
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	e := New(cfg)
	e.live = map[string]*liveness{} // no heartbeats in an event log
	loc := e.cfg.Location
	first, last := evs[0].Time, evs[len(evs)-1].Time
	e.Expect(first)
	byKey := map[string]*tillsyn.Plan{}
	var q tillsyn.Queue
	for _, p := range plans {
		byKey[p.Site+"/"+p.Resident] = p
		for n := tillsyn.NightOf(first, loc, p.NightStart); !n.After(tillsyn.NightOf(last, loc, p.NightStart)); n = n.AddDate(0, 0, 1) {
			for _, l := range p.Schedule(n, loc) {
				if !l.Planned.Before(first) && !l.Planned.After(last) {
					q.Add(l)
				}
			}
		}
	}
	open := map[string]map[string]string{} // site/resident → key → "rule"
	note := func(acts []Action) {
		for _, a := range acts {
			if a.Resident == "" || a.Alarm == alarm.KindTechnical {
				continue
			}
			k := a.Site + "/" + a.Resident
			switch a.Kind {
			case Raise:
				if open[k] == nil {
					open[k] = map[string]string{}
				}
				open[k][a.Key] = a.Rule
			case Restore:
				delete(open[k], a.Key)
			}
		}
	}
	var out []tillsyn.Record
	advance := func(until time.Time) {
		for i := 0; i < 10_000_000; i++ {
			tq, okq := q.Next()
			td, okd := e.NextDeadline()
			switch {
			case okq && !tq.After(until) && (!okd || !td.Before(tq)):
				recs := q.Settle(tq, 1<<20, func(l tillsyn.LookIn) *tillsyn.Plan { return byKey[l.Site+"/"+l.Resident] },
					func(l tillsyn.LookIn, p *tillsyn.Plan) tillsyn.Snapshot {
						s := e.TillsynSnapshot(l.Site, l.Resident, p.Sensors, tq)
						s.Consent = s.Consent && p.Consent
						for key, rule := range open[l.Site+"/"+l.Resident] {
							s.OpenAlarms = append(s.OpenAlarms, rule+" "+key)
						}
						sort.Strings(s.OpenAlarms)
						return s
					})
				out = append(out, recs...)
			case okd && !td.After(until):
				note(e.Supervise(td))
			default:
				return
			}
		}
	}
	var buf []Action
	for i := range evs {
		ev := evs[i]
		advance(ev.Time)
		buf, _ = e.Eval(&ev, ev.Time, buf[:0])
		note(buf)
	}
	// Look-ins planned up to the last event still settle within their
	// tolerance (the sensors' state stays as last reported).
	for i := 0; i < 1000; i++ {
		tq, ok := q.Next()
		if !ok {
			break
		}
		advance(tq)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Planned.Before(out[j].Planned) })
	return out
}
