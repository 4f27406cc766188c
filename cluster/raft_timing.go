package cluster

import (
	"sync"
	"time"
	_ "unsafe" // go:linkname, below

	_ "github.com/nats-io/nats-server/v2/server" // the variables linked below live there
)

// Why the embedded NATS nodes run shorter Raft timers than nats-server's
// defaults: when the machine holding a stream's Raft leader is lost, the
// other replicas notice only when a randomized election timeout (4–9 s by
// default, heartbeats every second) runs out without a heartbeat, and
// only then elect a new leader. The journal stream and the lease bucket
// cannot take an append, and a standby cannot take the lease, until then.
// The active hub keeps those leaders off its own machine (placement.go),
// but not in the moments right after a takeover (before it has moved
// them) nor when no other replica is current: a failover then took 5.3
// to 8.1 s in the partition test, and up to 9 s plus the takeover could
// pass the 10 s goal.
//
// nats-server exposes these timers to its own tests only (package
// variables, not options), so an embedded node sets them (linkname
// directives below) before its first server starts: heartbeats every 250 ms and
// elections after 1.5–3 s without one (nats-server's own test suite uses
// 1.5–3.5 s with 50 ms heartbeats). The election then fits inside the
// lease TTL (5 s by default) instead of adding to it. It applies to every
// Raft group of the process (meta, streams, key-value buckets), and all
// nodes of a group run the same binary, so leaders and followers agree.
// An external NATS cluster (cluster.nats) keeps nats-server's defaults:
// see docs/scale-out.md. Building against a nats-server release that
// renames these variables fails at link time, not silently.
const (
	raftHeartbeat   = 250 * time.Millisecond
	raftMinElection = 1500 * time.Millisecond
	raftMaxElection = 3 * time.Second
)

//go:linkname natsHBInterval github.com/nats-io/nats-server/v2/server.hbInterval
var natsHBInterval time.Duration

//go:linkname natsMinElectionTimeout github.com/nats-io/nats-server/v2/server.minElectionTimeout
var natsMinElectionTimeout time.Duration

//go:linkname natsMaxElectionTimeout github.com/nats-io/nats-server/v2/server.maxElectionTimeout
var natsMaxElectionTimeout time.Duration

var raftTimingOnce sync.Once

// setRaftTiming shortens the embedded nodes' Raft timers, once, before
// the first node starts (the timers are read by the nodes' goroutines, so
// they are never changed while one runs). It reports the timers in use.
func setRaftTiming() (hb, minElect, maxElect time.Duration) {
	raftTimingOnce.Do(func() {
		natsHBInterval = raftHeartbeat
		natsMinElectionTimeout = raftMinElection
		natsMaxElectionTimeout = raftMaxElection
	})
	return natsHBInterval, natsMinElectionTimeout, natsMaxElectionTimeout
}
