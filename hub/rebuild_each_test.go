package hub

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
)

// A hub rebuilt from the journal as it is read (store.OpenEach into a
// Rebuilder, as service.Start does) holds the same alarms, whole
// histories and next id as one rebuilt from the whole replay.
func TestRebuilderMatchesReplay(t *testing.T) {
	dir := t.TempDir()
	c := newClock(dayTime)
	h, j := openHub(t, dir, c)
	for i := range 3 + alarm.MaxRepeatHistory {
		if r := h.HandleEvent("s", "gw", press(fmt.Sprintf("p%d", i), dayTime)); r.Code != 0 {
			t.Fatalf("press %d: %+v", i, r)
		}
	}
	h.HandleEvent("s", "gw", evPayload("f1", "fall-a", "0005", "", "0009", dayTime))
	if _, err := h.Act("A000001", alarm.ActAccept, "anna", "", ""); err != nil {
		t.Fatal(err)
	}
	j.Close()

	a, _ := openHub(t, dir, c)
	rb := NewRebuilder(nil)
	j2, err := store.OpenEach(dir, store.Options{}, rb.Add)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	b, err := New(Options{Config: loadConfig(t, hubYAML), Journal: j2, Rebuilt: rb, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	la, lb := a.Alarms(), b.Alarms()
	if len(la) != 2 || !reflect.DeepEqual(la, lb) {
		t.Fatalf("replayed %d alarms %+v\nread as they came %d %+v", len(la), la, len(lb), lb)
	}
	for _, x := range la {
		wa, _ := a.Alarm(x.ID)
		wb, _ := b.Alarm(x.ID)
		if !reflect.DeepEqual(wa, wb) || wa.HistoryOmitted() != 0 {
			t.Errorf("alarm %s differs:\n%+v\n%+v", x.ID, wa, wb)
		}
	}
	if a.nextID != b.nextID || b.nextID != 2 {
		t.Errorf("next id %d and %d, want 2", a.nextID, b.nextID)
	}
}
