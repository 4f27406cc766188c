package hub

import (
	"errors"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// One owner per alarm, in the hub: a colleague's presence or resolve is
// refused until she takes the alarm over; the take-over is journaled with
// whom it was taken from and survives a restart.
func TestActOwnerAndTakeOverReplayed(t *testing.T) {
	dir := t.TempDir()
	c := newClock(dayTime)
	h, j := openHub(t, dir, c)
	h.HandleEvent("s", "gw", press("e1", dayTime))
	id := h.Alarms()[0].ID
	if _, err := h.Act(id, alarm.ActAccept, "anna", "", ""); err != nil {
		t.Fatal(err)
	}
	for _, act := range []alarm.Action{alarm.ActPresence, alarm.ActResolve} {
		if _, err := h.Act(id, act, "bo", alarm.OutcomeRealNeed, ""); !errors.Is(err, alarm.ErrOwnedByOther) {
			t.Errorf("%s by bo on anna's alarm: %v, want ErrOwnedByOther", act, err)
		}
	}
	c.Add(time.Minute)
	a, err := h.Act(id, alarm.ActTakeOver, "bo", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if a.AcceptedBy() != "bo" {
		t.Fatalf("after take-over: %s", a.AcceptedBy())
	}
	if _, err := h.Act(id, alarm.ActPresence, "anna", "", ""); !errors.Is(err, alarm.ErrOwnedByOther) {
		t.Errorf("anna after bo took over: %v", err)
	}
	if _, err := h.Act(id, alarm.ActPresence, "bo", "", ""); err != nil {
		t.Fatal(err)
	}
	j.Close()
	h2, _ := openHub(t, dir, c)
	b, ok := h2.Alarm(id)
	if !ok || b.AcceptedBy() != "bo" || b.State != alarm.Presence {
		t.Fatalf("after restart: %+v", b)
	}
	var took *alarm.Transition
	for i := range b.History() {
		if b.History()[i].Action == alarm.ActTakeOver {
			took = &b.History()[i]
		}
	}
	if took == nil || took.By != "bo" || took.From != "anna" {
		t.Errorf("take-over in the replayed history: %+v", took)
	}
}
