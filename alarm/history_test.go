package alarm

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vaka-care/vaka/event"
)

// An owned alarm keeps its last MemHistory steps, alert steps in
// preference, and the journal positions of the steps it let go, in order.
func TestOwnedHistoryKeepsLastStepsAndSpillsOlder(t *testing.T) {
	a := New("A1", t0)
	a.Own()
	rec := int64(0)
	next := func(tr Transition) Transition {
		rec += 100
		tr.Rec, tr.Seq, tr.Alarm = rec, uint64(rec/100), "A1"
		if tr.At.IsZero() {
			tr.At = t0.Add(time.Duration(rec) * time.Millisecond)
		}
		return tr
	}
	a.AddHistory(next(Transition{Action: ActRaise, By: "rule:call_button", EventID: "s/gw/e0"}))
	must(Apply(a, next(Transition{Action: ActNotify, Tier: 0, Receiver: "natt", To: []string{"anna", "bo"}})))
	for range MaxRepeatHistory {
		must(Apply(a, next(Transition{Action: ActRepeat, By: "rule:call_button", EventID: "s/gw/e", Pos: &event.Position{Lat: 58, Lon: 12}})))
	}
	c := a.Clone()
	total := 2 + MaxRepeatHistory
	if len(c.History()) != MemHistory || c.HistoryOmitted() != total-MemHistory {
		t.Fatalf("clone lists %d steps, omits %d; want %d and %d", len(c.History()), c.HistoryOmitted(), MemHistory, total-MemHistory)
	}
	if c.History()[0].Action != ActNotify || !slices.Equal(c.History()[0].To, []string{"anna", "bo"}) || c.History()[0].Receiver != "natt" {
		t.Errorf("the notify step was not kept: %+v", c.History()[0])
	}
	if last := c.History()[len(c.History())-1]; last.Rec != rec || last.Seq != uint64(rec/100) || last.Pos == nil || last.EventID != "s/gw/e" ||
		!last.At.Equal(t0.Add(time.Duration(rec)*time.Millisecond)) {
		t.Errorf("last step %+v", last)
	}
	// Spilled: the raise (100), then the oldest repeats (300, 400, ...).
	want := []int64{100}
	for r := int64(300); len(want) < total-MemHistory; r += 100 {
		want = append(want, r)
	}
	if got := a.Spilled(); !slices.Equal(got, want) {
		t.Errorf("spilled %v, want %v", got, want)
	}
	// A clone's recipient list is its own.
	c.History()[0].To[0] = "x"
	if a.Clone().History()[0].To[0] != "anna" {
		t.Error("a clone shares the notify step's recipients")
	}
	// Merging older steps back makes the history whole and in seq order.
	var older []Transition
	for _, r := range want {
		older = append(older, Transition{Seq: uint64(r / 100), Rec: r, Alarm: "A1", Action: ActRepeat, Raise: &Alarm{}, Subj: &Subject{}})
	}
	c = a.Clone()
	c.WithOlder(older)
	if len(c.History()) != total || c.HistoryOmitted() != 0 || c.History()[0].Raise != nil || c.History()[0].Subj != nil {
		t.Fatalf("merged history %d steps (omitted %d)", len(c.History()), c.HistoryOmitted())
	}
	for i, h := range c.History() {
		if h.Seq != uint64(i+1) {
			t.Errorf("merged step %d has seq %d", i, h.Seq)
		}
	}
}

// A step the journal has not taken yet (held while the disk refuses
// writes) never leaves memory: there would be nothing to read it back from.
func TestOwnedHistoryKeepsHeldSteps(t *testing.T) {
	a := New("A1", t0)
	a.Own()
	held := Transition{Alarm: "A1", Action: ActRaise, At: t0, By: "rule:call_button"}
	a.AddHistory(held)
	for i := range MemHistory + 3 {
		must(Apply(a, Transition{Alarm: "A1", Action: ActReminder, At: t0.Add(time.Duration(i+1) * time.Second), Rec: int64(i + 10), Seq: uint64(i + 10)}))
	}
	if c := a.Clone(); c.History()[0].Action != ActRaise || c.History()[0].Seq != 0 {
		t.Fatalf("the held raise left memory: %+v", c.History()[0])
	}
	held.Rec, held.Seq = 5, 5
	a.Journaled(&held)
	c := a.Clone()
	if c.History()[0].Action != ActRaise || c.History()[0].Seq != 5 || c.History()[0].Rec != 5 {
		t.Errorf("journaled raise %+v, want seq and position 5", c.History()[0])
	}
	must(Apply(a, Transition{Alarm: "A1", Action: ActNotify, At: t0.Add(time.Hour), Rec: 99, Seq: 99}))
	if !slices.Contains(a.Spilled(), 5) {
		t.Errorf("the written raise did not leave memory once others came: spilled %v", a.Spilled())
	}
}

