package rules

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"
)

// refHeap is the container/heap version timerHeap replaced.
type refHeap []timer

func (h refHeap) Len() int           { return len(h) }
func (h refHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h refHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *refHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// The typed heap pops timers in exactly the order container/heap did,
// ties (equal due times, common: a storm's devices heard in one second)
// included, under interleaved pushes and pops.
func TestTimerHeapMatchesContainerHeap(t *testing.T) {
	base := time.Date(2026, 3, 29, 1, 59, 0, 0, time.UTC)
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		var got timerHeap
		var want refHeap
		for step := range 2000 {
			if r.IntN(3) > 0 || len(got) == 0 {
				tm := timer{at: base.Add(time.Duration(r.IntN(50)) * time.Second), kind: timerKind(r.IntN(3)), id: string(rune('a' + step%26)), gen: uint64(step)}
				got.push(tm)
				heap.Push(&want, tm)
			} else {
				g, w := got.pop(), heap.Pop(&want).(timer)
				if g != w {
					t.Fatalf("seed %d step %d: popped %+v, container/heap pops %+v", seed, step, g, w)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("seed %d step %d: %d timers, want %d", seed, step, len(got), len(want))
			}
		}
		for len(got) > 0 {
			if g, w := got.pop(), heap.Pop(&want).(timer); g != w {
				t.Fatalf("seed %d drain: popped %+v, want %+v", seed, g, w)
			}
		}
	}
}

// Arming a timer allocates nothing once the heap has room (it boxed each
// timer before).
func TestTimerHeapPushAllocatesNothing(t *testing.T) {
	h := make(timerHeap, 0, 16)
	tm := timer{at: time.Unix(1, 0), id: "b1"}
	if n := testing.AllocsPerRun(100, func() { h.push(tm); h.pop() }); n != 0 {
		t.Errorf("push+pop: %v allocations, want 0", n)
	}
}
