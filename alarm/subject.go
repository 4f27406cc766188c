package alarm

import (
	"time"

	"github.com/vaka-care/vaka/event"
)

// Subject is what an alarm is about, in ids only: enough to rebuild the
// alarm when the journal record that raised it is lost. Every transition
// but the raise carries one, so a damaged line costs one step of an
// alarm's history, never the alarm. Keys are short because it is written
// with every transition.
type Subject struct {
	Kind       Kind             `json:"k"`
	Rule       string           `json:"r"`
	Priority   Priority         `json:"p"`
	Site       string           `json:"s"`
	Gateway    string           `json:"g,omitempty"`
	Device     string           `json:"d,omitempty"`
	DeviceType event.DeviceType `json:"t,omitempty"`
	Status     event.StatusCode `json:"c,omitempty"`
	Unit       string           `json:"u,omitempty"`
	Room       string           `json:"m,omitempty"`
	Resident   string           `json:"x,omitempty"` // resident id, never a name
	RaisedAt   int64            `json:"at"`          // unix milliseconds
}

// Subject returns the alarm's subject for a transition to carry.
func (a *Alarm) Subject() *Subject {
	return &Subject{
		Kind: a.Kind, Rule: a.Rule, Priority: a.Priority, Site: a.Site, Gateway: a.Gateway,
		Device: a.Device, DeviceType: a.DeviceType, Status: a.Status, Unit: a.Unit, Room: a.Room,
		Resident: a.Resident, RaisedAt: a.RaisedAt.UnixMilli(),
	}
}

// FromSubject rebuilds the alarm id as it was raised, from a subject that a
// later transition carried. What the raise alone knew (the event id, the
// source time, the first position, the raise's note) is gone; the caller
// says so in the alarm's note.
func FromSubject(id string, s *Subject) *Alarm {
	at := time.UnixMilli(s.RaisedAt).UTC()
	a := New(id, at)
	a.Kind, a.Rule, a.Priority = s.Kind, s.Rule, s.Priority
	a.Site, a.Gateway, a.Device, a.DeviceType, a.Status = s.Site, s.Gateway, s.Device, s.DeviceType, s.Status
	a.Unit, a.Room, a.Resident = s.Unit, s.Room, s.Resident
	a.SourceTime = at
	return a
}
