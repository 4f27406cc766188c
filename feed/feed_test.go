package feed

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/vaka-care/vaka/alarm"
)

type count struct{ n atomic.Int64 }

func (c *count) Add(f float64) { c.n.Add(int64(f)) }

func tech(id string, note string) *alarm.Alarm {
	return &alarm.Alarm{ID: id, Kind: alarm.KindTechnical, Note: note}
}
func care(id string) *alarm.Alarm { return &alarm.Alarm{ID: id, Kind: alarm.KindCall} }

// A slow subscriber in a technical flood: technical frames coalesce, then
// are dropped and summarised once; every care frame is kept, in order,
// and leaves before any technical frame. Nothing is cut.
func TestCareNeverDroppedTechnicalCoalescedAndSummarised(t *testing.T) {
	var coal, dropped, sums, cut count
	q := New(Options{CareMax: 100, TechMax: 10, Counters: Counters{Coalesced: &coal, TechDropped: &dropped, Summaries: &sums, Cut: &cut}})
	// Ten distinct technical alarms, each updated three times: coalesced.
	for r := range 3 {
		for i := range 10 {
			q.Push(tech(fmt.Sprintf("T%d", i), fmt.Sprint(r)))
		}
	}
	if c, tl := q.Len(); c != 0 || tl != 10 || coal.n.Load() != 20 {
		t.Fatalf("after updates: care %d technical %d coalesced %d, want 0, 10, 20", c, tl, coal.n.Load())
	}
	// A flood of new technical alarms with care alarms among them.
	for i := range 1000 {
		if !q.Push(tech(fmt.Sprintf("F%d", i), "")) {
			t.Fatal("cut in a technical flood")
		}
		if i%20 == 0 {
			q.Push(care(fmt.Sprintf("C%03d", i/20)))
		}
	}
	frames, wasCut := q.Next(nil, 2000)
	if wasCut || cut.n.Load() != 0 {
		t.Fatal("subscriber cut")
	}
	var cares []string
	var skipped, techAfter int
	sawTech := false
	for _, f := range frames {
		switch {
		case f.Alarm == nil:
			if sawTech || len(cares) != 50 {
				t.Fatalf("summary after technical frames or before the care frames (%d care so far)", len(cares))
			}
			skipped += f.Skipped
		case Care(f.Alarm):
			if sawTech || skipped > 0 {
				t.Fatal("a care frame behind a technical frame or a summary")
			}
			cares = append(cares, f.Alarm.ID)
		default:
			sawTech = true
			techAfter++
		}
	}
	if len(cares) != 50 {
		t.Fatalf("%d care frames, want all 50", len(cares))
	}
	for i, id := range cares {
		if id != fmt.Sprintf("C%03d", i) {
			t.Fatalf("care frame %d is %s: out of order", i, id)
		}
	}
	// Every technical update is either delivered, coalesced or counted
	// as skipped: 10 + 1000 distinct.
	if skipped == 0 || int64(skipped) != dropped.n.Load() || skipped+techAfter != 1010 || sums.n.Load() != 1 {
		t.Fatalf("skipped %d (counted %d), delivered %d, summaries %d; want skipped+delivered = 1010 and one summary",
			skipped, dropped.n.Load(), techAfter, sums.n.Load())
	}
}

// The latest state of an alarm replaces its unsent frame in place: a care
// alarm accepted before the screen took its raise is sent once, accepted.
func TestLatestStateReplacesUnsentFrame(t *testing.T) {
	q := New(Options{})
	q.Push(care("A1"))
	q.Push(care("A2"))
	acc := care("A1")
	acc.State = alarm.Accepted
	q.Push(acc)
	frames, _ := q.Next(nil, 10)
	if len(frames) != 2 || frames[0].Alarm != acc || frames[1].Alarm.ID != "A2" {
		t.Fatalf("frames %+v, want A1 (accepted) then A2", frames)
	}
	// Once sent, a new state is a new frame.
	q.Push(care("A1"))
	if frames, _ = q.Next(frames[:0], 10); len(frames) != 1 {
		t.Fatalf("%d frames for a change after sending, want 1", len(frames))
	}
}

// A subscriber whose care lane reaches CareMax (only a bound on memory,
// far above a region's open alarms) is cut, once, counted; technical
// traffic never cuts; later pushes are refused and the reader sees the cut.
func TestCutWhenCareLaneFull(t *testing.T) {
	var cut, stalled count
	q := New(Options{CareMax: 3, TechMax: 1, Counters: Counters{Cut: &cut, Stalled: &stalled}})
	for i := range 100 {
		if !q.Push(tech(fmt.Sprint("T", i), "")) {
			t.Fatal("cut for technical traffic")
		}
	}
	for i := range 3 {
		if !q.Push(care(fmt.Sprint("C", i))) {
			t.Fatalf("cut at care frame %d of 3", i)
		}
	}
	if q.Push(care("C3")) || cut.n.Load() != 1 || q.CutReason() != CutFull {
		t.Fatalf("fourth unsent care alarm: not cut (cut count %d, reason %q)", cut.n.Load(), q.CutReason())
	}
	if q.Push(care("C4")) || cut.n.Load() != 1 || stalled.n.Load() != 0 {
		t.Fatal("a cut queue took a push or counted twice")
	}
	if _, wasCut := q.Next(nil, 10); !wasCut {
		t.Fatal("reader not told of the cut")
	}
}

// Next hands out at most max frames and signals Ready again when more wait.
func TestNextBoundedAndResignals(t *testing.T) {
	q := New(Options{})
	for i := range 10 {
		q.Push(care(fmt.Sprint("C", i)))
	}
	<-q.Ready()
	f, _ := q.Next(nil, 4)
	if len(f) != 4 {
		t.Fatalf("%d frames, want 4", len(f))
	}
	select {
	case <-q.Ready():
	default:
		t.Fatal("not signalled with 6 frames waiting")
	}
}

// BenchmarkFanoutTechnicalFlood is the hub's fan-out to 8 staff screens,
// one of which never reads, under a flood of distinct technical alarms
// with a care alarm every 100: the cost per alarm of Push on every queue
// (the fast screens drain as they go).
func BenchmarkFanoutTechnicalFlood(b *testing.B) {
	const screens = 8
	qs := make([]*Queue, screens)
	for i := range qs {
		qs[i] = New(Options{})
	}
	as := make([]*alarm.Alarm, 4096)
	for i := range as {
		if i%100 == 0 {
			as[i] = care(fmt.Sprint("C", i))
		} else {
			as[i] = tech(fmt.Sprint("T", i), "")
		}
	}
	buf := make([]Frame, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := as[i%len(as)]
		for _, q := range qs {
			q.Push(a)
		}
		if i%64 == 63 {
			for _, q := range qs[1:] {
				buf, _ = q.Next(buf[:0], 64)
			}
		}
		if i%len(as) == len(as)-1 {
			// The stalled screen's care lane is emptied as a reconnect would.
			qs[0] = New(Options{})
		}
	}
}
