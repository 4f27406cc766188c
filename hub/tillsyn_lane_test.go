package hub

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/store"
	"github.com/vaka-care/vaka/tillsyn"
)

// laneRegion is a region of n residents (regionConfig) whose night is
// queued, every sensor heard a minute before at, the hub's clock at at.
// Call it inside a synctest bubble: the hub's pacing then runs on the
// bubble's clock.
func laneRegion(t *testing.T, n int, at func(loc *time.Location) time.Time) (*Hub, *prometheus.Registry, time.Time, string) {
	return laneRegionJ(t, n, at, nil)
}

// laneRegionJ is laneRegion with the journal wrapped (wrap may be nil).
func laneRegionJ(t *testing.T, n int, at func(loc *time.Location) time.Time, wrap func(*store.Journal) Journal) (*Hub, *prometheus.Registry, time.Time, string) {
	t.Helper()
	cfg := regionConfig(t, n)
	dir := t.TempDir()
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	inst := at(cfg.Loc)
	c := newClock(inst.Add(-time.Hour))
	reg := prometheus.NewRegistry()
	var jj Journal = j
	if wrap != nil {
		jj = wrap(j)
	}
	h, err := New(Options{Config: cfg, Journal: jj, Replay: replay, Now: c.Now, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	h.tillsynTick(c.Now()) // 22:00: the night is queued
	c.Add(time.Hour - time.Minute)
	seq := 0
	for g := 0; g < n/100; g++ {
		gw := fmt.Sprintf("gw-%d", g)
		h.HandleHeartbeat("region", gw, nil)
		for k := 0; k < 100; k++ {
			id := fmt.Sprintf("r-%d", g*100+k)
			for _, s := range [][3]string{{"bed-" + id, "0012", "occupied"}, {"door-" + id, "0014", "closed"}} {
				seq++
				p := fmt.Appendf(nil, `{"v":1,"id":"e%d","device":%q,"dty":%q,"state":%q,"ts":%q}`, seq, s[0], s[1], s[2], c.Now().UTC().Format(time.RFC3339))
				if r := h.HandleEvent("region", gw, p); r.Code != event.ReplyOK {
					t.Fatalf("reply %+v", r)
				}
			}
		}
	}
	c.Add(time.Minute)
	return h, reg, inst, dir
}

func at2300(loc *time.Location) time.Time { return time.Date(2026, 11, 10, 23, 0, 0, 0, loc) }

// gathered is metric name's value in reg (summed over its labels), as
// /metrics shows it.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		return sum
	}
	t.Fatalf("%s not exported", name)
	return 0
}

// recordsAt counts the supervision records of the 23:00 look-in, all
// right and timed at the instant.
func recordsAt(t *testing.T, h *Hub, inst time.Time) (n int) {
	t.Helper()
	for _, r := range h.TillsynRecords() {
		if r.Wall != "23:00" {
			continue
		}
		if r.Outcome != tillsyn.AllRight || !r.At.Equal(inst) {
			t.Errorf("%s: %s at %v, want all right at the instant %v", r.Resident, r.Outcome, r.At, inst)
		}
		n++
	}
	return n
}

// While a care alarm is on its way through the hub (the alarm lane is
// busy), look-ins start nothing: no state is read and nothing is judged
// or journaled; once it has its answer they go on, each judged at its
// instant, none late.
func TestHubTillsynWaitsForAlarmLane(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 200
		h, reg, inst, _ := laneRegion(t, n, at2300)
		h.ln.careBusy.Add(1) // a care alarm between its rules and its reply
		done := make(chan struct{})
		go func() { h.tillsynTick(inst); close(done) }()
		time.Sleep(500 * time.Millisecond) // well inside the 1 s the reading of state yields
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("the tick finished while an alarm was on its way")
		default:
		}
		if got := recordsAt(t, h, inst); got != 0 || h.TillsynPending() != 0 {
			t.Fatalf("%d look-ins judged, %d read while the alarm lane was busy, want none", got, h.TillsynPending())
		}
		h.ln.careBusy.Add(-1) // the alarm has its answer
		<-done
		for i := 0; i < 10 && h.TillsynPending() > 0; i++ {
			h.tillsynTick(inst)
		}
		if got := recordsAt(t, h, inst); got != n {
			t.Fatalf("%d of %d look-ins judged after the alarm passed", got, n)
		}
		if late := gathered(t, reg, "vaka_tillsyn_lookins_late_total"); late != 0 {
			t.Errorf("%v look-ins counted late", late)
		}
		if w := gathered(t, reg, "vaka_tillsyn_alarm_lane_wait_seconds_total"); w < 0.4 {
			t.Errorf("waited %v s for the alarm lane, want about 0.5", w)
		}
	})
}

