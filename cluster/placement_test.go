package cluster

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// leaderOf returns the NATS server leading stream ("" while none does).
func leaderOf(t *testing.T, n *Node, stream string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := n.js.Stream(ctx, stream)
	if err != nil || st.CachedInfo().Cluster == nil {
		return ""
	}
	return st.CachedInfo().Cluster.Leader
}

// waitLeaders waits (bounded) until neither the journal stream nor the
// lease bucket is led by avoid, and returns their leaders.
func waitLeadersAway(t *testing.T, n *Node, avoid string, within time.Duration) (string, string) {
	t.Helper()
	var js, kv string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		js, kv = leaderOf(t, n, n.opts.Stream), leaderOf(t, n, n.opts.leaseStream())
		if js != "" && kv != "" && js != avoid && kv != avoid {
			return js, kv
		}
	}
	t.Fatalf("within %s: journal stream led by %q, lease bucket by %q; want neither on %s", within, js, kv, avoid)
	return "", ""
}

// TestIntegrationLeadersKeptAway: the active hub moves the journal
// stream's and the lease bucket's Raft leaders off the NATS node it names
// as its own (AvoidLeader), keeps them off when one is moved back, and
// once they are off, losing that node is no leader election at all: the
// leaders stay where they were and the next append is acknowledged.
func TestIntegrationLeadersKeptAway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	nodes, urls := startNATS(t)
	probe := connect(t, urls, "probe", 2*time.Second)
	// Avoid the node leading the journal stream now: without the move it
	// would stay there.
	var avoid string
	for deadline := time.Now().Add(30 * time.Second); avoid == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		avoid = leaderOf(t, probe, probe.opts.Stream)
	}
	if avoid == "" {
		t.Fatal("journal stream has no leader within 30 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := Connect(ctx, Options{Node: "hub-a", URLs: urls, Replicas: 3, LeaseTTL: 2 * time.Second,
		Stream: "VAKA_TEST", AvoidLeader: avoid})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	la := acquire(t, a, 30*time.Second)
	defer la.Release()
	j, _ := open(t, a, la) // the journal's leader is moved once it is open
	js, kv := waitLeadersAway(t, probe, avoid, 10*time.Second)
	t.Logf("avoiding %s: journal stream led by %s, lease bucket by %s", avoid, js, kv)

	// Move the journal's leader back onto the avoided node: the active
	// hub moves it off again.
	req, _ := json.Marshal(stepdownRequest{Placement: &stepdownPlacement{Preferred: avoid}})
	var back bool
	for try := 0; try < 20 && !back; try++ {
		msg, err := probe.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+probe.opts.Stream, req, 2*time.Second)
		if err == nil {
			var resp stepdownResponse
			back = json.Unmarshal(msg.Data, &resp) == nil && resp.Success
		}
		if !back {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !back {
		t.Fatal("could not move the journal stream's leader back to the avoided node")
	}
	js, kv = waitLeadersAway(t, probe, avoid, 10*time.Second)

	at := time.Date(2026, 12, 3, 2, 30, 0, 0, time.UTC)
	if err := j.Append(raise("A000001", at)); err != nil {
		t.Fatal(err)
	}
	// The avoided node's machine lost: the leaders are elsewhere, so
	// they stay; the next append needs no election.
	for i, e := range nodes {
		if e.srv.Name() == avoid {
			nodes[i].Close()
		}
	}
	t0 := time.Now()
	if err := j.Append(raise("A000002", at)); err != nil {
		t.Fatalf("append after losing the avoided node: %v", err)
	}
	t.Logf("append after losing %s acknowledged in %s", avoid, time.Since(t0).Round(time.Millisecond))
	if js2, kv2 := leaderOf(t, probe, probe.opts.Stream), leaderOf(t, probe, probe.opts.leaseStream()); js2 != js || kv2 != kv {
		t.Errorf("leaders changed after losing %s: journal %s → %s, lease %s → %s", avoid, js, js2, kv, kv2)
	}
}

// TestIntegrationSessionsLeaderKeptAway: the staff sessions' bucket is
// read at a takeover before the staff app and SCAIP open, so its leader
// is kept off the active hub's own node as the journal's and the lease's
// are: started on the avoided node, it is moved to another.
func TestIntegrationSessionsLeaderKeptAway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	probe := connect(t, urls, "probe", 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := probe.OpenSessions(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	var avoid string
	for deadline := time.Now().Add(30 * time.Second); avoid == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		avoid = leaderOf(t, probe, probe.opts.sessionsStream())
	}
	if avoid == "" {
		t.Fatal("sessions bucket has no leader within 30 s")
	}
	a, err := Connect(ctx, Options{Node: "hub-a", URLs: urls, Replicas: 3, LeaseTTL: 2 * time.Second,
		Stream: probe.opts.Stream, AvoidLeader: avoid})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	la := acquire(t, a, 30*time.Second)
	defer la.Release()
	open(t, a, la)
	var now string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if now = leaderOf(t, probe, probe.opts.sessionsStream()); now != "" && now != avoid {
			t.Logf("sessions bucket moved from %s to %s", avoid, now)
			return
		}
	}
	t.Fatalf("sessions bucket still led by %q within 10 s; want it off %s", now, avoid)
}
