package alarm

import (
	"time"

	"github.com/vaka-care/vaka/event"
)

// extra holds the fields an open alarm seldom has (see Alarm). It is
// read-only once an alarm points to it: a setter makes a new one.
type extra struct {
	residentName string
	callerID     string
	callback     string
	groupID      string
	group        *Group
	position     *event.Position
	track        []event.Position
	lastRepeatAt *time.Time
	restoredAt   *time.Time
	presenceAt   *time.Time
	resolvedAt   *time.Time
	resolvedBy   string
	outcome      Outcome
	reminders    int
	omitted      int // HistoryOmitted
	acceptedBy   string
	acceptedAt   *time.Time
	repeats      int
	tier         int
	history      []Transition
}

func (x *extra) zero() bool {
	return x.residentName == "" && x.callerID == "" && x.callback == "" && x.groupID == "" && x.group == nil &&
		x.position == nil && x.track == nil && x.lastRepeatAt == nil && x.restoredAt == nil && x.presenceAt == nil &&
		x.resolvedAt == nil && x.resolvedBy == "" && x.outcome == "" && x.reminders == 0 && x.omitted == 0 &&
		x.acceptedBy == "" && x.acceptedAt == nil && x.repeats == 0 && x.tier == 0 && x.history == nil
}

// set changes a's extra through f on a fresh copy, and drops it when
// nothing is left in it (so alarms equal field for field compare equal).
func (a *Alarm) set(f func(x *extra)) {
	x := new(extra)
	if a.x != nil {
		*x = *a.x
	}
	f(x)
	if x.zero() {
		x = nil
	}
	a.x = x
}

// cloneGroup returns x with its group deeply copied (Clone: the owner
// changes its group in place); x itself when it has none.
func (x *extra) cloneGroup() *extra {
	if x == nil || x.group == nil {
		return x
	}
	c := *x
	c.group = x.group.Clone()
	return &c
}

// ResidentName is filled by the web layer, on a copy, for roles allowed
// to see names. It is never stored, logged or exported.
func (a *Alarm) ResidentName() string {
	if a.x == nil {
		return ""
	}
	return a.x.residentName
}

// SetResidentName sets ResidentName.
func (a *Alarm) SetResidentName(v string) {
	if a.x != nil || v != "" {
		a.set(func(x *extra) { x.residentName = v })
	}
}

// CallerID is a SCAIP unit's caller id (crd, e.g. "gsm:+4670…"): the
// staff card shows a number to call. Personal data: never logged or
// exported.
func (a *Alarm) CallerID() string {
	if a.x == nil {
		return ""
	}
	return a.x.callerID
}

// SetCallerID sets CallerID.
func (a *Alarm) SetCallerID(v string) {
	if a.x != nil || v != "" {
		a.set(func(x *extra) { x.callerID = v })
	}
}

// Callback is "1" when a SCAIP unit asked to be called back (cha 1).
func (a *Alarm) Callback() string {
	if a.x == nil {
		return ""
	}
	return a.x.callback
}

// SetCallback sets Callback.
func (a *Alarm) SetCallback(v string) {
	if a.x != nil || v != "" {
		a.set(func(x *extra) { x.callback = v })
	}
}

// Group is set on a group alarm (group.go). Its owner changes it in place
// under its lock; readers get a deep copy (Clone, Snapshot).
func (a *Alarm) Group() *Group {
	if a.x == nil {
		return nil
	}
	return a.x.group
}

// SetGroup sets Group.
func (a *Alarm) SetGroup(v *Group) {
	if a.x != nil || v != nil {
		a.set(func(x *extra) { x.group = v })
	}
}

// GroupID is set on a group's member alarms: the group alarm's id.
func (a *Alarm) GroupID() string {
	if a.x == nil {
		return ""
	}
	return a.x.groupID
}

// SetGroupID sets GroupID.
func (a *Alarm) SetGroupID(v string) {
	if a.x != nil || v != "" {
		a.set(func(x *extra) { x.groupID = v })
	}
}

// HistoryOmitted, on a list or stream view of an alarm with a long
// history, counts the older steps not listed in History; the alarm's own
// endpoint lists them all. (HistoryOmittedCount also answers for an
// owned alarm.)
func (a *Alarm) HistoryOmitted() int {
	if a.x == nil {
		return 0
	}
	return a.x.omitted
}

// SetHistoryOmitted sets HistoryOmitted.
func (a *Alarm) SetHistoryOmitted(v int) {
	if a.x != nil || v != 0 {
		a.set(func(x *extra) { x.omitted = v })
	}
}

// Position is the latest position (trackers, geofence).
func (a *Alarm) Position() *event.Position {
	if a.x == nil {
		return nil
	}
	return a.x.position
}

// SetPosition sets Position.
func (a *Alarm) SetPosition(v *event.Position) {
	if a.x != nil || v != nil {
		a.set(func(x *extra) { x.position = v })
	}
}

// Track is the recent positions, oldest first, at most MaxTrack. It is
// shared: read it, never change it.
func (a *Alarm) Track() []event.Position {
	if a.x == nil {
		return nil
	}
	return a.x.track
}

// SetTrack sets Track.
func (a *Alarm) SetTrack(v []event.Position) {
	if a.x != nil || v != nil {
		a.set(func(x *extra) { x.track = v })
	}
}

