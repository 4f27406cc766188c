package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/store"
	"github.com/vaka-care/vaka/tillsyn"
)

// A region's look-ins judged over several ticks still come out as of
// their instant: the state is read at the tick that finds them due, and
// an event after it (every bed empty) does not change a look-in judged
// later; each record's time is the instant, and no look-in is made twice.
func TestHubTillsynSpreadOverTicksKeepsInstant(t *testing.T) {
	const n = 200
	cfg := regionConfig(t, n)
	dir := t.TempDir()
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	at := time.Date(2026, 11, 10, 23, 0, 0, 0, cfg.Loc)
	c := newClock(at.Add(-time.Hour))
	set := func(t time.Time) {
		c.mu.Lock()
		c.now = t
		c.mu.Unlock()
	}
	h, err := New(Options{Config: cfg, Journal: j, Replay: replay, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	send := func(gw, dev, dty, state string) {
		seq++
		p := fmt.Appendf(nil, `{"v":1,"id":"e%d","device":%q,"dty":%q,"state":%q,"ts":%q}`, seq, dev, dty, state, c.Now().UTC().Format(time.RFC3339))
		if r := h.HandleEvent("region", gw, p); r.Code != event.ReplyOK {
			t.Fatalf("reply %+v", r)
		}
	}
	each := func(f func(gw, id string)) {
		for g := 0; g < n/100; g++ {
			for k := 0; k < 100; k++ {
				f(fmt.Sprintf("gw-%d", g), fmt.Sprintf("r-%d", g*100+k))
			}
		}
	}
	h.tillsynTick(c.Now()) // 22:00: the night is queued
	set(at.Add(-time.Minute))
	for g := 0; g < n/100; g++ {
		h.HandleHeartbeat("region", fmt.Sprintf("gw-%d", g), nil)
	}
	each(func(gw, id string) {
		send(gw, "bed-"+id, "0012", "occupied")
		send(gw, "door-"+id, "0014", "closed")
	})
	set(at)
	h.ts.budget = time.Nanosecond // one chunk per tick
	h.tillsynTick(at)
	left := h.TillsynPending()
	if left == 0 || left >= n {
		t.Fatalf("after one tick %d of %d look-ins left to judge, want some", left, n)
	}
	// Every resident gets up after the instant.
	set(at.Add(time.Second))
	each(func(gw, id string) { send(gw, "bed-"+id, "0012", "empty") })
	ticks := 1
	for ; h.TillsynPending() > 0 && ticks < 1000; ticks++ {
		c.Add(time.Second)
		h.tillsynTick(c.Now())
	}
	if h.TillsynPending() > 0 || ticks < 3 {
		t.Fatalf("judged in %d ticks, %d left", ticks, h.TillsynPending())
	}
	seen := map[string]bool{}
	for _, r := range h.TillsynRecords() {
		if r.Wall != "23:00" {
			continue
		}
		if seen[r.Key()] {
			t.Fatalf("%s made twice", r.Key())
		}
		seen[r.Key()] = true
		if r.Outcome != tillsyn.AllRight || !r.At.Equal(at) {
			t.Errorf("%s: %s at %v, want all right at %v (state as of the instant)", r.Resident, r.Outcome, r.At, at)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d look-ins recorded, want %d", len(seen), n)
	}
	recs, err := store.ReadRecords(dir, RecTillsyn, at, at.Add(time.Minute))
	if err != nil || len(recs) != n {
		t.Fatalf("journal holds %d records of the instant (%v), want %d", len(recs), err, n)
	}
}
