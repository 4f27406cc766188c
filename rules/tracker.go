package rules

import (
	"time"

	"github.com/vaka-care/vaka/event"
)

// Trackers: what a GPS fix means beyond the geofence test itself.

// position handles a GPS fix. A fix the device flagged as not valid is
// counted and never used for a geofence. While a geofence_exit alarm is
// raised, every later valid fix (even one the accuracy gate keeps out of
// the fence test: staff chasing a resident need the newest position more
// than a precise one) becomes an Update of that alarm; the step back inside
// is a Restore that carries its fix.
func (e *Engine) position(ss *siteState, rs *resState, ev *event.Event, now time.Time, out []Action) []Action {
	p := *ev.Position
	if p.Invalid {
		e.stats.InvalidFixes++
		return out
	}
	raised := rs.geoRaised
	out = e.fence(ss, rs, ev, p, now, out)
	if raised && rs.geoRaised {
		a := e.resAction(ss, rs, Update, RuleGeofenceExit, "")
		a.Device, a.Gateway, a.Event = ev.Device, ev.Gateway, ev
		a.Track = nil // the hub appends Position to the alarm's own track
		a.Position = &p
		out = append(out, a)
	}
	return out
}

// noteFix remembers a device's last valid fix with its time (the fix's
// own time when the device sent one, else the hub's).
func (ds *devState) noteFix(ev *event.Event, now time.Time) {
	if ev.Position == nil || ev.Position.Invalid {
		return
	}
	p := *ev.Position
	at := ev.Time
	if at.IsZero() || at.After(now) {
		at = now
	}
	p.LastKnown = &at // set only when the fix is used for a later report
	ds.lastFix = &p
}

// attachLastKnown gives an alarm reported without a fix (an SOS from
// indoors, where a watch has cell or wifi data only) the device's last
// valid fix, marked LastKnown with its time and noted for staff, as
// Traccar keeps such a report at the last known position.
//
// An alarm whose own fix the device flagged not valid keeps that fix (it
// is all the report has) and says so in the note.
func (ds *devState) attachLastKnown(a *Action) {
	if a.Type != event.Tracker {
		return
	}
	if a.Position != nil && a.Position.Invalid {
		addNote(a, "positionen är inte giltig enligt enheten / the device marks this position not valid")
		return
	}
	if a.Position != nil || ds.lastFix == nil {
		return
	}
	p := *ds.lastFix
	a.Position = &p
	at := p.LastKnown.UTC().Format(time.RFC3339)
	addNote(a, "ingen position i larmet, senast kända position "+at+" / no fix in the alarm, last known position at "+at)
}

func addNote(a *Action, note string) {
	if a.Note == "" {
		a.Note = note
	} else {
		a.Note += "; " + note
	}
}

// period is a device's supervision period: its own when set (a watch on a
// night stand may need longer than its class), else its type's.
func (s *Site) period(d *Device) (time.Duration, bool) {
	if d.Supervision != nil {
		return *d.Supervision, true
	}
	max, ok := s.Supervision[d.Type]
	return max, ok
}
