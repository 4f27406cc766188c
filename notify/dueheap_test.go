package notify

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The typed due heap gives entries back earliest first, with pushes and
// pops interleaved as runDue does them.
func TestDueHeapOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)
	var h dueHeap
	var want []time.Time
	for round := range 200 {
		for range r.IntN(20) {
			at := t0.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
			h.push(dueEntry{at: at.UnixNano(), tr: &Track{}})
			want = append(want, at)
		}
		slices.SortFunc(want, func(a, b time.Time) int { return a.Compare(b) })
		for range r.IntN(15) {
			if h.Len() == 0 {
				break
			}
			e := h.pop()
			if !e.time().Equal(want[0]) {
				t.Fatalf("round %d: popped %v, want %v", round, e.time(), want[0])
			}
			want = want[1:]
		}
		if h.Len() != len(want) {
			t.Fatalf("round %d: heap holds %d, want %d", round, h.Len(), len(want))
		}
	}
	for h.Len() > 0 {
		e := h.pop()
		if !e.time().Equal(want[0]) {
			t.Fatalf("drain: popped %v, want %v", e.time(), want[0])
		}
		want = want[1:]
	}
}