// The track is a window of MaxTrack positions that never grows past it,
// and a clone's track does not move when the alarm's does.
func TestTrackWindowIsBounded(t *testing.T) {
	a := New("A1", t0)
	a.Own()
	var c *Alarm
	for i := range 3 * MaxTrack {
		must(Apply(a, Transition{Action: ActRepeat, At: t0, Pos: &event.Position{Lat: float64(i)}}))
		if i == MaxTrack+2 {
			c = a.Clone()
		}
		if cap(a.Track()) > MaxTrack {
			t.Fatalf("track capacity %d after %d positions", cap(a.Track()), i+1)
		}
	}
	if len(a.Track()) != MaxTrack || a.Track()[0].Lat != 2*MaxTrack || a.Track()[MaxTrack-1].Lat != 3*MaxTrack-1 {
		t.Errorf("track %v", a.Track())
	}
	if len(c.Track()) != MaxTrack || c.Track()[MaxTrack-1].Lat != MaxTrack+2 {
		t.Errorf("a clone's track moved: %v", c.Track())
	}
}

// Owned alarms share one copy of the strings they repeat.
func TestOwnInternsSharedStrings(t *testing.T) {
	mk := func() *Alarm {
		a := New("A1", t0)
		a.Site, a.Gateway, a.Unit, a.Rule = strings.Clone("site-x"), strings.Clone("gw-x"), strings.Clone("unit-x"), strings.Clone("device_silent")
		a.Own()
		return a
	}
	a, b := mk(), mk()
	for _, p := range [][2]string{{a.Site, b.Site}, {a.Gateway, b.Gateway}, {a.Unit, b.Unit}, {a.Rule, b.Rule}} {
		if unsafe.StringData(p[0]) != unsafe.StringData(p[1]) {
			t.Errorf("%q is held twice", p[0])
		}
	}
}

// The intern table never holds more than maxInterned strings, however many
// one-off strings pass through, and strings are still shared afterwards.
func TestInternTableIsBounded(t *testing.T) {
	for i := range maxInterned + 10 {
		Intern("one-off note " + strconv.Itoa(i))
	}
	interned.Lock()
	n := len(interned.m)
	interned.Unlock()
	if n > maxInterned {
		t.Errorf("intern table holds %d strings, bound %d", n, maxInterned)
	}
	a, b := Intern(strings.Clone("gw-after")), Intern(strings.Clone("gw-after"))
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("strings are no longer shared after the table filled")
	}
}

// The compact step keeps every action and every field a staff screen or
// the notifier reads: a take-over kept in memory still says whose alarm
// it was (an action missing from the table came back as "").
func TestStepKeepsEveryAction(t *testing.T) {
	at := time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)
	for _, act := range []Action{ActRaise, ActRepeat, ActRestore, ActAccept, ActPresence, ActResolve,
		ActTakeOver, ActNotify, ActDelivered, ActEscalate, ActReminder} {
		in := Transition{Seq: 7, Alarm: "a1", Action: act, At: at, By: "natt2", From: "natt1", Note: "n", Tier: 1,
			Receiver: "natt", Phone: "app:x", Channel: ChannelApp, To: []string{"natt1"}}
		a := &Alarm{ID: "a1"}
		s := toStep(a, &in)
		out := s.transition(a)
		if out.Action != act || out.From != "natt1" || out.By != "natt2" || !out.At.Equal(at) || out.Tier != 1 ||
			out.Receiver != "natt" || out.Phone != "app:x" || len(out.To) != 1 {
			t.Errorf("%s: came back as %+v", act, out)
		}
	}
}

