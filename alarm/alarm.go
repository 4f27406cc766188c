// Package alarm holds the care-shaped alarm lifecycle: raised → accepted (by
// whom) → staff at resident (SCAIP 0088) → resolved (0111) with an outcome.
//
// Like package event it is a leaf: the store persists its transitions, the
// HTTP API drives them, and the rules raise them, but the rules of the
// lifecycle itself live only here so every path enforces the same ones.
package alarm

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vaka-care/vaka/event"
)

// Kind is what the alarm is about, as staff think of it.
type Kind string

// Alarm kinds.
const (
	KindCall      Kind = "call"      // trygghetslarm: call button pressed
	KindFall      Kind = "fall"      // fall detector
	KindWander    Kind = "wander"    // exit door at night, geofence exit
	KindTechnical Kind = "technical" // gateway offline, device silent, battery low
	// KindHazard is smoke, gas, carbon monoxide or water where someone
	// lives: a danger to the place and everyone in it, not a request from
	// one person, so staff see it apart from calls.
	KindHazard Kind = "hazard"
)

// Priority: 1 is the most urgent. Technical alarms rank below care alarms.
type Priority int

// State of an alarm in its lifecycle.
type State string

// Lifecycle states.
const (
	Raised   State = "raised"
	Accepted State = "accepted"
	Presence State = "presence" // staff at resident (SCAIP 0088)
	Resolved State = "resolved" // intervention complete (SCAIP 0111)
)

// Outcome codes the reason an alarm happened; pilots compare sources by it.
type Outcome string

// Outcomes, as pilot teams code them.
const (
	OutcomeRealNeed    Outcome = "real_need"
	OutcomeFalse       Outcome = "false"
	OutcomeTechnical   Outcome = "technical"
	OutcomeInformation Outcome = "information"
	OutcomeTest        Outcome = "test"
)

// Outcomes lists every valid outcome in display order.
var Outcomes = []Outcome{OutcomeRealNeed, OutcomeFalse, OutcomeTechnical, OutcomeInformation, OutcomeTest}

// Valid reports whether o is one of the outcome codes.
func (o Outcome) Valid() bool {
	for _, v := range Outcomes {
		if o == v {
			return true
		}
	}
	return false
}

// Action is what a transition did.
type Action string

// Transition actions. Raise and Repeat come from rules, Restore from the
// device coming back; Accept, Presence and Resolve from staff.
const (
	ActRaise    Action = "raise"
	ActRepeat   Action = "repeat"
	ActRestore  Action = "restore"
	ActAccept   Action = "accept"
	ActPresence Action = "presence"
	ActResolve  Action = "resolve"
	// ActTakeOver moves an accepted alarm to another staff member, who
	// confirmed it ("Ta över"). Its From names whose alarm it was, so the
	// history says who took it from whom. Journals written before it
	// existed simply never contain it.
	ActTakeOver Action = "take_over"
)

// Notification actions, recorded by the hub's notifier (package notify) so
// that every step of reaching staff is on the alarm and in the journal:
// who was alerted (notify), which phone confirmed the alert (delivered),
// when it climbed to the next tier (escalate) and each reminder. They are
// allowed on open alarms only and never change the lifecycle state.
const (
	ActNotify    Action = "notify"
	ActDelivered Action = "delivered"
	ActEscalate  Action = "escalate"
	ActReminder  Action = "reminder"
	// ActHandover is a step of handing the alarm to an alarm receiving
	// centre over SCAIP (package notify, scaip.go): the centre's hold
	// (snu 4), an IN update, or the RE abort before the next tier. Its
	// Receiver, Tier and Channel ("scaip") say which centre; its Note the
	// snu or what was sent. The centre's snu 0 is an ActDelivered with
	// Channel "scaip". Journals written before it existed never contain it.
	ActHandover Action = "handover"
)