// LastRepeatAt is when the last repeat came ("tryckt 6 gånger, senast
// för 1 min sedan"): History keeps only the first repeats.
func (a *Alarm) LastRepeatAt() *time.Time {
	if a.x == nil {
		return nil
	}
	return a.x.lastRepeatAt
}

// SetLastRepeatAt sets LastRepeatAt.
func (a *Alarm) SetLastRepeatAt(v *time.Time) {
	if a.x != nil || v != nil {
		a.set(func(x *extra) { x.lastRepeatAt = v })
	}
}

// RestoredAt is when the device came back (a technical alarm restored).
func (a *Alarm) RestoredAt() *time.Time {
	if a.x == nil {
		return nil
	}
	return a.x.restoredAt
}

// SetRestoredAt sets RestoredAt.
func (a *Alarm) SetRestoredAt(v *time.Time) {
	if a.x != nil || v != nil {
		a.set(func(x *extra) { x.restoredAt = v })
	}
}

// PresenceAt is when staff reached the resident (SCAIP 0088).
func (a *Alarm) PresenceAt() *time.Time {
	if a.x == nil {
		return nil
	}
	return a.x.presenceAt
}

// SetPresenceAt sets PresenceAt.
func (a *Alarm) SetPresenceAt(v *time.Time) {
	if a.x != nil || v != nil {
		a.set(func(x *extra) { x.presenceAt = v })
	}
}

// ResolvedBy is who resolved the alarm.
func (a *Alarm) ResolvedBy() string {
	if a.x == nil {
		return ""
	}
	return a.x.resolvedBy
}

// SetResolvedBy sets ResolvedBy.
func (a *Alarm) SetResolvedBy(v string) {
	if a.x != nil || v != "" {
		a.set(func(x *extra) { x.resolvedBy = v })
	}
}

// ResolvedAt is when the alarm was resolved.
func (a *Alarm) ResolvedAt() *time.Time {
	if a.x == nil {
		return nil
	}
	return a.x.resolvedAt
}

// SetResolvedAt sets ResolvedAt.
func (a *Alarm) SetResolvedAt(v *time.Time) {
	if a.x != nil || v != nil {
		a.set(func(x *extra) { x.resolvedAt = v })
	}
}

// Outcome is the resolved alarm's outcome code.
func (a *Alarm) Outcome() Outcome {
	if a.x == nil {
		return ""
	}
	return a.x.outcome
}

// SetOutcome sets Outcome.
func (a *Alarm) SetOutcome(v Outcome) {
	if a.x != nil || v != "" {
		a.set(func(x *extra) { x.outcome = v })
	}
}

// setResolved sets the resolution in one new extra.
func (a *Alarm) setResolved(by string, at *time.Time, o Outcome) {
	a.set(func(x *extra) { x.resolvedBy, x.resolvedAt, x.outcome = by, at, o })
}

// Reminders counts the reminders sent.
func (a *Alarm) Reminders() int {
	if a.x == nil {
		return 0
	}
	return a.x.reminders
}

// SetReminders sets Reminders.
func (a *Alarm) SetReminders(v int) {
	if a.x != nil || v != 0 {
		a.set(func(x *extra) { x.reminders = v })
	}
}

// AcceptedBy is who accepted the alarm (or took it over last).
func (a *Alarm) AcceptedBy() string {
	if a.x == nil {
		return ""
	}
	return a.x.acceptedBy
}

// SetAcceptedBy sets AcceptedBy.
func (a *Alarm) SetAcceptedBy(v string) {
	if a.x != nil || v != "" {
		a.set(func(x *extra) { x.acceptedBy = v })
	}
}

// AcceptedAt is when the alarm was accepted (or taken over last).
func (a *Alarm) AcceptedAt() *time.Time {
	if a.x == nil {
		return nil
	}
	return a.x.acceptedAt
}

// SetAcceptedAt sets AcceptedAt.
func (a *Alarm) SetAcceptedAt(v *time.Time) {
	if a.x != nil || v != nil {
		a.set(func(x *extra) { x.acceptedAt = v })
	}
}

// Repeats counts the presses (events) that came again while it was open.
func (a *Alarm) Repeats() int {
	if a.x == nil {
		return 0
	}
	return a.x.repeats
}

// SetRepeats sets Repeats.
func (a *Alarm) SetRepeats(v int) {
	if a.x != nil || v != 0 {
		a.set(func(x *extra) { x.repeats = v })
	}
}

// Tier is the escalation tier now notified (0: the first).
func (a *Alarm) Tier() int {
	if a.x == nil {
		return 0
	}
	return a.x.tier
}

// SetTier sets Tier.
func (a *Alarm) SetTier(v int) {
	if a.x != nil || v != 0 {
		a.set(func(x *extra) { x.tier = v })
	}
}

// History is a plain alarm's audit trail (an owned alarm keeps compact
// steps instead: read them with HistoryLen and HistoryEntry, or on a
// Clone). It is shared: read it, never change its entries.
func (a *Alarm) History() []Transition {
	if a.x == nil {
		return nil
	}
	return a.x.history
}

// SetHistory sets History.
func (a *Alarm) SetHistory(v []Transition) {
	if a.x != nil || v != nil {
		a.set(func(x *extra) { x.history = v })
	}
}
