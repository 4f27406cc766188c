package scaip

import (
	"hash/fnv"
	"strconv"
	"time"

	"github.com/vaka-care/vaka/event"
)

// Class is what a request means to Vaka's alarm lifecycle.
type Class string

// Classes. The hub acts on each differently: an alarm raises (or repeats),
// presence and check-out move the open alarm as a staff action would, a
// test is recorded but raises nothing, a heartbeat supervises the line.
const (
	ClassAlarm     Class = "alarm"     // stc omitted, 0009, 0010, 0110, or a code Vaka does not know
	ClassTechnical Class = "technical" // battery low, offline, connection failure, restoral …
	ClassPresence  Class = "presence"  // 0088 presence upon alarm, 0087 planned presence
	ClassCheckout  Class = "checkout"  // 0111 intervention complete: awaiting the outcome from staff
	ClassAccepted  Class = "accepted"  // 0004: someone at the unit accepted the alarm
	ClassTest      Class = "test"      // 0102, 0103 test transmissions
	ClassHeartbeat Class = "heartbeat" // mty PI
	ClassReset     Class = "reset"     // mty RE: the sender aborts the event
	ClassInfo      Class = "info"      // mty IN: new information on the event
)

// Class says what the request is.
func (r *Request) Class() Class {
	switch r.Mty {
	case Heartbeat:
		return ClassHeartbeat
	case Reset:
		return ClassReset
	case Info:
		return ClassInfo
	}
	switch event.StatusCode(r.Stc) {
	case event.Presence, event.PlannedPresence:
		return ClassPresence
	case event.InterventionDone:
		return ClassCheckout
	case event.AlarmAccepted:
		return ClassAccepted
	case event.TestTransmission, event.TestPeriodic:
		return ClassTest
	case "", event.AutomaticAlarm, event.ManualAlarm, event.Assistance:
		return ClassAlarm
	case event.BatteryLow, event.Offline, event.IPConnectionFailed, event.Restoral,
		event.RadioTestMissing, event.OpenTooLong, event.LyingInBed, event.Movement:
		return ClassTechnical
	}
	// A code Vaka does not know is treated as an alarm: staff see it and
	// code the outcome, rather than a unit's message vanishing.
	return ClassAlarm
}

// EventID is the event id of the request: the same bytes resent give the
// same id (so a resend is de-duplicated and answered from the journal),
// any change gives another.
func (r *Request) EventID() string {
	var buf [512]byte
	h := fnv.New64a()
	h.Write(r.appendMarshal(buf[:0]))
	return r.Ref + "." + string(r.Mty) + "." + strconv.FormatUint(h.Sum64(), 16)
}

// Identity is what an event of a ref is about: a ref reused by ME for
// another identity is another event under a used reference.
func (r *Request) Identity() string { return r.Cid + "/" + r.Did + "/" + r.Dty + "/" + r.Stc }

// Target is the registered device a request maps to.
type Target struct {
	Site, Device string
	Type         event.DeviceType // the registry's type; used when dty is not one Vaka knows
	Resident     string
	Unit, Room   string
}

// Event maps the request onto Vaka's canonical event for the rules. The
// event's time is now: SCAIP carries no message time, only a position's
// (tim), which dates the position.
func (r *Request) Event(t Target, now time.Time) event.Event {
	ev := event.Event{V: event.Version, ID: r.EventID(), Site: t.Site, Device: t.Device,
		Resident: t.Resident, Unit: t.Unit, Room: t.Room, Time: now}
	ev.Type = event.DeviceType(r.Dty)
	if !ev.Type.Known() || ev.Type == event.CommLink {
		// The registry says what the device is; a unit's own comm-link
		// code must not be taken for a Vaka gateway's.
		ev.Type = t.Type
	}
	ev.Position = r.Position(now)
	switch r.Class() {
	case ClassAlarm:
		if ev.Type == event.FallDetector {
			ev.Status, ev.State = event.AutomaticAlarm, event.StateFall
		} else {
			// Whatever the device: the unit decided this is an alarm.
			ev.Status, ev.State = event.ManualAlarm, event.StatePressed
		}
	case ClassTechnical, ClassPresence, ClassTest, ClassAccepted:
		ev.Status = event.StatusCode(r.Stc)
	case ClassCheckout:
		ev.Status = event.InterventionDone
	}
	return ev
}

// Position returns the request's position (geo, else GGA), nil without
// one. A tim older than a minute marks the fix as last known at that time.
func (r *Request) Position(now time.Time) *event.Position {
	l := r.Lge
	if l == nil {
		return nil
	}
	var p *event.Position
	if l.Geo != "" {
		if lat, lon, err := parseGeo(l.Geo); err == nil {
			p = &event.Position{Lat: lat, Lon: lon}
		}
	}
	if p == nil && l.GGA != "" {
		if f, err := parseGGA(l.GGA); err == nil && (f.Lat != 0 || f.Lon != 0) {
			p = &event.Position{Lat: f.Lat, Lon: f.Lon, Invalid: !f.Valid}
		}
	}
	if p == nil {
		return nil
	}
	if l.Tim != "" {
		if t, err := parseTim(l.Tim); err == nil && now.Sub(t) > time.Minute {
			t = t.UTC()
			p.LastKnown = &t
		}
	}
	return p
}

// Location is the request's location code (lco), "" when absent.
func (r *Request) Location() event.LocationCode { return event.LocationCode(r.Lco) }

// Priority maps the unit's pri (SS 91100: 0 lowest … 9 highest, 0 when
// omitted) onto Vaka's (1 most urgent … 3): 7–9 → 1, 4–6 → 2, 1–3 → 3;
// 0 → 0, "not stated", since 0 is what a unit sends when nobody set it.
// It is the inverse of the sender's 1 → 9, 2 → 6, 3 → 3 (notify.Request).
func (r *Request) Priority() int {
	switch {
	case r.Pri >= 7:
		return 1
	case r.Pri >= 4:
		return 2
	case r.Pri >= 1:
		return 3
	}
	return 0
}