// Delivery is one phone's proof that it alerted: its service worker
// received the push and confirmed it to the hub (channel push), or the
// staff app, logged in and in view, showed the alarm card it got over the
// live stream (channel app).
type Delivery struct {
	User    string    `json:"user"`
	Phone   string    `json:"phone,omitempty"` // subscription id, "app:<session>", or "webhook:<receiver>"
	At      time.Time `json:"at"`
	Tier    int       `json:"tier"`
	Channel string    `json:"channel,omitempty"` // ChannelPush, ChannelApp or ChannelWebhook
}

// Delivery channels: how a receipt reached the hub.
const (
	ChannelPush    = "push"    // Web Push, confirmed by the service worker
	ChannelApp     = "app"     // shown by the open staff app (live stream)
	ChannelWebhook = "webhook" // a webhook receiver answered 2xx
	ChannelSCAIP   = "scaip"   // an alarm receiving centre answered snu 0 (it has the alarm)
)

// Via is the delivery's channel; receipts journaled before channels were
// recorded are told apart by their phone id.
func (d Delivery) Via() string {
	switch {
	case d.Channel != "":
		return d.Channel
	case strings.HasPrefix(d.Phone, "webhook:"):
		return ChannelWebhook
	case strings.HasPrefix(d.Phone, "app:"):
		return ChannelApp
	}
	return ChannelPush
}

// MaxDeliveries bounds the receipts an alarm keeps.
const MaxDeliveries = 20

// Transition is one entry of an alarm's audit trail. Every change to an
// alarm is a transition, persisted before anyone is told of it.
type Transition struct {
	Seq     uint64          `json:"seq"`
	Alarm   string          `json:"alarm"`
	Action  Action          `json:"action"`
	At      time.Time       `json:"at"`
	By      string          `json:"by,omitempty"` // staff user name, or "rule:<name>"
	Outcome Outcome         `json:"outcome,omitempty"`
	Note    string          `json:"note,omitempty"`
	EventID string          `json:"event_id,omitempty"`
	Raise   *Alarm          `json:"raise,omitempty"` // the alarm as raised, on ActRaise only
	Pos     *event.Position `json:"pos,omitempty"`   // latest position, on ActRepeat and ActRestore
	// Subj, on every action but ActRaise, lets the journal replay rebuild
	// the alarm if its raise record is lost. Not kept in History.
	Subj *Subject `json:"s,omitempty"`
	// Notification steps only:
	Tier     int      `json:"tier,omitempty"`     // escalation tier, 0 = first
	Receiver string   `json:"receiver,omitempty"` // route receiver name
	To       []string `json:"to,omitempty"`       // users (or webhook) alerted
	Phone    string   `json:"phone,omitempty"`    // on ActDelivered: which phone
	Channel  string   `json:"channel,omitempty"`  // on ActDelivered: push, app or webhook
	// From, on ActTakeOver: the staff member who had the alarm before.
	From string `json:"from,omitempty"`
	// Rec is where the journal holds this transition: its byte offset plus
	// one, 0 while it is not (yet) in the journal. Set by the journal on
	// write and on replay; an owned alarm reads its older steps back by it.
	Rec int64 `json:"-"`
}

