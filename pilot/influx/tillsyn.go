package influx

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vaka-care/vaka/pilot"
	"github.com/vaka-care/vaka/tillsyn"
)

// Measurements of digital night supervision (docs/tillsyn.md).
const (
	MeasLookIn = "vaka_lookin" // one look-in: outcome, cause, what it led to
	MeasVisit  = "vaka_visit"  // one physical night visit staff recorded
)

// LookInLine encodes a look-in at its planned time. The resident (a
// pseudonym) is a tag, not the look-in's own id: a region's 30,000
// look-ins a night would otherwise each make a series. Resident and
// planned time still make the point unique, so a resend is the same point.
func LookInLine(x *pilot.LookIn, buf []byte) []byte {
	l := lp{b: buf}
	l.meas(MeasLookIn)
	l.tag("arm", x.Arm)
	l.tag("cause", x.Cause)
	l.tag("led_to", x.LedTo)
	l.tag("outcome", x.Outcome)
	l.tag("resident", x.Resident)
	l.tag("site", x.Site)
	l.tag("trial", x.Trial)
	l.tag("unit", x.Unit)
	l.str("lookin", x.ID)
	l.str("night", x.Night)
	l.boolean("replaces", x.Replaces)
	return l.end(x.Planned)
}

// VisitLine encodes a recorded physical visit at its time.
func VisitLine(v *pilot.Visit, buf []byte) []byte {
	l := lp{b: buf}
	l.meas(MeasVisit)
	l.tag("arm", v.Arm)
	l.tag("resident", v.Resident)
	l.tag("site", v.Site)
	l.tag("trial", v.Trial)
	l.str("visit", v.ID)
	l.str("night", v.Night)
	l.boolean("asked", v.Asked)
	return l.end(v.At)
}

// SupervisionStore keeps look-ins and visits; a RecordStore that is one
// also gets them.
type SupervisionStore interface {
	AddSupervision(ls []pilot.LookIn, vs []pilot.Visit) error
}

// ObserveLookIn implements hub.TillsynObserver: hand off, never wait.
func (e *Exporter) ObserveLookIn(r tillsyn.Record) {
	c := r
	e.offer(item{lookin: &c})
}

// ObserveVisit implements hub.TillsynObserver.
func (e *Exporter) ObserveVisit(v tillsyn.Visit) {
	c := v
	e.offer(item{visit: &c})
}

// Supervision returns trial's look-ins planned and visits made in
// [from, to) (it makes the client a pilot/web SupervisionSource, so the
// dashboard counts visits replaced from InfluxDB as from the embedded
// store).
func (c *Client) Supervision(ctx context.Context, trial string, from, to time.Time) ([]pilot.LookIn, []pilot.Visit, error) {
	q := func(meas string) string {
		return fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.trial == %q)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
			c.bucket, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), meas, trial)
	}
	var ls []pilot.LookIn
	err := c.rows(ctx, q(MeasLookIn), func(v map[string]any, at time.Time) {
		s := func(k string) string { x, _ := v[k].(string); return x }
		r, _ := v["replaces"].(bool)
		ls = append(ls, pilot.LookIn{ID: s("lookin"), Trial: s("trial"), Arm: s("arm"), Site: s("site"), Unit: s("unit"),
			Resident: s("resident"), Night: s("night"), Planned: at, Outcome: s("outcome"), Cause: s("cause"), LedTo: s("led_to"), Replaces: r})
	})
	if err != nil {
		return nil, nil, err
	}
	var vs []pilot.Visit
	err = c.rows(ctx, q(MeasVisit), func(v map[string]any, at time.Time) {
		s := func(k string) string { x, _ := v[k].(string); return x }
		a, _ := v["asked"].(bool)
		vs = append(vs, pilot.Visit{ID: s("visit"), Trial: s("trial"), Arm: s("arm"), Site: s("site"), Resident: s("resident"),
			Night: s("night"), At: at, Asked: a})
	})
	slices.SortStableFunc(ls, func(a, b pilot.LookIn) int { return a.Planned.Compare(b.Planned) })
	slices.SortStableFunc(vs, func(a, b pilot.Visit) int { return a.At.Compare(b.At) })
	return ls, vs, err
}
