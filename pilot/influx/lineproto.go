package influx

import (
	"strconv"
	"strings"
	"time"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/pilot"
)

// Measurements written to InfluxDB. Resident and device appear only as
// keyed pseudonyms (fields, so they add no series); no names, no notes.
const (
	MeasEvent      = "vaka_event"      // every accepted event
	MeasTransition = "vaka_transition" // every alarm transition
	MeasAlarm      = "vaka_alarm"      // one pilot record per resolved alarm, at its raise time
	// MeasOutage is one point per device outage, at its detection time,
	// written again (same series and time: fields merged) when it ends.
	MeasOutage = "vaka_outage"
	// MeasParticipation is one point per trial participant, at the start
	// of participation (from the consent registry), rewritten at every
	// start and config reload.
	MeasParticipation = "vaka_participation"
)

// lp builds one line of InfluxDB line protocol. Callers add tags in
// key order: InfluxDB then need not sort them (its advice for ingest
// speed), and the series key is the same string it stores.
type lp struct {
	b      []byte
	fields int
}

func (l *lp) meas(m string) { l.b = appendEsc(l.b, m, ", ") }

func (l *lp) tag(k, v string) {
	if v == "" { // empty tag values are invalid: leave the tag out
		return
	}
	l.b = append(l.b, ',')
	l.b = appendEsc(l.b, k, ",= ")
	l.b = append(l.b, '=')
	l.b = appendEsc(l.b, v, ",= ")
}

func (l *lp) sep() {
	if l.fields == 0 {
		l.b = append(l.b, ' ')
	} else {
		l.b = append(l.b, ',')
	}
	l.fields++
}

func (l *lp) str(k, v string) {
	l.sep()
	l.b = appendEsc(l.b, k, ",= ")
	l.b = append(l.b, '=', '"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '"', '\\':
			l.b = append(l.b, '\\', c)
		case '\n', '\r':
			l.b = append(l.b, ' ')
		default:
			l.b = append(l.b, c)
		}
	}
	l.b = append(l.b, '"')
}

func (l *lp) float(k string, v float64) {
	l.sep()
	l.b = appendEsc(l.b, k, ",= ")
	l.b = append(l.b, '=')
	l.b = strconv.AppendFloat(l.b, v, 'f', -1, 64)
}

func (l *lp) integer(k string, v int64) {
	l.sep()
	l.b = appendEsc(l.b, k, ",= ")
	l.b = append(l.b, '=')
	l.b = strconv.AppendInt(l.b, v, 10)
	l.b = append(l.b, 'i')
}

func (l *lp) boolean(k string, v bool) {
	l.sep()
	l.b = appendEsc(l.b, k, ",= ")
	l.b = append(l.b, '=')
	l.b = strconv.AppendBool(l.b, v)
}

func (l *lp) end(t time.Time) []byte {
	l.b = append(l.b, ' ')
	l.b = strconv.AppendInt(l.b, t.UnixNano(), 10)
	return l.b
}