// Alarm is one alarm and its lifecycle state.
//
// Why some fields are methods: a region's buttons going silent open a
// quarter of a million alarms at once and each must cost at most 1 KB
// (issue 20). The fields an open alarm seldom has (a resident's name on a
// view, a SCAIP caller id, a group, positions, repeats, escalation, what
// comes after staff accept it, and History, which the hub's own alarms
// keep in compact steps instead) live behind one pointer to an extra,
// allocated only when one is set: an alarm is 384 bytes, not 624. Read them with the method of the
// field's name (CallerID(), Track(), ...), set them with SetX. An extra
// is never changed in place, each SetX makes a new one, so a shallow copy
// of an alarm (a notifier's snapshot) never sees the owner's later
// changes. The JSON form is the same as before, field for field and in
// the same order (Wire, json.go). Its names are Wire's alone: MarshalJSON
// and UnmarshalJSON go through a Wire, so these fields carry no json tags
// (a second copy that could only drift).
type Alarm struct {
	ID         string
	Kind       Kind
	Rule       string
	Priority   Priority
	Site       string
	Gateway    string
	Device     string
	DeviceType event.DeviceType
	Status     event.StatusCode
	Location   event.LocationCode
	Unit       string
	Room       string
	Resident   string
	EventID    string
	SourceTime time.Time
	RaisedAt   time.Time
	State      State
	Note       string
	Deliveries []Delivery
	UpdatedAt  time.Time

	// An owned alarm's history (history.go): the last steps in memory and
	// the journal positions of older ones. steps is nil on a plain alarm.
	steps []step
	spill *[]int64 // allocated at the first step moved out

	x *extra // the seldom set fields (extra.go); nil on most open alarms
}

// Open reports whether the alarm still needs staff.
func (a *Alarm) Open() bool { return a.State != Resolved }

// Errors a transition can be refused with. The HTTP API maps them to 409.
var (
	ErrAlreadyAccepted = errors.New("alarm: already accepted by someone else")
	ErrNotAccepted     = errors.New("alarm: must be accepted first")
	ErrResolved        = errors.New("alarm: already resolved")
	ErrBadOutcome      = errors.New("alarm: outcome must be one of real_need, false, technical, information, test")
	ErrUnknownAction   = errors.New("alarm: unknown action")
	ErrNoActor         = errors.New("alarm: a staff action needs the staff member's name")
	// ErrOwnedByOther refuses a step on an alarm someone else accepted:
	// the staff member must take it over first, explicitly.
	ErrOwnedByOther = errors.New("alarm: accepted by someone else; take it over first")
)

// Check reports whether t may be applied to a, without changing a. Staff
// actions are idempotent for the same person (a double tap on "accept" is
// not an error), but another person cannot take an accepted alarm.
func Check(a *Alarm, t Transition) error {
	switch t.Action {
	case ActRaise:
		return nil
	case ActRepeat, ActRestore, ActNotify, ActEscalate, ActReminder, ActDelivered, ActHandover:
		if a.State == Resolved {
			return ErrResolved
		}
		return nil
	case ActAccept:
		if t.By == "" {
			return ErrNoActor
		}
		switch a.State {
		case Raised:
			return nil
		case Resolved:
			return ErrResolved
		default:
			if a.AcceptedBy() == t.By {
				return nil
			}
			return fmt.Errorf("%w (%s)", ErrAlreadyAccepted, a.AcceptedBy())
		}
	case ActPresence, ActTakeOver:
		// Both are a staff member's step on an accepted, open alarm.
		if t.By == "" {
			return ErrNoActor
		}
		switch a.State {
		case Raised:
			return ErrNotAccepted
		case Resolved:
			return ErrResolved
		}
		return nil
	case ActResolve:
		if t.By == "" {
			return ErrNoActor
		}
		if !t.Outcome.Valid() {
			return ErrBadOutcome
		}
		switch a.State {
		case Raised:
			return ErrNotAccepted
		case Resolved:
			return ErrResolved
		}
		return nil
	}
	return ErrUnknownAction
}

// ByUnitPrefix starts Transition.By for a step an alarm unit took itself
// (its presence or check-out key), followed by the device id.
const ByUnitPrefix = "unit:"

