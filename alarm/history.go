package alarm

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vaka-care/vaka/event"
)

// Why alarms the hub owns keep their history compactly: a region's
// supervised buttons going silent together open a quarter of a million
// alarms at once, and a Transition is 240 bytes with every string its own
// copy. The journal already holds every step, so an owned alarm keeps only
// its last MemHistory steps in memory, each a compact step with the
// journal position it was written at, and the positions of older steps;
// whoever needs the whole history (one alarm's page) reads those back from
// the journal. A plain alarm (tests, tools, a view) keeps History as it is.

// MemHistory is how many steps an owned alarm keeps in memory. Alert and
// receipt steps (notify, escalate, reminder, delivered) are kept in
// preference to others, so what the notifier and the staff app read from
// the list (who was alerted, at which tier, who confirmed) stays there.
const MemHistory = 8

// step is one history entry of an owned alarm, in about a third of a
// Transition's size. Strings are interned (see Intern).
type step struct {
	seq uint64
	at  int64      // unix nanoseconds
	rec int64      // journal position + 1; 0 while not in the journal
	txt *stepText  // who and note; nil if neither; read-only, may be shared
	x   *stepExtra // the rare fields, nil on most steps; read-only, may be shared
	act uint8
	out uint8
	// ownEvent: the step's event id is its alarm's (a raise): kept once,
	// on the alarm, not in an extra of its own.
	ownEvent bool
	tier     int32
}

// stepText is a step's who and note, behind one pointer: a raise's
// "rule:x" with its rule's note and an alert's "notify" are the same on
// every alarm, so one shared copy (internText) serves them all and a step
// is 48 bytes, not 72 (issue 20: two steps per open alarm).
type stepText struct{ by, note string }

type stepExtra struct {
	event                    string
	receiver, phone, channel string
	from                     string    // ActTakeOver: whose alarm it was
	to                       *[]string // shared, read-only (internList)
	pos                      *event.Position
}

// actions numbers every Action for the compact step; an action missing
// here would come back as "" (TestStepKeepsEveryAction).
var actions = []Action{"", ActRaise, ActRepeat, ActRestore, ActAccept, ActPresence, ActResolve,
	ActNotify, ActDelivered, ActEscalate, ActReminder, ActTakeOver, ActHandover}

func actCode(a Action) uint8 {
	for i, v := range actions {
		if v == a {
			return uint8(i)
		}
	}
	return 0
}

func outCode(o Outcome) uint8 {
	for i, v := range Outcomes {
		if v == o {
			return uint8(i + 1)
		}
	}
	return 0
}

// pinned steps are kept in memory in preference to others.
func (s *step) pinned() bool {
	switch actions[s.act] {
	case ActNotify, ActEscalate, ActReminder, ActDelivered, ActHandover:
		return true
	}
	return false
}

func toStep(a *Alarm, t *Transition) step {
	s := step{seq: t.Seq, rec: t.Rec, act: actCode(t.Action),
		out: outCode(t.Outcome), tier: int32(t.Tier)}
	event := t.EventID
	if event != "" && t.Action == ActRaise && event == a.EventID {
		s.ownEvent, event = true, ""
	}
	if !t.At.IsZero() {
		s.at = t.At.UnixNano()
	}
	switch t.Action {
	case ActAccept, ActPresence, ActResolve:
		if t.Note != "" {
			// Staff's own words: not shared with anything.
			s.txt = &stepText{by: Intern(t.By), note: t.Note}
			break
		}
		s.txt = internText(t.By, "")
	default:
		s.txt = internText(t.By, t.Note)
	}
	switch {
	case event == "" && t.Phone == "" && t.Pos == nil && t.From == "" && (t.Receiver != "" || t.Channel != "" || len(t.To) > 0):
		// An alert step (notify, escalate, reminder): the same receiver
		// and list on every alarm that route alerts, so one shared extra.
		s.x = internExtra(t.Receiver, t.Channel, t.To)
	case event != "" || t.Receiver != "" || t.Phone != "" || t.Channel != "" || len(t.To) > 0 || t.Pos != nil || t.From != "":
		s.x = &stepExtra{event: event, receiver: Intern(t.Receiver), phone: t.Phone, channel: Intern(t.Channel), to: internList(t.To), pos: t.Pos,
			from: Intern(t.From)}
	}
	return s
}

