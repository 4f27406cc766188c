//go:build linux && !nocluster

package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// leadersOnto asks the journal stream's and the lease bucket's leaders to
// step down in favour of NATS server to until both are there (bounded),
// and reports whether they are.
func leadersOnto(t *testing.T, urls []string, to string) bool {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Timeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := []byte(`{"placement":{"preferred":"` + to + `"}}`)
	for try := 0; try < 30; try++ {
		gs := readGroupState(urls)
		if gs.journal == to && gs.lease == to {
			return true
		}
		for _, st := range []string{"VAKA_JOURNAL", "KV_VAKA_JOURNAL_LEASE"} {
			if (st == "VAKA_JOURNAL" && gs.journal != to) || (st != "VAKA_JOURNAL" && gs.lease != to) {
				nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+st, req, time.Second)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestIntegrationClusterKillAfterTakeover: the failover that needs a Raft
// election. Three `vaka hub` processes, each with its embedded NATS node
// (a machine each), the shipped 5 s lease (VAKA_CLUSTER_LEASE_TTL to
// change it). Each round: the active hub's machine is SIGKILLed and comes
// back at once (its hub a standby again); as soon as another hub has
// taken over, the journal stream's and the lease bucket's Raft leaders
// are put on the new active hub's own node, as they are in the moments
// right after a takeover before the hub has moved them away (or when no
// other replica is current), and its machine is SIGKILLed as well. The
// remaining machines must elect new leaders before anyone can take the
// lease or append. Asserted: every kill is followed by a takeover, kill
// to the next acknowledged event within 10 s (the goal) each
// time, every acknowledged event raised exactly one alarm on the hub
// active at the end and in the replicated journal, terms never go back.
// Rounds: VAKA_CLUSTER_KILLS (default 2; two kills each).
func TestIntegrationClusterKillAfterTakeover(t *testing.T) {
	bin := buildVaka(t)
	rounds := 2
	if v, err := strconv.Atoi(os.Getenv("VAKA_CLUSTER_KILLS")); err == nil && v > 0 && v <= 20 {
		rounds = v
	}
	ttl := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("VAKA_CLUSTER_LEASE_TTL")); err == nil && v >= time.Second && v <= time.Minute {
		ttl = v
	}
	const goal = 10 * time.Second
	const perRound = 3
	events := (rounds+1)*perRound + 2*rounds
	hubs, urls := startEmbeddedGroup(t, bin, ttl, events) // cluster_machine_test.go
	dump := func() { dumpLogs(t, hubs) }
	activeHub(t, hubs, 90*time.Second)
	p := &failoverPublisher{t: t, addrs: []string{hubs[0].mqtt, hubs[1].mqtt, hubs[2].mqtt}}
	defer func() {
		if p.c != nil {
			p.c.Disconnect(50)
		}
	}()
	send := func() time.Time { return p.sendNext(hubs) }
	hubOn := func(addr string) *clusterHub {
		for _, h := range hubs {
			if h.mqtt == addr {
				return h
			}
		}
		return nil
	}
	var plain, elected []time.Duration
	kill := func(victim *clusterHub, what string) time.Duration {
		t.Helper()
		at := time.Now()
		victim.cmd.Process.Signal(syscall.SIGKILL)
		acked := send()
		d := acked.Sub(at)
		heir := hubOn(p.on)
		if heir == victim {
			t.Fatalf("the killed hub %s acknowledged", victim.name)
		}
		t.Logf("%s: %s and its NATS node SIGKILLed; event %d acknowledged by %s after %s", what, victim.name, p.next-1, heir.name, d.Round(time.Millisecond))
		if d > ttl+1500*time.Millisecond { // where a slow one spent its time
			logSince(t, heir, at)
		}
		if d > goal {
			t.Errorf("%s: takeover after %s, over the %s goal", what, d.Round(time.Millisecond), goal)
		}
		victim.cmd.Wait()
		victim.start(t, bin) // the machine back: its node rejoins, the hub waits as a standby
		return d
	}
	for r := 0; r <= rounds; r++ {
		for range perRound {
			send()
		}
		if r == rounds {
			break
		}
		first := activeHub(t, hubs, 60*time.Second)
		// Steady first: every replica current, the leaders off the
		// active hub's node, both standbys waiting.
		waitSteady(t, hubs, first, urls, fmt.Sprintf("round %d", r+1)) // cluster_machine_test.go
		plain = append(plain, kill(first, fmt.Sprintf("round %d, first kill", r+1)))
		heir := hubOn(p.on)
		// The first victim's node must be back for a quorum of two
		// after the second kill; it may still be catching up.
		for deadline := time.Now().Add(30 * time.Second); !standbysWaiting(hubs, heir); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				dump()
				t.Fatalf("round %d: %s not back as a standby within 30 s", r+1, first.name)
			}
		}
		// The leaders on the new active hub's node, as right after its
		// takeover: its own placement moves them off within a second, so
		// the kill follows at once.
		if !leadersOnto(t, urls, heir.name) {
			t.Fatalf("round %d: could not put both leaders on %s", r+1, heir.name)
		}
		elected = append(elected, kill(heir, fmt.Sprintf("round %d, right after the takeover, leaders on the victim", r+1)))
	}
	checkEachOnce(t, activeHub(t, hubs, 30*time.Second), p.acked, events, urls) // cluster_machine_test.go
	worst := func(ds []time.Duration) time.Duration { return slices.Max(ds).Round(time.Millisecond) }
	t.Logf("lease TTL %s, %d rounds: kill with the leaders elsewhere worst %s %v; kill right after a takeover with the leaders on the victim (an election) worst %s %v",
		ttl, rounds, worst(plain), plain, worst(elected), elected)
}
