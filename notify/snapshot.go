package notify

import (
	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// snapshot is what a track keeps of its alarm for the messages it sends
// later (escalations, reminders, a centre's hand-over): the labels, not a
// whole alarm. Why: the notifier keeps one per open alarm, and a copy of
// alarm.Alarm is 640 bytes where these fields are about 230; with a
// quarter of a million open alarms that is about 100 MB. Its strings are
// the hub's own (shared, interned), never copied.
type snapshot struct {
	id, rule, site, gateway, device string
	unit, room, callerID            string
	kind                            alarm.Kind
	dty                             event.DeviceType
	stc                             event.StatusCode
	lco                             event.LocationCode
	prio                            alarm.Priority
	pos                             *event.Position // latest position (IN, RE)
	first                           *event.Position // oldest of its track: the hand-over's ME
}

// snapshotOf takes what a track needs of a.
func snapshotOf(a *alarm.Alarm) *snapshot {
	s := &snapshot{id: a.ID, rule: a.Rule, site: a.Site, gateway: a.Gateway, device: a.Device,
		unit: a.Unit, room: a.Room, callerID: a.CallerID, kind: a.Kind, dty: a.DeviceType,
		stc: a.Status, lco: a.Location, prio: a.Priority, pos: a.Position}
	if len(a.Track) > 0 {
		p := a.Track[0]
		s.first = &p
	}
	return s
}

// alarm is the snapshot as an alarm, for the message builders (alert,
// Request): every field they read, nothing else.
func (s *snapshot) alarm() *alarm.Alarm {
	a := &alarm.Alarm{ID: s.id, Rule: s.rule, Site: s.site, Gateway: s.gateway, Device: s.device,
		Unit: s.unit, Room: s.room, CallerID: s.callerID, Kind: s.kind, DeviceType: s.dty,
		Status: s.stc, Location: s.lco, Priority: s.prio, Position: s.pos}
	if s.first != nil {
		a.Track = []event.Position{*s.first}
	}
	return a
}
