package tillsyn

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// DueAppend takes what Due takes, in the same order, appending to the
// array it is given, and leaves the rest queued.
func TestDueAppendSameAsDue(t *testing.T) {
	at := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	var a, b Queue
	for i := 0; i < 40; i++ {
		l := LookIn{Site: "s", Resident: fmt.Sprintf("r-%d", i), Night: "2026-11-23", Wall: "02:00",
			Planned: at.Add(time.Duration(i%7) * time.Minute), Deadline: at.Add(time.Hour)}
		a.Add(l)
		b.Add(l)
	}
	now := at.Add(3 * time.Minute)
	buf := make([]LookIn, 0, 16)
	for {
		want := a.Due(now, 16)
		got := b.DueAppend(buf[:0], now, 16)
		if len(want) == 0 {
			if len(got) != 0 {
				t.Fatalf("DueAppend took %d, Due none", len(got))
			}
			break
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DueAppend %v\nDue %v", got, want)
		}
		if &got[0] != &buf[:1][0] {
			t.Error("DueAppend did not use the array it was given")
		}
	}
	if a.Len() != b.Len() || a.Len() != 40-4*6 {
		t.Errorf("left %d and %d queued, want %d", a.Len(), b.Len(), 40-4*6)
	}
	if !b.Add(LookIn{Site: "s", Resident: "r-0", Night: "2026-11-23", Wall: "02:00", Planned: at}) {
		t.Error("a look-in taken by DueAppend is still counted as queued")
	}
}
