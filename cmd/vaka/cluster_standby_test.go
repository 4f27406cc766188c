//go:build !nocluster

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/internal/testenv"
)

// startHubsOnNATS starts one `vaka hub` process per name, of one group on
// the NATS cluster at urls (cluster.nats), with the given lease TTL and
// events call buttons.
func startHubsOnNATS(t *testing.T, bin string, urls []string, names []string, ttl time.Duration, events int) []*clusterHub {
	t.Helper()
	var hubs []*clusterHub
	for _, name := range names {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o750)
		h := &clusterHub{name: name, http: testenv.FreeAddr(t), mqtt: testenv.FreeAddr(t)}
		h.cfg = writeManyButtonsConfig(t, dir, filepath.Join(dir, "data"), h.http, h.mqtt, events)
		f, err := os.OpenFile(h.cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "cluster:\n  node: %s\n  lease_ttl: %s\n  nats:\n    urls: [%s, %s, %s]\n", name, ttl, urls[0], urls[1], urls[2])
		f.Close()
		h.start(t, bin)
		hubs = append(hubs, h)
	}
	return hubs
}

// TestIntegrationClusterStandbyStarting: the only standby is still
// starting when the active hub dies. Two `vaka hub` processes on a 3-node
// NATS cluster (so the starting hub is the only one that can take over),
// the shipped 5 s lease. First the standby is restarted and the active
// hub SIGKILLed 100 ms later, before the standby has even connected;
// then the new active hub is SIGKILLed and the other started 3 s after
// that kill (its lease already 3 s unrenewed). Asserted: each time an
// event is acknowledged by the starting hub within 10 s of the kill (the
// issue's goal; CI saw 10.4 s when the standby timed the lease from its
// first look), in the second case within the TTL after the hub's start
// (before this change it waited a TTL after its first look), and every
// acknowledged event raised exactly one alarm, on the hub and in the
// replicated journal.
func TestIntegrationClusterStandbyStarting(t *testing.T) {
	bin := buildVaka(t)
	_, urls := clusterNATS(t) // cluster_test.go
	const ttl = 5 * time.Second
	const goal = 10 * time.Second
	const events = 11 // 3 + 1 + 3 + 1 + 3
	hubs := startHubsOnNATS(t, bin, urls, []string{"hub-a", "hub-b"}, ttl, events)
	a := activeHub(t, hubs, 90*time.Second)
	b := hubs[0]
	if b == a {
		b = hubs[1]
	}
	dump := func() { dumpLogs(t, hubs) }
	p := &failoverPublisher{t: t, addrs: []string{hubs[0].mqtt, hubs[1].mqtt}}
	defer func() {
		if p.c != nil {
			p.c.Disconnect(50)
		}
	}()
	send := func() time.Time { return p.sendNext(hubs) }
	for range 3 {
		send()
	}
	// The standby waiting first, so its restart is a restart.
	for deadline := time.Now().Add(60 * time.Second); !standbysWaiting(hubs, a); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			dump()
			t.Fatalf("%s not waiting as a standby within 60 s", b.name)
		}
	}

	// 1. The standby restarted, the active hub killed 100 ms later.
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.cmd.Wait()
	b.start(t, bin)
	time.Sleep(100 * time.Millisecond)
	killed := time.Now()
	a.cmd.Process.Signal(syscall.SIGKILL)
	acked := send()
	if p.on != b.mqtt {
		t.Fatalf("event acknowledged on %s, not on the starting standby %s", p.on, b.mqtt)
	}
	d1 := acked.Sub(killed)
	t.Logf("standby restarted 100 ms before the kill: %s acknowledged %s after the kill", b.name, d1.Round(time.Millisecond))
	logTakeover(t, hubs, b.mqtt)
	if d1 > goal {
		logSince(t, b, killed)
		t.Errorf("takeover by a standby still starting %s after the kill, over the %s goal", d1.Round(time.Millisecond), goal)
	}
	a.cmd.Wait()
	for range 3 {
		send()
	}

	// 2. The active hub killed, the other started 3 s later.
	killed = time.Now()
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.cmd.Wait()
	time.Sleep(time.Until(killed.Add(3 * time.Second)))
	started := time.Now()
	a.start(t, bin)
	acked = send()
	if p.on != a.mqtt {
		t.Fatalf("event acknowledged on %s, not on the hub started after the kill %s", p.on, a.mqtt)
	}
	d2, fromStart := acked.Sub(killed), acked.Sub(started)
	t.Logf("standby started 3 s after the kill: %s acknowledged %s after the kill, %s after its start", a.name,
		d2.Round(time.Millisecond), fromStart.Round(time.Millisecond))
	logTakeover(t, hubs, a.mqtt)
	if d2 > goal {
		t.Errorf("takeover by a standby started after the kill: %s after the kill, over the %s goal", d2.Round(time.Millisecond), goal)
	}
	if fromStart >= ttl {
		logSince(t, a, started)
		t.Errorf("a standby started 3 s after the kill took over %s after its start: a whole TTL (%s), the lease's age not counted", fromStart.Round(time.Millisecond), ttl)
	}
	for range 3 {
		send()
	}
	checkEachOnce(t, activeHub(t, hubs, 30*time.Second), p.acked, events, urls) // cluster_machine_test.go
}