// Memory per open alarm (issue 20): the raise step keeps its event id on
// the alarm, not in an extra of its own, and alert steps to the same
// receiver share one extra; both come back whole.
func TestStepSharesWhatAlarmsRepeat(t *testing.T) {
	at := time.Date(2026, 3, 29, 2, 30, 0, 0, time.UTC)
	var steps []*step
	for _, id := range []string{"A1", "A2"} {
		a := New(id, at)
		a.EventID = "s/gw/ev-" + id
		a.Own()
		a.AddHistory(Transition{Seq: 1, Alarm: id, Action: ActRaise, At: at, By: "rule:call", EventID: a.EventID, Rec: 1})
		if err := Apply(a, Transition{Seq: 2, Alarm: id, Action: ActNotify, At: at, By: "notify", Receiver: "natt",
			To: []string{"natt1", "natt2"}, Note: "raised", Rec: 2}); err != nil {
			t.Fatal(err)
		}
		if a.steps[0].x != nil || !a.steps[0].ownEvent {
			t.Errorf("%s: raise step keeps its event id apart: %+v", id, a.steps[0])
		}
		steps = append(steps, &a.steps[1])
		h := a.Clone().History()
		if len(h) != 2 || h[0].EventID != a.EventID || h[1].Receiver != "natt" || len(h[1].To) != 2 || h[1].To[1] != "natt2" || h[1].EventID != "" {
			t.Fatalf("%s: history came back as %+v", id, h)
		}
		// A clone's list is its own: changing it leaves the shared one alone.
		h[1].To[0] = "x"
	}
	if steps[0].x != steps[1].x {
		t.Error("two alarms alerting the same receiver keep an extra each")
	}
	if (*steps[0].x.to)[0] != "natt1" {
		t.Error("a clone changed the shared recipient list")
	}
	// An event id that is not the alarm's (a repeat) is kept on the step.
	a := New("A3", at)
	a.EventID = "s/gw/first"
	a.Own()
	if err := Apply(a, Transition{Seq: 3, Alarm: "A3", Action: ActRepeat, At: at, By: "rule:call", EventID: "s/gw/second", Rec: 3}); err != nil {
		t.Fatal(err)
	}
	if h := a.Clone().History(); len(h) != 1 || h[0].EventID != "s/gw/second" {
		t.Fatalf("repeat came back as %+v", h)
	}
}

// A step's who and note (issue 20: 48 bytes a step): the same rule and
// note on two alarms are one shared stepText, a staff member's own note
// is kept apart and never put in the shared table, and both come back
// as they went in, empty ones included.
func TestStepTextSharedExceptStaffNotes(t *testing.T) {
	if n := unsafe.Sizeof(step{}); n > 48 {
		t.Errorf("a step is %d bytes, want at most 48", n)
	}
	at := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	mk := func(id string, tr Transition) step {
		a := &Alarm{ID: id}
		tr.Alarm, tr.At = id, at
		return toStep(a, &tr)
	}
	r1 := mk("A1", Transition{Action: ActRaise, By: "rule:call", Note: "larmknapp"})
	r2 := mk("A2", Transition{Action: ActRaise, By: "rule:call", Note: "larmknapp"})
	if r1.txt == nil || r1.txt != r2.txt {
		t.Error("two raises by the same rule with the same note keep a stepText each")
	}
	staff := "mår bra, ringde anhörig"
	s1 := mk("A1", Transition{Action: ActResolve, By: "natt1", Note: staff, Outcome: OutcomeRealNeed})
	s2 := mk("A2", Transition{Action: ActResolve, By: "natt1", Note: staff, Outcome: OutcomeRealNeed})
	if s1.txt == s2.txt {
		t.Error("a staff member's note is shared between alarms")
	}
	interned.Lock()
	_, inTable := interned.texts[stepText{by: "natt1", note: staff}]
	interned.Unlock()
	if inTable {
		t.Error("a staff member's note is in the shared table")
	}
	for _, c := range []struct {
		act      Action
		by, note string
	}{
		{ActRaise, "rule:call", "larmknapp"}, {ActNotify, "notify", ""}, {ActAccept, "natt1", ""},
		{ActResolve, "natt1", staff}, {ActDelivered, "", ""}, {ActRepeat, "", "n"},
	} {
		a := &Alarm{ID: "A9"}
		in := Transition{Seq: 1, Alarm: "A9", Action: c.act, At: at, By: c.by, Note: c.note, Outcome: OutcomeFalse}
		s := toStep(a, &in)
		if c.by == "" && c.note == "" && s.txt != nil {
			t.Errorf("%s: no who and no note, yet a stepText", c.act)
		}
		if out := s.transition(a); out.By != c.by || out.Note != c.note {
			t.Errorf("%s: came back by %q note %q, want %q %q", c.act, out.By, out.Note, c.by, c.note)
		}
	}
}