func appendEsc(b []byte, s, special string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || c == '\r' {
			c = ' '
		}
		if c == '\\' || strings.IndexByte(special, c) >= 0 {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return b
}

// EventLine encodes an accepted event.
func EventLine(m *pilot.Model, ev *event.Event, received time.Time, buf []byte) []byte {
	trial, arm := m.Config.Assign(ev.Site, ev.Unit, ev.Resident, received, m.Loc)
	l := lp{b: buf}
	l.meas(MeasEvent)
	l.tag("arm", arm)
	l.tag("dty", string(ev.Type))
	l.tag("site", ev.Site)
	l.tag("source", string(pilot.SourceOf(ev.Type, "")))
	l.tag("state", string(ev.State))
	l.tag("status", string(ev.Status))
	l.tag("trial", trial)
	l.tag("unit", ev.Unit)
	l.float("n", 1)
	l.str("device", m.Pseud.ID(ev.Site, ev.Device))
	if ev.Resident != "" {
		l.str("resident", m.Pseud.ID(ev.Site, ev.Resident))
	}
	if ev.Battery != nil {
		l.float("battery", float64(*ev.Battery))
	}
	if !ev.Time.IsZero() {
		l.float("source_delay_s", received.Sub(ev.Time).Seconds())
	}
	return l.end(received)
}

// TransitionLine encodes an alarm transition.
func TransitionLine(m *pilot.Model, s *pilot.Step, buf []byte) []byte {
	trial, arm := m.Config.Assign(s.Site, s.Unit, s.Resident, s.RaisedAt, m.Loc)
	l := lp{b: buf}
	l.meas(MeasTransition)
	l.tag("action", string(s.Action))
	l.tag("arm", arm)
	l.tag("kind", string(s.Kind))
	l.tag("outcome", string(s.Outcome))
	l.tag("site", s.Site)
	l.tag("source", string(pilot.SourceOf(s.DeviceType, s.Kind)))
	l.tag("trial", trial)
	l.tag("unit", s.Unit)
	l.str("alarm", s.Alarm)
	l.float("since_raise_s", max(0, s.At.Sub(s.RaisedAt).Seconds()))
	if s.Resident != "" {
		l.str("resident", m.Pseud.ID(s.Site, s.Resident))
	}
	return l.end(s.At)
}

// RecordLine encodes a pilot record, stamped with its raise time and
// tagged with the alarm id (one series per alarm: alarms are few, and two
// alarms raised in the same nanosecond must not overwrite each other).
func RecordLine(r *pilot.Record, buf []byte) []byte {
	l := lp{b: buf}
	l.meas(MeasAlarm)
	l.tag("alarm", r.Alarm)
	l.tag("arm", r.Arm)
	l.tag("kind", r.Kind)
	l.tag("outcome", r.Outcome)
	l.tag("site", r.Site)
	l.tag("source", string(r.Source))
	l.tag("trial", r.Trial)
	l.tag("unit", r.Unit)
	l.str("resident", r.Resident)
	l.str("device", r.Device)
	l.str("rule", r.Rule)
	l.boolean("night", r.Night)
	l.boolean("escalated", r.Escalated)
	if r.PhoneVia != "" {
		l.str("phone_via", r.PhoneVia)
	}
	for _, f := range []struct {
		k string
		v float64
	}{{"to_phone_s", r.ToPhone}, {"to_accept_s", r.ToAccept}, {"to_presence_s", r.ToPresence}, {"to_resolve_s", r.ToResolve}} {
		if f.v >= 0 {
			l.float(f.k, f.v)
		}
	}
	return l.end(r.RaisedAt)
}

// OutageLine encodes a device outage: exact times as integer nanoseconds
// (silent_from_ns, restored_ns), and seconds for dashboards (detect_s
// from the last sign of life to the alarm, down_s until heard again).
func OutageLine(o *pilot.Outage, buf []byte) []byte {
	l := lp{b: buf}
	l.meas(MeasOutage)
	l.tag("arm", o.Arm)
	l.tag("outage", o.ID)
	l.tag("site", o.Site)
	l.tag("source", string(o.Source))
	l.tag("trial", o.Trial)
	l.tag("unit", o.Unit)
	l.float("n", 1)
	l.str("device", o.Device)
	if !o.SilentFrom.IsZero() {
		l.integer("silent_from_ns", o.SilentFrom.UnixNano())
		l.float("detect_s", o.Detect())
	}
	l.boolean("restored", !o.RestoredAt.IsZero())
	if !o.RestoredAt.IsZero() {
		l.integer("restored_ns", o.RestoredAt.UnixNano())
		start := o.SilentFrom
		if start.IsZero() {
			start = o.DetectedAt
		}
		l.float("down_s", max(0, o.RestoredAt.Sub(start).Seconds()))
	}
	return l.end(o.DetectedAt)
}

// ParticipationLine encodes a trial participant (a pseudonym, tagged so
// two residents who started the same day stay two points).
func ParticipationLine(p *pilot.Participation, buf []byte) []byte {
	l := lp{b: buf}
	l.meas(MeasParticipation)
	l.tag("arm", p.Arm)
	l.tag("participant", p.Resident)
	l.tag("site", p.Site)
	l.tag("trial", p.Trial)
	l.float("n", 1)
	var ended int64
	if !p.Ended.IsZero() {
		ended = p.Ended.UnixNano()
	}
	l.integer("ended_ns", ended)
	l.boolean("continued", p.Ended.IsZero())
	l.str("reason", p.Reason)
	return l.end(p.Started)
}