// internExtra returns the shared, read-only extra of an alert step to
// receiver on channel alerting to.
func internExtra(receiver, channel string, to []string) *stepExtra {
	key := receiver + "\x00" + channel + "\x00" + strings.Join(to, "\x00")
	interned.Lock()
	x, ok := interned.extras[key]
	interned.Unlock()
	if ok {
		return x
	}
	x = &stepExtra{receiver: Intern(receiver), channel: Intern(channel), to: internList(to)}
	interned.Lock()
	if len(interned.extras) >= maxInterned {
		clear(interned.extras)
	}
	interned.extras[key] = x
	interned.Unlock()
	return x
}

func (s *step) transition(a *Alarm) Transition { return s.entry(a, false) }

// entry is the Transition s stands for; its To is a's own (shared, read
// only) when share, else a copy.
func (s *step) entry(a *Alarm, share bool) Transition {
	t := Transition{Seq: s.seq, Alarm: a.ID, Action: actions[s.act], Tier: int(s.tier), Rec: s.rec}
	if s.txt != nil {
		t.By, t.Note = s.txt.by, s.txt.note
	}
	if s.ownEvent {
		t.EventID = a.EventID
	}
	if s.at != 0 {
		t.At = time.Unix(0, s.at).UTC()
	}
	if s.out > 0 {
		t.Outcome = Outcomes[s.out-1]
	}
	if x := s.x; x != nil {
		if x.event != "" {
			t.EventID = x.event
		}
		t.Receiver, t.Phone, t.Channel, t.Pos, t.From = x.receiver, x.phone, x.channel, x.pos, x.from
		if x.to != nil && share {
			t.To = *x.to
		} else if x.to != nil {
			t.To = append([]string(nil), (*x.to)...)
		}
	}
	return t
}

// Own makes a an alarm whose history is kept compactly (the hub's own
// alarms), moving what History holds into that form, and interns its
// strings. Call it before the alarm is shared.
func (a *Alarm) Own() {
	if a.steps != nil {
		return
	}
	a.steps = make([]step, 0, 2)
	old := a.History()
	a.SetHistory(nil)
	for i := range old {
		a.pushStep(&old[i])
	}
	a.Kind = Kind(Intern(string(a.Kind)))
	a.Rule = Intern(a.Rule)
	a.Site = Intern(a.Site)
	a.Gateway = Intern(a.Gateway)
	a.DeviceType = event.DeviceType(Intern(string(a.DeviceType)))
	a.Status = event.StatusCode(Intern(string(a.Status)))
	a.Location = event.LocationCode(Intern(string(a.Location)))
	a.Unit = Intern(a.Unit)
	a.Room = Intern(a.Room)
	a.State = State(Intern(string(a.State)))
	a.Note = Intern(a.Note)
}

// record appends t to the alarm's history.
func (a *Alarm) record(t *Transition) {
	if a.steps == nil {
		a.set(func(x *extra) { x.history = append(x.history, *t) })
		return
	}
	a.pushStep(t)
}

// AddHistory appends t to the history without applying it (the raise,
// whose alarm the transition itself carries).
func (a *Alarm) AddHistory(t Transition) {
	t.Raise, t.Subj = nil, nil
	a.record(&t)
}

