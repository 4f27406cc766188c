package cluster

import (
	"testing"
	"time"
)

// TestEmbeddedRaftTiming: a started embedded node runs with the short
// Raft timers (raft_timing.go), read back from nats-server's own
// variables: without them a lost leader's successor is elected after
// 4–9 s instead of 1.5–3 s. The failover figures behind this are from
// TestIntegrationClusterKillAfterTakeover and the partition tests
// (cmd/vaka).
func TestEmbeddedRaftTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS nodes")
	}
	startNATS(t)
	hb, lo, hi := natsHBInterval, natsMinElectionTimeout, natsMaxElectionTimeout
	if hb != 250*time.Millisecond || lo != 1500*time.Millisecond || hi != 3*time.Second {
		t.Fatalf("nats-server runs heartbeats every %s, elections after %s–%s; want 250ms, 1.5s–3s", hb, lo, hi)
	}
	if lo < 4*hb {
		t.Errorf("election timeout %s under four heartbeats (%s): spurious elections", lo, hb)
	}
}
