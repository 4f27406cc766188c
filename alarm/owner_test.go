package alarm

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// One owner per alarm: after natt1 accepts, natt2 can neither mark
// presence nor resolve until she takes it over, and the take-over names
// whom it was taken from.
func TestOwnerAndTakeOver(t *testing.T) {
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	a := New("a1", at)
	step := func(act Action, by string) Transition {
		return Transition{Alarm: "a1", Action: act, At: at, By: by, Outcome: OutcomeRealNeed}
	}
	if err := Apply(a, step(ActTakeOver, "natt2")); !errors.Is(err, ErrNotAccepted) {
		t.Fatalf("take-over of a raised alarm: %v, want ErrNotAccepted", err)
	}
	if err := Apply(a, step(ActAccept, "natt1")); err != nil {
		t.Fatal(err)
	}
	for _, act := range []Action{ActPresence, ActResolve} {
		if err := CheckOwner(a, step(act, "natt2")); !errors.Is(err, ErrOwnedByOther) {
			t.Errorf("%s by natt2 on natt1's alarm: %v, want ErrOwnedByOther", act, err)
		}
		if err := CheckOwner(a, step(act, "natt1")); err != nil {
			t.Errorf("%s by the owner: %v", act, err)
		}
	}
	if err := Apply(a, step(ActTakeOver, "")); !errors.Is(err, ErrNoActor) {
		t.Errorf("anonymous take-over: %v", err)
	}
	if err := Apply(a, step(ActTakeOver, "natt2")); err != nil {
		t.Fatal(err)
	}
	if a.AcceptedBy() != "natt2" || a.State != Accepted {
		t.Fatalf("after take-over: by %q state %s", a.AcceptedBy(), a.State)
	}
	last := a.History()[len(a.History())-1]
	if last.Action != ActTakeOver || last.By != "natt2" || last.From != "natt1" {
		t.Errorf("history entry %+v, want take_over by natt2 from natt1", last)
	}
	if err := CheckOwner(a, step(ActPresence, "natt1")); !errors.Is(err, ErrOwnedByOther) {
		t.Errorf("the old owner after the take-over: %v", err)
	}
	if err := CheckOwner(a, step(ActPresence, "natt2")); err != nil {
		t.Errorf("the new owner: %v", err)
	}
	// Journal compatibility: the new field round-trips, and a journal
	// line without it (written before take-overs existed) still decodes.
	b, _ := json.Marshal(last)
	var back Transition
	if err := json.Unmarshal(b, &back); err != nil || back.From != "natt1" || back.Action != ActTakeOver {
		t.Errorf("round trip: %v %+v", err, back)
	}
	var old Transition
	if err := json.Unmarshal([]byte(`{"seq":3,"alarm":"a1","action":"presence","at":"2026-03-29T01:31:00Z","by":"natt2"}`), &old); err != nil || old.From != "" {
		t.Errorf("old journal line: %v %+v", err, old)
	}
	// Old journals may hold a presence by someone else (before the rule):
	// Apply, which replay uses, still takes it.
	b2 := New("a2", at)
	_ = Apply(b2, Transition{Alarm: "a2", Action: ActAccept, At: at, By: "natt1"})
	if err := Apply(b2, old); err != nil {
		t.Errorf("replaying an old presence by a colleague: %v", err)
	}
	if err := Apply(a, step(ActResolve, "natt2")); err != nil {
		t.Fatal(err)
	}
	if err := Apply(a, step(ActTakeOver, "natt1")); !errors.Is(err, ErrResolved) {
		t.Errorf("take-over of a resolved alarm: %v", err)
	}
}

// The last repeat's time is kept beyond the repeats History lists.
func TestLastRepeatAt(t *testing.T) {
	at := time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC)
	a := New("a1", at)
	for i := range MaxRepeatHistory + 5 {
		if err := Apply(a, Transition{Alarm: "a1", Action: ActRepeat, At: at.Add(time.Duration(i+1) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if want := at.Add((MaxRepeatHistory + 5) * time.Minute); a.LastRepeatAt() == nil || !a.LastRepeatAt().Equal(want) {
		t.Errorf("last repeat at %v, want %v", a.LastRepeatAt(), want)
	}
}

// An alarm accepted by the alarm unit's own presence key has no staff
// owner: whoever codes the outcome in the app needs no take-over.
func TestUnitAcceptedNeedsNoTakeOver(t *testing.T) {
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	a := New("a1", at)
	if err := Apply(a, Transition{Alarm: "a1", Action: ActAccept, At: at, By: ByUnitPrefix + "larm-4711"}); err != nil {
		t.Fatal(err)
	}
	if err := CheckOwner(a, Transition{Alarm: "a1", Action: ActResolve, At: at, By: "natt1", Outcome: OutcomeRealNeed}); err != nil {
		t.Errorf("staff resolving a unit-accepted alarm: %v", err)
	}
}
