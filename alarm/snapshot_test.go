package alarm

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

// snapOwned is an owned alarm with a raise and n more steps, each in the
// journal (so older ones move out once MemHistory are kept).
func snapOwned(t *testing.T, n int) *Alarm {
	t.Helper()
	at := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	a := New("A1", at)
	a.Kind, a.EventID = KindCall, "ev-raise"
	a.Own()
	a.AddHistory(Transition{Seq: 1, Alarm: "A1", Action: ActRaise, At: at, By: "rule:call", EventID: "ev-raise", Rec: 1})
	steps := []Transition{
		{Action: ActNotify, By: "notify", Receiver: "staff", To: []string{"natt1", "natt2"}},
		{Action: ActRepeat, EventID: "ev-x", Pos: &event.Position{Lat: 59.3, Lon: 18.1}},
		{Action: ActDelivered, By: "natt1", Phone: "app:s1", Channel: ChannelApp, Tier: 1},
		{Action: ActReminder, By: "notify", Receiver: "staff", To: []string{"natt1"}},
	}
	for i := range n {
		st := steps[i%len(steps)]
		st.Alarm, st.Seq, st.Rec, st.At = "A1", uint64(i+2), int64(100*(i+2)), at.Add(time.Duration(i)*time.Second)
		if err := Apply(a, st); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// A snapshot keeps the compact history and reads back, entry by entry,
// exactly what Clone lists (and counts as omitted); its Clone lists the
// same History.
func TestSnapshotReadsLikeClone(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 30} {
		t.Run(fmt.Sprint(n, " steps"), func(t *testing.T) {
			a := snapOwned(t, n)
			want := a.Clone()
			s := a.Snapshot()
			if s.History() != nil {
				t.Fatalf("snapshot History %v, want it compact (nil)", s.History())
			}
			if s.HistoryLen() != len(want.History()) || a.HistoryLen() != len(want.History()) {
				t.Fatalf("HistoryLen %d (live %d), Clone lists %d", s.HistoryLen(), a.HistoryLen(), len(want.History()))
			}
			for i := range want.History() {
				if got := s.HistoryEntry(i); !reflect.DeepEqual(got, want.History()[i]) {
					t.Errorf("entry %d: %+v, want %+v", i, got, want.History()[i])
				}
			}
			if s.HistoryOmittedCount() != want.HistoryOmitted() || a.HistoryOmittedCount() != want.HistoryOmitted() {
				t.Errorf("omitted %d (live %d), want %d", s.HistoryOmittedCount(), a.HistoryOmittedCount(), want.HistoryOmitted())
			}
			if n == 30 && want.HistoryOmitted() == 0 {
				t.Error("30 steps but nothing omitted: the case is not tested")
			}
			if c := s.Clone(); !reflect.DeepEqual(c.History(), want.History()) || c.HistoryOmitted() != want.HistoryOmitted() {
				t.Errorf("snapshot's Clone: %d entries, %d omitted; want %d, %d", len(c.History()), c.HistoryOmitted(),
					len(want.History()), want.HistoryOmitted())
			}
		})
	}
}

// The owner goes on changing its alarm (steps moved out when full, a held
// step journaled, deliveries, group members): a snapshot taken before
// does not change.
func TestSnapshotIsNotChangedByTheOwner(t *testing.T) {
	for _, n := range []int{1, MemHistory + 3} {
		a := snapOwned(t, n)
		a.SetGroup(&Group{Key: "k", Members: []Member{{Alarm: "m1"}}})
		s := a.Snapshot()
		before := s.Clone()
		at := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
		held := Transition{Alarm: "A1", Action: ActDelivered, By: "natt2", At: at, Phone: "p"} // Rec 0: held
		if err := Apply(a, held); err != nil {
			t.Fatal(err)
		}
		held.Rec, held.Seq = 999, 999
		a.Journaled(&held)
		for i := range 2 * MemHistory {
			if err := Apply(a, Transition{Alarm: "A1", Action: ActReminder, At: at, Seq: uint64(1000 + i), Rec: int64(1000 + i)}); err != nil {
				t.Fatal(err)
			}
		}
		a.Group().Members[0].Alarm = "changed"
		if after := s.Clone(); !reflect.DeepEqual(after, before) {
			t.Errorf("%d steps: the snapshot changed with its owner:\n%+v\nwant\n%+v", n, after, before)
		}
	}
}

// A plain alarm's snapshot is its Clone, and the accessors read History.
func TestSnapshotOfPlainAlarm(t *testing.T) {
	at := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	a := &Alarm{ID: "P1"}
	a.SetHistory([]Transition{{Seq: 4, Alarm: "P1", Action: ActRaise, At: at, To: []string{"x"}}})
	a.SetHistoryOmitted(3)
	s := a.Snapshot()
	if !reflect.DeepEqual(s, a.Clone()) || s == a {
		t.Fatalf("snapshot %+v, want a clone", s)
	}
	if s.HistoryLen() != 1 || !reflect.DeepEqual(s.HistoryEntry(0), a.History()[0]) || s.HistoryOmittedCount() != 3 {
		t.Errorf("accessors: %d, %+v, %d", s.HistoryLen(), s.HistoryEntry(0), s.HistoryOmittedCount())
	}
}
