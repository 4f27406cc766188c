package devicetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// Emit is usable where a driver wants a devices.Emit.
var _ devices.Emit = (&Sink{}).Emit

// Emits from several goroutines all arrive, each goroutine's in its order;
// Events is a copy the sink does not change afterwards; Reset empties it.
func TestSinkCollects(t *testing.T) {
	var s Sink
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s.Emit(event.Event{Device: fmt.Sprintf("d%d", w), Seq: uint64(i)})
			}
		}()
	}
	wg.Wait()
	if s.Len() != writers*each {
		t.Fatalf("len %d, want %d", s.Len(), writers*each)
	}
	got := s.Events()
	next := map[string]uint64{}
	for _, ev := range got {
		if ev.Seq != next[ev.Device] {
			t.Fatalf("%s: event %v out of order, want %v", ev.Device, ev.Seq, next[ev.Device])
		}
		next[ev.Device]++
	}
	got[0].Device = "changed"
	if s.Events()[0].Device == "changed" {
		t.Fatal("Events shares its slice with the sink")
	}
	s.Reset()
	if s.Len() != 0 || len(s.Events()) != 0 {
		t.Fatalf("after Reset: %d events", s.Len())
	}
	s.Emit(event.Event{Device: "after"})
	if evs := s.Events(); len(evs) != 1 || evs[0].Device != "after" {
		t.Fatalf("after Reset and one Emit: %+v", evs)
	}
	if len(got) != writers*each {
		t.Fatal("Reset changed an earlier copy")
	}
}