func (a *Alarm) pushStep(t *Transition) {
	s := toStep(a, t)
	if len(a.steps) < MemHistory {
		a.steps = append(a.steps, s)
		return
	}
	// Full: move the oldest step that is on disk out, preferring one that
	// is not an alert or receipt. A step still waiting for the journal
	// (held while the disk refuses writes) stays until it is written.
	victim := -1
	for i := range a.steps {
		if a.steps[i].rec != 0 && !a.steps[i].pinned() {
			victim = i
			break
		}
	}
	if victim < 0 {
		for i := range a.steps {
			if a.steps[i].rec != 0 {
				victim = i
				break
			}
		}
	}
	if victim < 0 {
		a.steps = append(a.steps, s)
		return
	}
	if a.spill == nil {
		a.spill = new([]int64)
	}
	*a.spill = append(*a.spill, a.steps[victim].rec)
	copy(a.steps[victim:], a.steps[victim+1:])
	a.steps[len(a.steps)-1] = s
}

// Journaled tells an owned alarm that t, held in memory while the journal
// could not write, is now in the journal at t.Rec with t.Seq.
func (a *Alarm) Journaled(t *Transition) {
	code := actCode(t.Action)
	for i := range a.steps {
		s := &a.steps[i]
		if s.rec == 0 && s.act == code && s.at == t.At.UnixNano() {
			s.rec, s.seq = t.Rec, t.Seq
			return
		}
	}
}

// Spilled returns the journal positions (offset + 1, oldest first) of the
// history steps an owned alarm no longer keeps in memory; History on its
// clones lists only the later ones.
func (a *Alarm) Spilled() []int64 {
	if a.spill == nil {
		return nil
	}
	return append([]int64(nil), *a.spill...)
}

// WithOlder puts the steps read back from the journal in front of the
// clone's history, making it complete.
func (a *Alarm) WithOlder(older []Transition) {
	for i := range older {
		older[i].Raise, older[i].Subj = nil, nil
	}
	// Alert and receipt steps stay in memory longer than others, so the
	// merge goes by sequence number; a step still held from the journal
	// (seq 0) is the newest.
	h := append(older, a.History()...)
	a.SetHistory(h)
	slices.SortStableFunc(h, func(x, y Transition) int {
		return cmp.Compare(x.Seq-1, y.Seq-1) // 0 wraps to the largest
	})
	a.SetHistoryOmitted(0)
}

// Track positions: a bounded window that never grows past MaxTrack.
func (a *Alarm) addPos(p *event.Position) {
	if p == nil {
		return
	}
	a.set(func(x *extra) {
		x.position = p
		if len(x.track) < MaxTrack {
			if len(x.track) == cap(x.track) {
				// Grow by hand: append would round past MaxTrack.
				n := make([]event.Position, len(x.track), min(max(4, 2*cap(x.track)), MaxTrack))
				copy(n, x.track)
				x.track = n
			}
			x.track = append(x.track, *p)
			return
		}
		// Full: a new window, so a clone sharing the old one never sees it move.
		n := make([]event.Position, MaxTrack)
		copy(n, x.track[len(x.track)-MaxTrack+1:])
		n[MaxTrack-1] = *p
		x.track = n
	})
}

// Interning: the few strings every alarm repeats (site, gateway, unit,
// room, rule, device type, status, state, the rules' notes, staff and
// receiver names) are kept once. Ids that are one per alarm (alarm, device,
// resident, event) are not: the table would only grow. The table is
// bounded: when it is full (a stream of one-off notes) it starts afresh,
// so what alarms already share stays shared and new strings are shared
// again from then on, and the table never holds more than maxInterned.

const maxInterned = 1 << 16

var interned = struct {
	sync.Mutex
	m      map[string]string
	lists  map[string]*[]string
	extras map[string]*stepExtra
	texts  map[stepText]*stepText
}{m: map[string]string{}, lists: map[string]*[]string{}, extras: map[string]*stepExtra{}, texts: map[stepText]*stepText{}}

