package service

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

// recordingSeen is the group's side as DevicesSeen sees it: it takes
// records, or refuses them when fail is set.
type recordingSeen struct {
	got  map[string]SeenRecord
	fail bool
}

func (r *recordingSeen) PutSeen(key string, rec SeenRecord) error {
	if r.fail {
		return errors.New("no quorum")
	}
	r.got[key] = rec
	return nil
}

// TestDevicesSeenReplicate: a device heard for the first time is sent at
// the next flush, a hearing a minute later is not (the group's copy is
// recent enough), a new battery level is, and a hearing
// seenReplicateEvery after the copy is; records the group refuses are
// counted and sent at a later flush. A record merged from the group that
// is newer than the hub's own file wins, and is not sent back.
func TestDevicesSeenReplicate(t *testing.T) {
	s, err := openSeen(filepath.Join(t.TempDir(), SeenFile), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d := &DevicesSeen{s: s}
	g := &recordingSeen{got: map[string]SeenRecord{}}
	d.SetSync(g)
	t0 := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	hear := func(dev string, at time.Time, battery *int) {
		s.ObserveEvent(&event.Event{Site: "solrosen", Device: dev, Battery: battery}, at)
	}
	hear("knapp-1", t0, nil)
	if n := d.Replicate(); n != 1 || !g.got["solrosen/knapp-1"].LastSeen.Equal(t0) {
		t.Fatalf("first hearing: sent %d, group has %+v", n, g.got)
	}
	hear("knapp-1", t0.Add(time.Minute), nil)
	if n := d.Replicate(); n != 0 {
		t.Errorf("a hearing a minute later sent %d records, want 0", n)
	}
	b := 35
	hear("knapp-1", t0.Add(2*time.Minute), &b)
	if n := d.Replicate(); n != 1 || g.got["solrosen/knapp-1"].Battery == nil || *g.got["solrosen/knapp-1"].Battery != 35 {
		t.Errorf("a new battery level: sent %d, group has %+v", n, g.got["solrosen/knapp-1"])
	}
	hear("knapp-1", t0.Add(2*time.Minute+seenReplicateEvery), &b)
	if n := d.Replicate(); n != 1 {
		t.Errorf("a hearing %s after the group's copy: sent %d, want 1", seenReplicateEvery, n)
	}
	hear("knapp-2", t0, nil)
	g.fail = true
	if n := d.Replicate(); n != 0 || d.SyncFailures() != 1 {
		t.Errorf("refused: sent %d, failures %d; want 0 and 1", n, d.SyncFailures())
	}
	g.fail = false
	if n := d.Replicate(); n != 1 || g.got["solrosen/knapp-2"].LastSeen.IsZero() {
		t.Errorf("after the refusal: sent %d, group has %+v", n, g.got)
	}
	// From the group: a device this hub never heard, newer than nothing.
	if n := d.Merge(map[string]SeenRecord{"solrosen/dorr-3": {LastSeen: t0}}); n != 3 {
		t.Errorf("devices known after merge: %d, want 3", n)
	}
	if r := d.Records()["solrosen/dorr-3"]; !r.LastSeen.Equal(t0) {
		t.Errorf("merged record: %+v", r)
	}
	delete(g.got, "solrosen/dorr-3")
	if n := d.Replicate(); n != 0 {
		t.Errorf("a record read from the group sent back: %d", n)
	}
	d.SetSync(nil)
	hear("knapp-4", t0, nil)
	if n := d.Replicate(); n != 0 {
		t.Errorf("sent %d records with sync off", n)
	}
}

// recordingHeard is recordingSeen that also takes last-heard times.
type recordingHeard struct {
	recordingSeen
	calls     int
	heard     map[string]time.Time
	failHeard bool
}

func (r *recordingHeard) PutHeard(heard map[string]time.Time) (int, error) {
	r.calls++
	if r.failHeard {
		return 0, errors.New("no quorum")
	}
	r.heard = heard
	return 1, nil
}

// TestDevicesSeenHeardShared: with a group that takes last-heard times,
// every flush after a hearing shares every device's newest time (a
// hearing a minute later reaches the group although the device's own
// record is not sent again), a flush with nothing heard shares nothing,
// a refused share is counted and sent whole at the next flush, and the
// refreshes of devices' own records are at most seenRefreshPerFlush a
// flush.
func TestDevicesSeenHeardShared(t *testing.T) {
	s, err := openSeen(filepath.Join(t.TempDir(), SeenFile), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d := &DevicesSeen{s: s}
	g := &recordingHeard{recordingSeen: recordingSeen{got: map[string]SeenRecord{}}}
	d.SetSync(g)
	t0 := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	hear := func(dev string, at time.Time) {
		s.ObserveEvent(&event.Event{Site: "solrosen", Device: dev}, at)
	}
	hear("knapp-1", t0)
	d.Replicate()
	hear("knapp-1", t0.Add(time.Minute))
	if n := d.Replicate(); n != 0 || !g.heard["solrosen/knapp-1"].Equal(t0.Add(time.Minute)) {
		t.Errorf("a hearing a minute later: %d records sent, group's last-heard %v", n, g.heard["solrosen/knapp-1"])
	}
	calls := g.calls
	d.Replicate()
	if g.calls != calls {
		t.Errorf("nothing heard: last-heard times shared again")
	}
	hear("knapp-2", t0.Add(2*time.Minute))
	g.failHeard = true
	d.Replicate()
	if d.SyncFailures() != 1 {
		t.Errorf("refused share: %d failures counted, want 1", d.SyncFailures())
	}
	g.failHeard = false
	d.Replicate()
	if len(g.heard) != 2 || !g.heard["solrosen/knapp-2"].Equal(t0.Add(2*time.Minute)) {
		t.Errorf("after the refusal the group has %v", g.heard)
	}
	// A fleet all due for its refresh in the same minute.
	for i := range 3 * seenRefreshPerFlush {
		hear(fmt.Sprintf("rum-%d", i), t0)
	}
	d.Replicate()
	for i := range 3 * seenRefreshPerFlush {
		hear(fmt.Sprintf("rum-%d", i), t0.Add(seenReplicateEvery))
	}
	for flush := range 3 {
		if n := d.Replicate(); n != seenRefreshPerFlush {
			t.Errorf("refresh flush %d: %d records sent, want %d", flush, n, seenRefreshPerFlush)
		}
	}
	if n := d.Replicate(); n != 0 {
		t.Errorf("after the refreshes: %d records sent", n)
	}
}
