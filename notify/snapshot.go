package notify

import (
	"sync"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// snapshot is what a track keeps of its alarm for the messages it sends
// later (escalations, reminders, a centre's hand-over): the labels, not a
// whole alarm. Why: the notifier keeps one per open alarm (issue 20: at
// most 1 KB per open alarm with a quarter of a million of them). It is
// kept in the Track itself, not behind a pointer of its own, and the
// labels that many alarms share (site, gateway, unit, rule, kind, device
// type, codes, priority) are one interned, read-only value: per alarm are
// only its device, room, caller id and positions, about 72 bytes where a
// copy of the labels was 224 and a copy of alarm.Alarm 640; a SCAIP
// caller id and positions, seldom there, are behind one more pointer. Its
// strings are the hub's own (shared, interned), never copied. The alarm's
// id is the Track's.
type snapshot struct {
	device, room string
	lab          *labels     // nil: no snapshot taken yet
	rare         *rareLabels // nil when the alarm has none of them
}

// rareLabels are what few alarms have: read-only once made.
type rareLabels struct {
	callerID string
	pos      *event.Position // latest position (IN, RE)
	first    *event.Position // oldest of its track: the hand-over's ME
}

// labels are an alarm's labels that many alarms share; comparable, so
// they intern by value.
type labels struct {
	rule, site, gateway, unit string
	kind                      alarm.Kind
	dty                       event.DeviceType
	stc                       event.StatusCode
	lco                       event.LocationCode
	prio                      alarm.Priority
}

// internedLabels holds one copy of each label set seen lately; bounded
// (cleared when full): a snapshot keeps its pointer whatever the table
// does later.
var internedLabels = struct {
	sync.Mutex
	m map[labels]*labels
}{m: map[labels]*labels{}}

const maxLabels = 1 << 14

func internLabels(l labels) *labels {
	internedLabels.Lock()
	defer internedLabels.Unlock()
	if p := internedLabels.m[l]; p != nil {
		return p
	}
	if len(internedLabels.m) >= maxLabels {
		clear(internedLabels.m)
	}
	p := &l
	internedLabels.m[l] = p
	return p
}

// taken reports whether the snapshot holds an alarm's labels.
func (s *snapshot) taken() bool { return s.lab != nil }

// snapshotOf takes what a track needs of a.
func snapshotOf(a *alarm.Alarm) snapshot {
	s := snapshot{device: a.Device, room: a.Room,
		lab: internLabels(labels{rule: a.Rule, site: a.Site, gateway: a.Gateway, unit: a.Unit, kind: a.Kind,
			dty: a.DeviceType, stc: a.Status, lco: a.Location, prio: a.Priority})}
	if a.CallerID() != "" || a.Position() != nil || len(a.Track()) > 0 {
		r := &rareLabels{callerID: a.CallerID(), pos: a.Position()}
		if t := a.Track(); len(t) > 0 {
			p := t[0]
			r.first = &p
		}
		s.rare = r
	}
	return s
}

// alarm is the snapshot as alarm id, for the message builders (alert,
// Request): every field they read, nothing else.
func (s *snapshot) alarm(id string) *alarm.Alarm {
	l := s.lab
	a := &alarm.Alarm{ID: id, Rule: l.rule, Site: l.site, Gateway: l.gateway, Device: s.device,
		Unit: l.unit, Room: s.room, Kind: l.kind, DeviceType: l.dty,
		Status: l.stc, Location: l.lco, Priority: l.prio}
	if r := s.rare; r != nil {
		a.SetCallerID(r.callerID)
		a.SetPosition(r.pos)
		if r.first != nil {
			a.SetTrack([]event.Position{*r.first})
		}
	}
	return a
}

// planKey is what makes two plans the same: route, tiers (receivers are
// read-only and resolved ones shared, roster.go) and timings.
type planKey struct {
	route                 string
	tiers                 [4]*Receiver
	n                     int
	delivery, acc, remind time.Duration
	groupBy               *string
	nGroupBy              int
	groupWait, groupInt   time.Duration
}

// internedPlans holds one copy of each plan seen lately, as
// internedLabels: a track keeps a pointer to a plan that alarms on the
// same route and roster share (a Plan is 104 bytes per open alarm
// otherwise). Plans are read-only once made.
var internedPlans = struct {
	sync.Mutex
	m map[planKey]*Plan
}{m: map[planKey]*Plan{}}

const maxPlans = 4096

// internPlan returns a shared copy of p (p itself, copied, if its kind is
// not kept: more tiers than a key holds).
func internPlan(p Plan) *Plan {
	if len(p.Tiers) > len(planKey{}.tiers) {
		return &p
	}
	k := planKey{route: p.Route, n: len(p.Tiers), delivery: p.DeliveryTimeout, acc: p.AcceptTimeout,
		remind: p.RemindEvery, nGroupBy: len(p.GroupBy), groupWait: p.GroupWait, groupInt: p.GroupInterval}
	copy(k.tiers[:], p.Tiers)
	if len(p.GroupBy) > 0 {
		k.groupBy = &p.GroupBy[0]
	}
	internedPlans.Lock()
	defer internedPlans.Unlock()
	if q := internedPlans.m[k]; q != nil {
		return q
	}
	if len(internedPlans.m) >= maxPlans {
		clear(internedPlans.m)
	}
	q := &p
	internedPlans.m[k] = q
	return q
}