// An alarm lane that never goes quiet (an alarm storm) delays look-ins by
// a bounded time only: the reading of state stops yielding after
// tillsynSnapYieldFor, the judging after tillsynYieldFor, so every
// look-in is judged well inside its deadline, at its instant, none late.
func TestHubTillsynYieldingIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 200
		h, reg, inst, dir := laneRegion(t, n, at2300)
		h.ln.careBusy.Add(1) // and it stays
		defer h.ln.careBusy.Add(-1)
		start := time.Now()
		ticks := 0
		for ; ticks < 100 && (ticks == 0 || h.TillsynPending() > 0); ticks++ {
			t0 := time.Now()
			h.tillsynTick(inst)
			// The tick's goroutine also runs supervision: it must not
			// stall behind the alarms for more than the tick's share
			// (the first tick reads the state, yielding up to 1 s).
			limit := tillsynScheduleYieldFor + h.ts.budget + 2*tillsynLaneWait + 50*time.Millisecond
			if ticks == 0 {
				limit += tillsynSnapYieldFor
			}
			if d := time.Since(t0); d > limit {
				t.Errorf("tick %d took %v beside a busy alarm lane, want at most %v", ticks, d, limit)
			}
		}
		took := time.Since(start)
		t.Logf("judged in %d ticks, %v", ticks, took)
		if got := recordsAt(t, h, inst); got != n {
			t.Fatalf("%d of %d look-ins judged beside a busy alarm lane", got, n)
		}
		// Ticks stopped inside batches: still each look-in once.
		if recs, err := store.ReadRecords(dir, RecTillsyn, inst, inst.Add(time.Minute)); err != nil || len(recs) != n {
			t.Fatalf("journal holds %d records of the instant (%v), want %d", len(recs), err, n)
		}
		if took < tillsynYieldFor || took > tillsynDeadline {
			t.Errorf("judged after %v beside a busy lane, want between the %v of yielding and the %v deadline", took, tillsynYieldFor, tillsynDeadline)
		}
		if late := gathered(t, reg, "vaka_tillsyn_lookins_late_total"); late != 0 {
			t.Errorf("%v look-ins counted late", late)
		}
	})
}

// A look-in judged more than tillsynDeadline after it fell due (a hub too
// far behind) is still judged at its instant, and counted in
// vaka_tillsyn_lookins_late_total.
func TestHubTillsynLateIsCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 200
		h, reg, inst, _ := laneRegion(t, n, at2300)
		h.ts.budget = 0 // one chunk per tick (the bubble's clock stands still while it works)
		h.tillsynTick(inst)
		left := h.TillsynPending()
		if left == 0 || left >= n {
			t.Fatalf("after one tick %d of %d left", left, n)
		}
		time.Sleep(tillsynDeadline + time.Second) // the next tick comes too late
		h.ts.budget = time.Hour
		h.tillsynTick(inst)
		if h.TillsynPending() != 0 {
			t.Fatalf("%d left", h.TillsynPending())
		}
		if got := recordsAt(t, h, inst); got != n {
			t.Fatalf("%d of %d judged", got, n)
		}
		if late := gathered(t, reg, "vaka_tillsyn_lookins_late_total"); late != float64(left) {
			t.Errorf("%v look-ins counted late, want the %d judged past the deadline", late, left)
		}
	})
}

// sizeJournal records the size of each write of pre-encoded records.
type sizeJournal struct {
	*store.Journal
	writes [][2]int // records, bytes
}

func (s *sizeJournal) AppendEncoded(rt string, items []store.EncodedItem) error {
	n := 0
	for _, it := range items {
		n += len(it.Body)
	}
	s.writes = append(s.writes, [2]int{len(items), n})
	return s.Journal.AppendEncoded(rt, items)
}

// Look-in records go to the journal in writes of at most
// tillsynJournalBytes, so an alarm's append never waits behind a large
// batch; all of them are written.
func TestHubTillsynJournalWritesAreBounded(t *testing.T) {
	const n = 200
	defer func(b int) { tillsynJournalBytes = b }(tillsynJournalBytes)
	tillsynJournalBytes = 2 << 10 // a chunk's records (about 7 KB) in several writes
	var sj *sizeJournal
	h, _, inst, dir := laneRegionJ(t, n, at2300, func(j *store.Journal) Journal {
		sj = &sizeJournal{Journal: j}
		return sj
	})
	for i := 0; i < 100 && (i == 0 || h.TillsynPending() > 0); i++ {
		h.tillsynTick(inst)
	}
	recs, bytes := 0, 0
	for _, w := range sj.writes {
		if w[1] > tillsynJournalBytes && w[0] > 1 {
			t.Errorf("one write of %d records, %d bytes: over the %d bound", w[0], w[1], tillsynJournalBytes)
		}
		recs += w[0]
		bytes += w[1]
	}
	if recs != n {
		t.Fatalf("%d records written, want %d", recs, n)
	}
	t.Logf("%d writes, %d bytes", len(sj.writes), bytes)
	if len(sj.writes) < bytes/tillsynJournalBytes {
		t.Errorf("%d writes of %d bytes in all", len(sj.writes), bytes)
	}
	got, err := store.ReadRecords(dir, RecTillsyn, inst, inst.Add(time.Minute))
	if err != nil || len(got) != n {
		t.Fatalf("journal holds %d records (%v), want %d", len(got), err, n)
	}
}
