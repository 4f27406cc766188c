package feed

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// A screen that reads, but far slower than alarms come (an all-alarm
// storm at 20,000/s against a phone taking 6,400/s), falls tens of
// thousands of care alarms behind: it is never cut, and it gets every
// care alarm once, in order. Fake time (synctest): 200 alarms pushed per
// millisecond for 100 ms, 64 frames taken every 10 ms, then the rest.
func TestSlowReaderFarBehindIsNotCutAndGetsEveryCareAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cut, stalled, careN count
		q := New(Options{Counters: Counters{Cut: &cut, Stalled: &stalled, CareFrames: &careN}})
		const perMs, ms = 200, 100
		const total = perMs * ms
		var got []*alarm.Alarm
		var buf []Frame
		take := func(max int) {
			var wasCut bool
			buf, wasCut = q.Next(buf[:0], max)
			if wasCut {
				t.Fatalf("cut (%s) after %d of %d frames", q.CutReason(), len(got), total)
			}
			for _, f := range buf {
				got = append(got, f.Alarm)
			}
		}
		maxBehind := 0
		for m := range ms {
			for i := range perMs {
				if !q.Push(care(fmt.Sprintf("C%06d", m*perMs+i))) {
					t.Fatalf("push refused at alarm %d (%s)", m*perMs+i, q.CutReason())
				}
			}
			if c, _ := q.Len(); c > maxBehind {
				maxBehind = c
			}
			time.Sleep(time.Millisecond)
			if m%10 == 9 {
				take(64)
			}
		}
		for len(got) < total {
			time.Sleep(10 * time.Millisecond)
			take(64)
		}
		if maxBehind <= 4096 {
			t.Fatalf("at most %d care alarms behind: the reader was not slow enough to test anything", maxBehind)
		}
		for i, a := range got {
			if want := fmt.Sprintf("C%06d", i); a.ID != want {
				t.Fatalf("frame %d is %s, want %s: lost, doubled or out of order", i, a.ID, want)
			}
		}
		if cut.n.Load() != 0 || stalled.n.Load() != 0 || careN.n.Load() != total {
			t.Fatalf("cut %d, stalled %d, care frames counted %d of %d", cut.n.Load(), stalled.n.Load(), careN.n.Load(), total)
		}
		t.Logf("%d care alarms, at most %d behind, none cut", total, maxBehind)
	})
}

// A subscriber that takes nothing while frames wait is cut once the stall
// timeout has passed since they began to wait, not before; one that takes
// a frame now and then restarts the clock and is kept; an idle queue
// (nothing waiting) is never stalled however long it sits.
func TestStalledSubscriberCutAfterNoProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cut, stalled count
		q := New(Options{StallTimeout: 30 * time.Second, Counters: Counters{Cut: &cut, Stalled: &stalled}})

		// Idle for an hour: nothing waits, so nothing stalls.
		time.Sleep(time.Hour)
		if !q.Push(care("C0")) {
			t.Fatal("an idle queue was cut")
		}
		// Reading one frame every 29 s is slow, but progress.
		for i := 1; i <= 5; i++ {
			time.Sleep(29 * time.Second)
			if !q.Push(care(fmt.Sprint("C", i))) {
				t.Fatalf("cut at push %d although the reader took a frame 29 s ago", i)
			}
			if f, wasCut := q.Next(nil, 1); wasCut || len(f) != 1 {
				t.Fatalf("next: %d frames, cut %v", len(f), wasCut)
			}
		}
		// Now it takes nothing: frames have waited since the last Next.
		time.Sleep(30*time.Second - time.Millisecond)
		if !q.Push(care("C-late")) {
			t.Fatal("cut before the stall timeout")
		}
		time.Sleep(time.Millisecond)
		if q.Push(care("C-cut")) {
			t.Fatal("not cut after 30 s without progress")
		}
		if q.CutReason() != CutStalled || stalled.n.Load() != 1 || cut.n.Load() != 0 {
			t.Fatalf("reason %q, stalled %d, full %d", q.CutReason(), stalled.n.Load(), cut.n.Load())
		}
		select {
		case <-q.Ready():
		default:
			t.Fatal("the reader was not woken to see the cut")
		}
		if _, wasCut := q.Next(nil, 10); !wasCut {
			t.Fatal("reader not told of the cut")
		}
		if c, tl := q.Len(); c != 0 || tl != 0 {
			t.Fatalf("a cut queue still holds %d care, %d technical frames", c, tl)
		}
		if q.Push(care("C-after")) || stalled.n.Load() != 1 {
			t.Fatal("a cut queue took a push or counted twice")
		}
	})
}

