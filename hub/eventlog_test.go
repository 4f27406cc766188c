package hub

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

// Every event the log takes is in the day file of its own UTC date once
// Close returns, in order; nothing is dropped below the bound.
func TestEventLogWritesEveryEvent(t *testing.T) {
	dir := t.TempDir()
	l, err := NewEventLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	day1 := time.Date(2026, 11, 23, 23, 59, 59, 0, time.UTC)
	const n = 5000
	for i := range n {
		ts := day1
		if i >= n/2 {
			ts = day1.Add(2 * time.Second) // the next UTC day
		}
		ev := event.Event{V: 1, ID: fmt.Sprintf("e%d", i), Site: "s", Gateway: "g", Device: "d", Type: event.PersonalTrigger,
			State: event.StatePressed, Time: ts, Seq: uint64(i)}
		l.ObserveEvent(&ev, ts)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Dropped() != 0 || l.Written() != n {
		t.Fatalf("written %d, dropped %d; want %d, 0", l.Written(), l.Dropped(), n)
	}
	next := 0
	for _, name := range []string{"events-2026-11-23.jsonl", "events-2026-11-24.jsonl"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ev event.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if want := fmt.Sprintf("e%d", next); ev.ID != want || ev.Seq != uint64(next) {
				t.Fatalf("%s: got %s seq %d, want %s", name, ev.ID, ev.Seq, want)
			}
			next++
		}
		f.Close()
	}
	if next != n {
		t.Fatalf("read back %d events, want %d", next, n)
	}
}

// Events the log cannot take (after Close, or over its bound) are counted
// as dropped, never silently lost.
func TestEventLogCountsDrops(t *testing.T) {
	l, err := NewEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	ev := event.Event{V: 1, ID: "late", Time: time.Now()}
	l.ObserveEvent(&ev, time.Now())
	if l.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", l.Dropped())
	}
}

// The log's encoder writes exactly what json.Marshal writes.
func FuzzAppendEventJSON(f *testing.F) {
	f.Add(1, "e1", "s", "g", "d", "0003", "0010", "pressed", "r-1", "u", "12", int64(1_700_000_000_123), 3600, -1, uint64(7), false)
	f.Add(0, "", "", "", "", "", "", "", "", "", "", int64(0), 0, 80, uint64(0), true)
	f.Add(1, "y", "s", "g", "d", "0003", "", "", "", "", "", int64(253402300800000), 0, -1, uint64(0), false) // year 10000: Marshal refuses it
	f.Add(1, "<&>", "å", "\"", "\\", "\u2028", "\x00", "x", "", "", "", int64(-62135596800000), -3600, 0, uint64(1), false)
	f.Fuzz(func(t *testing.T, v int, id, site, gw, dev, dty, stc, state, res, unit, room string, ms int64, off, batt int, seq uint64, pos bool) {
		ev := event.Event{V: v, ID: id, Site: site, Gateway: gw, Device: dev, Type: event.DeviceType(dty),
			Status: event.StatusCode(stc), State: event.State(state), Resident: res, Unit: unit, Room: room, Seq: seq,
			Time: time.UnixMilli(ms).In(time.FixedZone("", off%86400))}
		if batt >= 0 {
			ev.Battery = &batt
		}
		if pos {
			ev.Position = &event.Position{Lat: 58.3, Lon: 11.9, Accuracy: 12}
		}
		want, werr := json.Marshal(&ev)
		got, gerr := appendEventJSON([]byte("x"), &ev)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("errors differ: %v vs %v", werr, gerr)
		}
		if werr == nil && string(got[1:]) != string(want) {
			t.Fatalf("encoding differs:\n got %s\nwant %s", got[1:], want)
		}
	})
}
