package alarm

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

var t0 = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

// in returns a fresh alarm in state s, accepted by "anna" where that applies.
func in(s State) *Alarm {
	a := New("A000001", t0)
	switch s {
	case Accepted:
		must(Apply(a, Transition{Action: ActAccept, By: "anna", At: t0.Add(time.Minute)}))
	case Presence:
		must(Apply(a, Transition{Action: ActAccept, By: "anna", At: t0.Add(time.Minute)}))
		must(Apply(a, Transition{Action: ActPresence, By: "anna", At: t0.Add(2 * time.Minute)}))
	case Resolved:
		must(Apply(a, Transition{Action: ActAccept, By: "anna", At: t0.Add(time.Minute)}))
		must(Apply(a, Transition{Action: ActResolve, By: "anna", Outcome: OutcomeRealNeed, At: t0.Add(3 * time.Minute)}))
	}
	if a.State != s {
		panic(fmt.Sprintf("setup: state %s, want %s", a.State, s))
	}
	return a
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// TestCheckMatrix is every action against every state.
func TestCheckMatrix(t *testing.T) {
	type row struct {
		action  Action
		by      string
		outcome Outcome
		want    map[State]error // nil entry: allowed
	}
	ok := map[State]error{Raised: nil, Accepted: nil, Presence: nil, Resolved: nil}
	openOnly := map[State]error{Raised: nil, Accepted: nil, Presence: nil, Resolved: ErrResolved}
	for _, r := range []row{
		{ActRaise, "rule:x", "", ok},
		{ActRepeat, "rule:x", "", openOnly},
		{ActRestore, "rule:x", "", openOnly},
		{ActNotify, "", "", openOnly},
		{ActDelivered, "anna", "", openOnly},
		{ActEscalate, "", "", openOnly},
		{ActReminder, "", "", openOnly},
		{ActAccept, "anna", "", map[State]error{Raised: nil, Accepted: nil, Presence: nil, Resolved: ErrResolved}},
		{ActAccept, "bo", "", map[State]error{Raised: nil, Accepted: ErrAlreadyAccepted, Presence: ErrAlreadyAccepted, Resolved: ErrResolved}},
		{ActAccept, "", "", map[State]error{Raised: ErrNoActor, Accepted: ErrNoActor, Presence: ErrNoActor, Resolved: ErrNoActor}},
		{ActPresence, "anna", "", map[State]error{Raised: ErrNotAccepted, Accepted: nil, Presence: nil, Resolved: ErrResolved}},
		// Presence is recorded for whoever is there, not only the acceptor.
		{ActPresence, "bo", "", map[State]error{Raised: ErrNotAccepted, Accepted: nil, Presence: nil, Resolved: ErrResolved}},
		{ActPresence, "", "", map[State]error{Raised: ErrNoActor, Accepted: ErrNoActor, Presence: ErrNoActor, Resolved: ErrNoActor}},
		{ActResolve, "anna", OutcomeFalse, map[State]error{Raised: ErrNotAccepted, Accepted: nil, Presence: nil, Resolved: ErrResolved}},
		{ActResolve, "anna", "", map[State]error{Raised: ErrBadOutcome, Accepted: ErrBadOutcome, Presence: ErrBadOutcome, Resolved: ErrBadOutcome}},
		{ActResolve, "anna", "maybe", map[State]error{Raised: ErrBadOutcome, Accepted: ErrBadOutcome, Presence: ErrBadOutcome, Resolved: ErrBadOutcome}},
		{ActResolve, "", OutcomeTest, map[State]error{Raised: ErrNoActor, Accepted: ErrNoActor, Presence: ErrNoActor, Resolved: ErrNoActor}},
		{"dance", "anna", "", map[State]error{Raised: ErrUnknownAction, Accepted: ErrUnknownAction, Presence: ErrUnknownAction, Resolved: ErrUnknownAction}},
	} {
		for _, s := range []State{Raised, Accepted, Presence, Resolved} {
			name := fmt.Sprintf("%s by %q in %s", r.action, r.by, s)
			a := in(s)
			before := fmt.Sprintf("%+v", *a)
			tr := Transition{Alarm: a.ID, Action: r.action, By: r.by, Outcome: r.outcome, At: t0.Add(time.Hour)}
			err := Check(a, tr)
			if want := r.want[s]; !errors.Is(err, want) || (want == nil) != (err == nil) {
				t.Errorf("%s: Check = %v, want %v", name, err, want)
			}
			if after := fmt.Sprintf("%+v", *a); after != before {
				t.Errorf("%s: Check changed the alarm", name)
			}
			n := len(a.History())
			aerr := Apply(a, tr)
			if (aerr == nil) != (err == nil) || (err != nil && !errors.Is(aerr, r.want[s])) {
				t.Errorf("%s: Apply = %v, Check = %v", name, aerr, err)
			}
			if aerr != nil {
				if len(a.History()) != n || fmt.Sprintf("%+v", *a) != before {
					t.Errorf("%s: refused Apply changed the alarm", name)
				}
				continue
			}
			if len(a.History()) != n+1 || a.History()[n].Action != r.action || a.History()[n].By != r.by {
				t.Errorf("%s: history %+v, want the transition appended", name, a.History())
			}
			if !a.UpdatedAt.Equal(tr.At) {
				t.Errorf("%s: UpdatedAt %v, want %v", name, a.UpdatedAt, tr.At)
			}
		}
	}
}

func TestAlreadyAcceptedNamesTheAcceptor(t *testing.T) {
	a := in(Accepted)
	err := Check(a, Transition{Action: ActAccept, By: "bo"})
	if !errors.Is(err, ErrAlreadyAccepted) || err.Error() != ErrAlreadyAccepted.Error()+" (anna)" {
		t.Errorf("err = %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	a := New("A000042", t0)
	if a.State != Raised || !a.Open() || !a.RaisedAt.Equal(t0) || a.ID != "A000042" {
		t.Fatalf("new alarm %+v", a)
	}
	steps := []Transition{
		{Action: ActAccept, By: "anna", At: t0.Add(1 * time.Minute)},
		{Action: ActAccept, By: "anna", At: t0.Add(2 * time.Minute)}, // double tap
		{Action: ActPresence, By: "anna", At: t0.Add(5 * time.Minute)},
		{Action: ActPresence, By: "anna", At: t0.Add(6 * time.Minute)},
		{Action: ActResolve, By: "bo", Outcome: OutcomeFalse, Note: "fickan", At: t0.Add(9 * time.Minute)},
	}
	for i, s := range steps {
		if err := Apply(a, s); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if a.AcceptedBy() != "anna" || !a.AcceptedAt().Equal(t0.Add(time.Minute)) {
		t.Errorf("double accept moved AcceptedAt: %v by %s", a.AcceptedAt(), a.AcceptedBy())
	}
	if !a.PresenceAt().Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("PresenceAt %v", a.PresenceAt())
	}
	if a.State != Resolved || a.Open() || a.ResolvedBy() != "bo" || a.Outcome() != OutcomeFalse || a.Note != "fickan" ||
		!a.ResolvedAt().Equal(t0.Add(9*time.Minute)) {
		t.Errorf("resolved alarm %+v", a)
	}
	if len(a.History()) != len(steps) {
		t.Errorf("history has %d entries, want %d", len(a.History()), len(steps))
	}
	for i, h := range a.History() {
		if h.Action != steps[i].Action || !h.At.Equal(steps[i].At) {
			t.Errorf("history[%d] = %s at %v", i, h.Action, h.At)
		}
	}
	// After resolve everything is refused, the alarm unchanged.
	for _, tr := range []Transition{
		{Action: ActAccept, By: "anna"}, {Action: ActPresence, By: "anna"},
		{Action: ActResolve, By: "anna", Outcome: OutcomeTest}, {Action: ActRepeat}, {Action: ActRestore},
		{Action: ActNotify}, {Action: ActDelivered, By: "anna"}, {Action: ActEscalate, Tier: 2}, {Action: ActReminder},
	} {
		if err := Apply(a, tr); !errors.Is(err, ErrResolved) {
			t.Errorf("%s after resolve: %v, want ErrResolved", tr.Action, err)
		}
	}
	if len(a.History()) != len(steps) || a.Repeats() != 0 || a.Tier() != 0 {
		t.Errorf("refused transitions changed the alarm: %+v", a)
	}
}

func TestOutcomes(t *testing.T) {
	for _, o := range Outcomes {
		if !o.Valid() {
			t.Errorf("%s not valid", o)
		}
	}
	for _, o := range []Outcome{"", "REAL_NEED", "real need", "other"} {
		if o.Valid() {
			t.Errorf("%q valid", o)
		}
	}
}

func TestRepeatCountsAndBoundsHistoryAndTrack(t *testing.T) {
	a := New("A1", t0)
	a.SetHistory([]Transition{{Action: ActRaise, At: t0}})
	const n = 50
	for i := 1; i <= n; i++ {
		p := event.Position{Lat: float64(i), Lon: 1}
		if err := Apply(a, Transition{Action: ActRepeat, At: t0.Add(time.Duration(i) * time.Second), Pos: &p,
			Raise: &Alarm{ID: "snapshot"}}); err != nil {
			t.Fatal(err)
		}
		if a.Repeats() != i {
			t.Fatalf("after %d repeats Repeats = %d", i, a.Repeats())
		}
	}
	if got := len(a.History()); got != 1+MaxRepeatHistory {
		t.Errorf("history %d entries, want 1 + %d", got, MaxRepeatHistory)
	}
	for _, h := range a.History() {
		if h.Raise != nil {
			t.Error("history keeps the raise snapshot")
		}
	}
	if len(a.Track()) != MaxTrack || a.Track()[0].Lat != n-MaxTrack+1 || a.Track()[MaxTrack-1].Lat != n {
		t.Errorf("track %d positions from %v to %v", len(a.Track()), a.Track()[0], a.Track()[len(a.Track())-1])
	}
	if a.Position() == nil || a.Position().Lat != n {
		t.Errorf("position %+v, want the latest", a.Position())
	}
	// A repeat without position keeps the last one.
	must(Apply(a, Transition{Action: ActRepeat, At: t0.Add(time.Hour)}))
	if a.Position() == nil || a.Position().Lat != n || a.Repeats() != n+1 {
		t.Errorf("after a repeat without position: %+v repeats %d", a.Position(), a.Repeats())
	}
	// Repeats are allowed in any open state and do not change it.
	must(Apply(a, Transition{Action: ActAccept, By: "anna", At: t0.Add(time.Hour)}))
	must(Apply(a, Transition{Action: ActRepeat, At: t0.Add(2 * time.Hour)}))
	if a.State != Accepted || a.AcceptedBy() != "anna" {
		t.Errorf("repeat changed the state: %s", a.State)
	}
}

func TestNotificationSteps(t *testing.T) {
	a := New("A1", t0)
	must(Apply(a, Transition{Action: ActRestore, At: t0.Add(time.Minute)}))
	if a.RestoredAt() == nil || !a.RestoredAt().Equal(t0.Add(time.Minute)) || a.State != Raised {
		t.Errorf("restore: %v state %s", a.RestoredAt(), a.State)
	}
	must(Apply(a, Transition{Action: ActEscalate, Tier: 2}))
	must(Apply(a, Transition{Action: ActEscalate, Tier: 1}))
	if a.Tier() != 2 {
		t.Errorf("tier %d, want the highest (2)", a.Tier())
	}
	for i := 0; i < MaxDeliveries+5; i++ {
		must(Apply(a, Transition{Action: ActDelivered, By: "anna", Phone: fmt.Sprint("p", i), Tier: 1, At: t0}))
	}
	if len(a.Deliveries) != MaxDeliveries || a.Deliveries[0].Phone != "p0" || a.Deliveries[0].User != "anna" {
		t.Errorf("deliveries %d: %+v", len(a.Deliveries), a.Deliveries[0])
	}
	for i := 0; i < 15; i++ {
		must(Apply(a, Transition{Action: ActReminder}))
	}
	if a.Reminders() != 15 {
		t.Errorf("reminders %d", a.Reminders())
	}
	if a.State != Raised {
		t.Errorf("notification steps changed the state to %s", a.State)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	a := in(Accepted)
	a.Deliveries = []Delivery{{User: "anna"}}
	c := a.Clone()
	must(Apply(a, Transition{Action: ActPresence, By: "anna", At: t0.Add(time.Hour)}))
	a.Deliveries[0].User = "bo"
	if c.State != Accepted || len(c.History()) != 1 || c.Deliveries[0].User != "anna" {
		t.Errorf("clone shares state with the original: %+v", c)
	}
}