// A technical flood alone also stalls a subscriber that takes nothing
// (its summary waits): the clock does not care which lane waits.
func TestStalledOnTechnicalSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stalled count
		q := New(Options{TechMax: 2, StallTimeout: time.Second, Counters: Counters{Stalled: &stalled}})
		for i := range 10 {
			q.Push(tech(fmt.Sprint("T", i), ""))
		}
		time.Sleep(time.Second)
		if q.Push(tech("T-late", "")) || stalled.n.Load() != 1 {
			t.Fatal("a subscriber with a summary waiting 1 s was not cut")
		}
	})
}

// A lane that is always a little behind never empties: its sent prefix
// is compacted away, so its slice stays small, and coalescing still finds
// each unsent frame after compaction (absolute positions).
func TestLaneCompactsAndCoalescesAcrossCompaction(t *testing.T) {
	var coal count
	q := New(Options{Counters: Counters{Coalesced: &coal}})
	const n = 100_000
	next := 0 // the id expected next
	var buf []Frame
	for i := range n {
		q.Push(care(fmt.Sprintf("C%06d", i)))
		if i >= 10 {
			// A newer state of an unsent alarm, 5 back: replaces it in place.
			upd := care(fmt.Sprintf("C%06d", i-5))
			upd.State = alarm.Accepted
			q.Push(upd)
			buf, _ = q.Next(buf[:0], 1)
			if len(buf) != 1 || buf[0].Alarm.ID != fmt.Sprintf("C%06d", next) {
				t.Fatalf("step %d: got %+v, want C%06d", i, buf, next)
			}
			if next >= 5 && buf[0].Alarm.State != alarm.Accepted {
				t.Fatalf("step %d: %s sent in its old state: coalescing lost its place", i, buf[0].Alarm.ID)
			}
			next++
		}
	}
	if c := cap(q.care.q); c > 4*compactMin {
		t.Fatalf("lane slice grew to %d for a backlog of about 10", c)
	}
	if got := coal.n.Load(); got != n-10 {
		t.Fatalf("coalesced %d, want %d", got, n-10)
	}
	// A long backlog gives its memory back once sent.
	for i := range 3 * keepCap {
		q.Push(care(fmt.Sprintf("B%06d", i)))
	}
	for {
		if buf, _ = q.Next(buf[:0], 1000); len(buf) == 0 {
			break
		}
	}
	if q.care.q != nil || q.care.at != nil {
		t.Fatalf("drained lane keeps a slice of %d and an index", cap(q.care.q))
	}
}

// BenchmarkCareBacklog is one screen 50,000 care alarms behind: the cost
// per alarm of Push (under the hub's lock) and of taking it in bursts of
// 256, with allocations.
func BenchmarkCareBacklog(b *testing.B) {
	const backlog = 50_000
	as := make([]*alarm.Alarm, backlog)
	for i := range as {
		as[i] = care(fmt.Sprintf("A%07d", i))
	}
	buf := make([]Frame, 0, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		q := New(Options{})
		for j := 0; j < backlog && i < b.N; j, i = j+1, i+1 {
			q.Push(as[j])
		}
		for {
			if buf, _ = q.Next(buf[:0], 256); len(buf) == 0 {
				break
			}
		}
	}
}
