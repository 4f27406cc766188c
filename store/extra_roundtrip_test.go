package store

import (
	"encoding/json"
	"testing"

	"github.com/vaka-care/vaka/alarm"
)

// Raises with and without the alarm's seldom set fields (its extra,
// issue 20) come back from the journal as they went in: the same JSON,
// and the extra's fields (caller id, group, positions, ...) set or not.
func TestJournalRoundTripsAlarmExtra(t *testing.T) {
	dir := t.TempDir()
	j, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var raises []*alarm.Transition
	for _, tr := range encodeCases() {
		if tr.Raise != nil {
			c := *tr
			raises = append(raises, &c)
		}
	}
	plain := *raises[0]
	plain.Raise = &alarm.Alarm{ID: "P1", Kind: alarm.KindCall, Rule: "call", Priority: 1, Site: "s", Device: "b1",
		RaisedAt: plain.At, UpdatedAt: plain.At, SourceTime: plain.At, State: alarm.Raised}
	plain.Alarm = "P1"
	raises = append(raises, &plain)
	if len(raises) < 3 {
		t.Fatalf("%d raise cases, want plain, full and with a group or position", len(raises))
	}
	for _, tr := range raises {
		if err := j.Append(tr); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	j, back, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if len(back) != len(raises) {
		t.Fatalf("%d transitions back, want %d", len(back), len(raises))
	}
	extras := 0
	for i, tr := range raises {
		want, _ := json.Marshal(tr.Raise)
		got, _ := json.Marshal(back[i].Raise)
		if string(got) != string(want) {
			t.Errorf("raise %d:\n got %s\nwant %s", i, got, want)
		}
		a, b := tr.Raise, back[i].Raise
		if a.CallerID() != b.CallerID() || (a.Group() == nil) != (b.Group() == nil) || (a.Position() == nil) != (b.Position() == nil) ||
			a.GroupID() != b.GroupID() || a.Repeats() != b.Repeats() || a.AcceptedBy() != b.AcceptedBy() || a.Outcome() != b.Outcome() {
			t.Errorf("raise %d: extra fields changed: %+v, want %+v", i, b.Wire(), a.Wire())
		}
		if a.CallerID() != "" || a.Group() != nil || a.Position() != nil || a.AcceptedBy() != "" {
			extras++
		}
	}
	if extras == 0 || extras == len(raises) {
		t.Errorf("%d of %d raises have extra fields: both kinds must be tested", extras, len(raises))
	}
}