// CheckOwner reports whether t, a staff step, may be taken by t.By on a:
// once an alarm is accepted, only the one who accepted it (or took it
// over) may mark presence or resolve it; anyone else must take it over
// first (ActTakeOver), so a colleague never acts on it silently. It is
// kept out of Check on purpose: journals written before the rule held
// such steps and must still replay.
//
// An alarm accepted by an alarm unit's own key (By "unit:<device>", a
// SCAIP presence key pressed by whoever came) has no staff owner: the
// staff who code the outcome in the app need not take it over.
func CheckOwner(a *Alarm, t Transition) error {
	switch t.Action {
	case ActPresence, ActResolve:
		if by := a.AcceptedBy(); a.State != Raised && a.State != Resolved && by != "" && by != t.By &&
			!strings.HasPrefix(by, ByUnitPrefix) {
			return fmt.Errorf("%w (%s)", ErrOwnedByOther, by)
		}
	}
	return nil
}

// Apply checks t and applies it to a, appending it to the history.
func Apply(a *Alarm, t Transition) error {
	if err := Check(a, t); err != nil {
		return err
	}
	at := t.At
	switch t.Action {
	case ActRepeat:
		a.set(func(x *extra) { x.repeats, x.lastRepeatAt = x.repeats+1, &at })
		a.addPos(t.Pos)
	case ActRestore:
		a.SetRestoredAt(&at)
		a.addPos(t.Pos) // "back inside" says where
	case ActReminder:
		a.SetReminders(a.Reminders() + 1)
	case ActEscalate:
		if t.Tier > a.Tier() {
			a.SetTier(t.Tier)
		}
	case ActDelivered:
		if len(a.Deliveries) < MaxDeliveries {
			a.Deliveries = append(a.Deliveries, Delivery{User: t.By, Phone: t.Phone, At: at, Tier: t.Tier, Channel: t.Channel})
		}
	case ActAccept:
		if a.State == Raised {
			a.State = Accepted
			a.set(func(x *extra) { x.acceptedBy, x.acceptedAt = t.By, &at })
		}
	case ActTakeOver:
		if t.From == "" {
			t.From = a.AcceptedBy()
		}
		a.set(func(x *extra) { x.acceptedBy, x.acceptedAt = t.By, &at })
	case ActPresence:
		if a.State == Accepted {
			a.State = Presence
			a.SetPresenceAt(&at)
		}
	case ActResolve:
		a.State = Resolved
		a.setResolved(t.By, &at, t.Outcome)
		a.Note = t.Note
	}
	a.UpdatedAt = at
	t.Raise = nil // the raise snapshot is the alarm itself; keep history lean
	t.Subj = nil  // likewise the subject
	// A button pressed a hundred times is one alarm with Repeats == 100;
	// the journal keeps every press, the alarm's own history the first few.
	if t.Action == ActRepeat && a.Repeats() > MaxRepeatHistory {
		return nil
	}
	if t.Action == ActReminder && a.Reminders() > MaxRepeatHistory {
		return nil
	}
	a.record(&t)
	return nil
}

// MaxTrack bounds the positions an alarm keeps.
const MaxTrack = 20

// MaxRepeatHistory bounds how many repeats an alarm's History lists.
const MaxRepeatHistory = 10

// New builds the alarm that an ActRaise transition carries.
func New(id string, at time.Time) *Alarm {
	return &Alarm{ID: id, State: Raised, RaisedAt: at, UpdatedAt: at}
}

// Clone returns a deep enough copy for readers outside the owner's lock:
// a plain alarm, whose History lists what the original keeps in memory
// (on an owned alarm, the last steps; HistoryOmitted counts the others).
func (a *Alarm) Clone() *Alarm {
	c := *a
	c.steps, c.spill = nil, nil
	var h []Transition
	omitted := a.HistoryOmitted()
	if a.steps != nil {
		h = make([]Transition, len(a.steps))
		for i := range a.steps {
			h[i] = a.steps[i].transition(a)
		}
		if a.spill != nil {
			omitted = len(*a.spill)
		}
	} else {
		h = append([]Transition(nil), a.History()...)
	}
	c.Deliveries = append([]Delivery(nil), a.Deliveries...)
	c.x = a.x.cloneGroup()
	c.set(func(x *extra) { x.history, x.omitted = h, omitted })
	return &c
}
