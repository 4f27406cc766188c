package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Why leaders are kept off the active hub's own NATS node: when a machine
// running both the active hub and a NATS node is lost, the group must
// wait for the lease to run out anyway, but if that node also led the
// journal stream or the lease bucket, JetStream must first elect new Raft
// leaders for them (its election timeouts are 4–9 s and cannot be set
// from outside), and the new hub can neither take the lease nor append its
// term record until then: 1.9–18 s were measured. With both leaders on
// another machine, losing the active hub's machine costs only the lease
// TTL and the takeover itself.
//
// So the active hub checks, every placementEvery, which NATS server leads
// the two streams and, when it is the hub's own (Options.AvoidLeader),
// asks that leader to step down in favour of a replica that is current:
// JetStream then hands the lead over directly (no election timeout), in
// milliseconds. Leaders move on their own (a restarted node, an
// election after a lost node), hence the repeated check.

// placementEvery is how often the active hub checks where the leaders are.
const placementEvery = time.Second

// stepdownRequest is JetStream's leader stepdown request with a preferred
// placement (accepted since nats-server 2.11).
type stepdownRequest struct {
	Placement *stepdownPlacement `json:"placement,omitempty"`
}

type stepdownPlacement struct {
	Preferred string `json:"preferred"`
}

type stepdownResponse struct {
	Success bool `json:"success"`
	Error   *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// leaseStream is the stream behind the lease bucket.
func (o *Options) leaseStream() string { return "KV_" + o.Stream + "_LEASE" }

// sessionsBucket is the staff sessions' key-value bucket (sessions.go),
// and sessionsStream its stream. Its leader is kept off the active hub's
// node too: a takeover reads the bucket before the staff app and SCAIP
// open, and an election there would hold both for seconds.
func (o *Options) sessionsBucket() string { return o.Stream + "_SESSIONS" }
func (o *Options) sessionsStream() string { return "KV_" + o.sessionsBucket() }

// LeaderMove is one leader moved off the avoided node.
type LeaderMove struct {
	Stream   string
	From, To string
}

// moveLeadersAway checks the streams (the journal's, the lease bucket's) once and
// moves a leader that is on avoid to a current replica. It returns the
// moves asked for; an error only when a check could not be made.
func (n *Node) moveLeadersAway(ctx context.Context, avoid string, streams []string) ([]LeaderMove, error) {
	var moves []LeaderMove
	var errs []error
	for _, name := range streams {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		mv, err := n.moveLeaderAway(c, name, avoid)
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
		if mv != nil {
			moves = append(moves, *mv)
		}
	}
	return moves, errors.Join(errs...)
}

func (n *Node) moveLeaderAway(ctx context.Context, stream, avoid string) (*LeaderMove, error) {
	st, err := n.js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && stream == n.opts.sessionsStream() {
		return nil, nil // a group without staff sessions in it (not opened yet)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: where is %s's leader: %w", stream, err)
	}
	info := st.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader != avoid {
		return nil, nil
	}
	// The most current replica that is online; none means the lead stays
	// here for now (handing it to a replica that is behind would leave
	// the stream without a leader while it catches up).
	var to string
	var lag uint64
	for _, p := range info.Cluster.Replicas {
		// Active is how long since the leader last heard from p: a replica
		// silent for 2 s (Raft heartbeats come every second) may be on a
		// machine just cut off, which the leader still calls current.
		if p == nil || p.Offline || !p.Current || p.Pending || p.Active > 2*time.Second || p.Name == avoid {
			continue
		}
		if to == "" || p.Lag < lag {
			to, lag = p.Name, p.Lag
		}
	}
	if to == "" {
		return nil, fmt.Errorf("cluster: %s is led by this hub's own NATS node %s and no other replica is current", stream, avoid)
	}
	req, _ := json.Marshal(stepdownRequest{Placement: &stepdownPlacement{Preferred: to}})
	msg, err := n.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s leader stepdown: %w", stream, err)
	}
	var resp stepdownResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("cluster: %s leader stepdown answer: %w", stream, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("cluster: %s leader stepdown to %s refused: %s (%d)", stream, to, resp.Error.Description, resp.Error.ErrCode)
	}
	return &LeaderMove{Stream: stream, From: avoid, To: to}, nil
}

// keepLeadersAway moves the leaders off avoid while l is held: the lease
// bucket's at once (the renewal retries through the hand-over), the
// journal stream's once the journal is open (a term record sent while its
// stream changes leader could wait out its whole timeout), then both
// every placementEvery.
func (n *Node) keepLeadersAway(l *Lease, avoid string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stop:
		case <-l.lost:
		}
		cancel()
	}()
	var lastLog time.Time
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = placementEvery
		streams := []string{n.opts.leaseStream()}
		select {
		case <-l.opened:
			streams = append(streams, n.opts.Stream, n.opts.sessionsStream())
		default:
		}
		moves, err := n.moveLeadersAway(ctx, avoid, streams)
		for _, m := range moves {
			n.log.Info("cluster: moved a leader off this hub's own NATS node, so losing this machine costs no Raft election",
				"stream", m.Stream, "from", m.From, "to", m.To)
		}
		if err != nil && ctx.Err() == nil && time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			n.log.Warn("cluster: could not check or move the stream leaders off this hub's NATS node", "err", err)
		}
		if len(streams) == 1 {
			// Until the journal is open, look again soon.
			wait = 50 * time.Millisecond
			select {
			case <-l.opened:
				wait = 0
			default:
			}
		}
	}
}
