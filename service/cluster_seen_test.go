//go:build !nocluster

package service

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vaka-care/vaka/cluster"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/natstest"
)

// seenGroupAdapter is cmd/vaka's seenAdapter (the hub's devices seen as
// the cluster package sees it), repeated here: package main's is not
// importable.
type seenGroupAdapter struct{ d *DevicesSeen }

func (a seenGroupAdapter) Merge(group map[string]cluster.DeviceSeen) int {
	m := make(map[string]SeenRecord, len(group))
	for k, r := range group {
		m[k] = SeenRecord(r)
	}
	return a.d.Merge(m)
}

func (a seenGroupAdapter) Apply(key string, r cluster.DeviceSeen) { a.d.Apply(key, SeenRecord(r)) }

func (a seenGroupAdapter) SetSync(to cluster.SeenSink) {
	if to == nil {
		a.d.SetSync(nil)
		return
	}
	a.d.SetSync(seenGroupSink{to})
}

type seenGroupSink struct{ to cluster.SeenSink }

func (p seenGroupSink) PutSeen(key string, r SeenRecord) error {
	return p.to.PutSeen(key, cluster.DeviceSeen(r))
}

func (p seenGroupSink) PutHeard(heard map[string]time.Time) (int, error) { return p.to.PutHeard(heard) }

// TestIntegrationDevicesSeenFailover: 1,000 devices each heard every 30 s
// for seven (simulated) hours on the active hub, whose devices seen are
// flushed to a real 3-node NATS group every minute as the hub's flusher
// does; then the hub is gone, 20 s after its last flush (everyone heard
// once more meanwhile, and one device heard for the first time in the
// minute before that flush), and another hub attaches. Asserted: on the
// new hub no device is unknown and none shows a last-heard time more than
// 2 minutes older than its last hearing (it was up to 10 minutes before
// last-heard times were shared each minute); the group takes one message
// a minute while the fleet only reports (their times, one shard), the
// first minute a record per device, and the refresh of every device's own
// record after seenReplicateEvery spread over flushes of at most
// seenRefreshPerFlush records. The messages per minute are counted on
// the NATS side (the buckets' stream sequences) and logged.
func TestIntegrationDevicesSeenFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := natstest.Group(t, "n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	connect := func(node string) *cluster.Node {
		n, err := cluster.Connect(ctx, cluster.Options{Node: node, URLs: urls, Replicas: 3, LeaseTTL: 5 * time.Second, Stream: "VAKA_SEEN"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		return n
	}
	log := slog.New(slog.DiscardHandler)
	attach := func(node string) (*DevicesSeen, *cluster.DevicesSeen, func()) {
		n := connect(node)
		s, err := openSeen(filepath.Join(t.TempDir(), SeenFile), log)
		if err != nil {
			t.Fatal(err)
		}
		d := &DevicesSeen{s: s}
		g, err := n.OpenDevicesSeen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stop, err := g.Attach(ctx, seenGroupAdapter{d})
		if err != nil {
			t.Fatal(err)
		}
		return d, g, stop
	}
	dA, gA, stopA := attach("hub-a")

	// The NATS side's count: every put to either bucket is one message
	// of its stream.
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	messages := func() uint64 {
		var sum uint64
		for _, st := range []string{"KV_VAKA_SEEN_SEEN", "KV_VAKA_SEEN_HEARD"} {
			s, err := js.Stream(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			sum += s.CachedInfo().State.LastSeq
		}
		return sum
	}

	const devices = 1000
	const minutes = 7 * 60
	t0 := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	last := map[string]time.Time{}
	hear := func(k string, at time.Time) {
		site, dev, _ := strings.Cut(k, "/")
		dA.s.ObserveEvent(&event.Event{Site: site, Device: dev}, at)
		last[k] = at
	}
	dev := func(i int) string { return fmt.Sprintf("solrosen/rum-%04d", i) }
	perMinute := make([]uint64, 0, minutes+1)
	before := messages()
	for m := 0; m <= minutes; m++ {
		minute := t0.Add(time.Duration(m) * time.Minute)
		for i := range devices {
			// Each device's two reports in this minute, spread over it.
			off := time.Duration(i%30) * time.Second
			hear(dev(i), minute.Add(off))
			hear(dev(i), minute.Add(off+30*time.Second))
		}
		if m == minutes {
			hear("solrosen/ny-knapp", minute.Add(50*time.Second)) // first heard just before the last flush
		}
		dA.Replicate() // the flusher's minute
		now := messages()
		perMinute = append(perMinute, now-before)
		before = now
	}
	if f := dA.SyncFailures(); f != 0 {
		t.Fatalf("%d records not replicated", f)
	}
	// 20 s after the last flush, everyone heard once more; then hub-a is gone.
	gone := t0.Add(time.Duration(minutes+1)*time.Minute + 20*time.Second)
	for i := range devices {
		hear(dev(i), gone)
	}
	stopA()

	var steady, refresh, total uint64
	var steadyMax uint64
	refreshFrom := int(seenReplicateEvery / time.Minute)
	for m, c := range perMinute[1:] {
		m++
		total += c
		if m < refreshFrom {
			steady += c
			steadyMax = max(steadyMax, c)
		} else {
			refresh += c
		}
	}
	hm, hb := gA.HeardWritten()
	t.Logf("1,000 devices heard every 30 s: first minute %d messages; minutes 1-%d %d messages (at most %d a minute); minutes %d-%d (own records refreshed) %d; %.2f a minute over %d minutes; last-heard shards %d messages, %d bytes each on average",
		perMinute[0], refreshFrom-1, steady, steadyMax, refreshFrom, minutes, refresh, float64(total)/minutes, minutes, hm, hb/max(hm, 1))
	if perMinute[0] != devices+1 {
		t.Errorf("first minute: %d messages, want %d (a record per device, one shard)", perMinute[0], devices+1)
	}
	if steadyMax != 1 {
		t.Errorf("while the fleet only reports: up to %d messages a minute, want 1", steadyMax)
	}
	if want := uint64(devices + 1 + minutes - refreshFrom + 1); refresh != want {
		t.Errorf("minutes %d-%d: %d messages, want %d (each device's own record once, the new device's, one shard a minute)", refreshFrom, minutes, refresh, want)
	}
	for _, c := range perMinute[refreshFrom:] {
		if c > seenRefreshPerFlush+1 {
			t.Errorf("a refresh flush of %d messages, over %d", c, seenRefreshPerFlush+1)
		}
	}

	dB, _, stopB := attach("hub-b")
	defer stopB()
	recs := dB.Records()
	var worst time.Duration
	for k, at := range last {
		r, ok := recs[k]
		if !ok || r.LastSeen.IsZero() {
			t.Errorf("%s unknown on the hub that took over", k)
			continue
		}
		worst = max(worst, at.Sub(r.LastSeen))
	}
	t.Logf("after the failover: %d devices known, last-heard times at most %s behind the last hearing", len(recs), worst)
	if worst > 2*time.Minute {
		t.Errorf("a last-heard time %s behind its last hearing, want at most 2 minutes", worst)
	}
}