// internText returns the shared, read-only stepText of by and note (nil
// for neither). Long strings are not interned (as Intern): they get a
// stepText of their own.
func internText(by, note string) *stepText {
	if by == "" && note == "" {
		return nil
	}
	if len(by) > 160 || len(note) > 160 {
		return &stepText{by: Intern(by), note: Intern(note)}
	}
	k := stepText{by: by, note: note}
	interned.Lock()
	x := interned.texts[k]
	interned.Unlock()
	if x != nil {
		return x
	}
	x = &stepText{by: Intern(by), note: Intern(note)}
	interned.Lock()
	if len(interned.texts) >= maxInterned {
		clear(interned.texts)
	}
	interned.texts[*x] = x
	interned.Unlock()
	return x
}

// Intern returns the shared copy of s.
func Intern(s string) string {
	if s == "" || len(s) > 160 {
		return s
	}
	interned.Lock()
	defer interned.Unlock()
	if v, ok := interned.m[s]; ok {
		return v
	}
	if len(interned.m) >= maxInterned {
		clear(interned.m)
	}
	s = strings.Clone(s)
	interned.m[s] = s
	return s
}

// internList returns a shared, read-only copy of a recipient list.
func internList(l []string) *[]string {
	if len(l) == 0 {
		return nil
	}
	key := strings.Join(l, "\x00")
	interned.Lock()
	v, ok := interned.lists[key]
	interned.Unlock()
	if ok {
		return v
	}
	c := make([]string, len(l))
	for i, s := range l {
		c[i] = Intern(s)
	}
	v = &c
	interned.Lock()
	if len(interned.lists) >= maxInterned {
		clear(interned.lists)
	}
	interned.lists[key] = v
	interned.Unlock()
	return v
}

// Snapshot returns a read-only copy of a for the staff stream's frame
// encoder: like Clone, but an owned alarm's history stays in its compact
// form (a copy of the steps, a third of the size, no expansion into
// Transitions on every change). Its History field is empty; read the
// history with HistoryLen and HistoryEntry, or call Clone on the snapshot
// for a plain alarm with History listed (what json.Marshal needs). On a
// plain alarm it is Clone.
func (a *Alarm) Snapshot() *Alarm {
	if a.steps == nil {
		return a.Clone()
	}
	var c *Alarm
	if n := len(a.steps); n <= snapSteps {
		// The common case (a raise and its notify): alarm and steps in
		// one allocation.
		box := &struct {
			a Alarm
			s [snapSteps]step
		}{a: *a}
		c = &box.a
		c.steps = box.s[:n:n]
	} else {
		c = new(Alarm)
		*c = *a
		c.steps = make([]step, n)
	}
	copy(c.steps, a.steps)
	c.spill = nil
	c.Deliveries = append([]Delivery(nil), a.Deliveries...)
	c.x = a.x.cloneGroup() // an owned alarm's History is nil (Own)
	if a.spill != nil {
		c.SetHistoryOmitted(len(*a.spill))
	}
	return c
}

// snapSteps is how many steps a Snapshot keeps in the alarm's own
// allocation.
const snapSteps = 2

// HistoryLen is how many entries a's Clone lists in History.
func (a *Alarm) HistoryLen() int {
	if a.steps != nil {
		return len(a.steps)
	}
	return len(a.History())
}

// HistoryEntry returns entry i of the history a's Clone lists, without
// building the list: an encoder reads a snapshot's compact history
// through it. Its To is shared with the alarm and must not be changed.
func (a *Alarm) HistoryEntry(i int) Transition {
	if a.steps == nil {
		return a.History()[i]
	}
	return a.steps[i].entry(a, true)
}

// HistoryOmittedCount is the HistoryOmitted a's Clone carries: the older
// steps its History does not list.
func (a *Alarm) HistoryOmittedCount() int {
	if a.steps != nil && a.spill != nil {
		return len(*a.spill)
	}
	return a.HistoryOmitted()
}
