package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const leaseKey = "active"

// leaseValue is what the lease key holds: who is active, for people and
// logs (the revision is what counts).
type leaseValue struct {
	Node string    `json:"node"`
	At   time.Time `json:"at"`
}

// Lease is this hub's hold on the group's lead.
type Lease struct {
	n    *Node
	Term uint64 // the lease's revision when taken: grows with every new holder

	mu       sync.Mutex
	rev      uint64
	lost     chan struct{}
	opened   chan struct{} // closed when OpenJournal has appended the term record
	openOnce sync.Once
	lostOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// Acquire waits until this hub holds the lease and returns it. A lease
// whose revision has run out (leaseView: its TTL counted from when the
// revision was written, dated conservatively, or else from this hub's
// first look at it) is taken over by compare-and-set on that revision: of
// several standbys one wins, and a holder that renewed meanwhile makes
// the set fail. A lease the holder released (Lease.Release) is taken at
// once. While it waits the hub opens no listener: it is a standby.
// Acquire goes on from what WatchLease saw since Connect.
func (n *Node) Acquire(ctx context.Context) (*Lease, error) {
	n.acquireMu.Lock()
	defer n.acquireMu.Unlock()
	v := n.leaseWatcher().halt()
	val, _ := json.Marshal(leaseValue{Node: n.opts.Node})
	poll, try := n.leasePoll()
	for {
		// Once the lease has run out the hub tries faster still: the
		// lease bucket may be between Raft leaders (its leader lost with
		// the old active hub's machine), and each try to a leaderless
		// stream waits its whole timeout; the new leader answers the next
		// one at once.
		wait, tryNow := poll, try
		if v.runOut(time.Now()) {
			wait, tryNow = min(poll, 100*time.Millisecond), min(try, 500*time.Millisecond)
		}
		c, cancel := context.WithTimeout(ctx, tryNow)
		e, err := n.look(c, v)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			rev, cerr := n.kv.Create(c, leaseKey, val)
			if cerr == nil {
				cancel()
				return n.newLease(rev), nil
			}
		case err == nil && v.runOut(time.Now()):
			rev, uerr := n.kv.Update(c, leaseKey, val, e.Revision())
			if uerr == nil {
				cancel()
				n.log.Warn("cluster: the active hub's lease ran out; taking over", "was", v.node, "node", n.opts.Node,
					"unrenewed_for", time.Since(v.renewedBy).Round(time.Millisecond), "dated_by_server", v.dated)
				return n.newLease(rev), nil
			}
		}
		cancel()
		// A lease about to run out is tried the moment it does, not up
		// to a poll later.
		if until := time.Until(v.takeAt); v.rev != 0 && until > 0 && until < wait {
			wait = until
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// leasePoll is how often a standby looks at the lease, and how long one
// look may take. Short tries: a read answered by a replica that is cut
// off (its route not yet closed) is lost, and a try waiting seconds for
// it would delay the takeover by as much.
func (n *Node) leasePoll() (poll, try time.Duration) {
	ttl := n.opts.LeaseTTL
	return min(max(ttl/10, 50*time.Millisecond), time.Second), min(2*time.Second, max(ttl/4, 250*time.Millisecond))
}

func (n *Node) newLease(rev uint64) *Lease {
	l := &Lease{n: n, Term: rev, rev: rev, lost: make(chan struct{}), opened: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew()
	if n.opts.AvoidLeader != "" {
		go n.keepLeadersAway(l, n.opts.AvoidLeader)
	}
	return l
}

// renew updates the lease every TTL/3 by compare-and-set. Another
// holder's revision, or no successful renewal for the TTL (the cluster
// unreachable or without quorum), means the lease is lost.
func (l *Lease) renew() {
	defer close(l.done)
	ttl := l.n.opts.LeaseTTL
	every := ttl / 3
	ok := time.Now()
	val, _ := json.Marshal(leaseValue{Node: l.n.opts.Node})
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		sent := time.Now()
		c, cancel := context.WithTimeout(context.Background(), every)
		l.mu.Lock()
		rev, err := l.n.kv.Update(c, leaseKey, val, l.rev)
		if err == nil {
			l.rev = rev
		}
		l.mu.Unlock()
		cancel()
		switch {
		case err == nil:
			ok = sent
		case isWrongLastSeq(err), errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			l.n.log.Error("cluster: another hub took the lease", "node", l.n.opts.Node, "err", err)
			l.markLost()
			return
		case time.Since(ok) > ttl:
			l.n.log.Error("cluster: lease not renewed within its TTL; giving up the lead", "node", l.n.opts.Node, "err", err)
			l.markLost()
			return
		default:
			l.n.log.Warn("cluster: lease renewal failed; retrying", "err", err)
		}
	}
}

// journalOpened tells the leader placement that the journal is open.
func (l *Lease) journalOpened() { l.openOnce.Do(func() { close(l.opened) }) }

func (l *Lease) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// Lost is closed when the lease is lost: the hub must stop at once.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release stops renewing and deletes the lease (if still ours), so a
// standby takes over at once instead of after the TTL.
func (l *Lease) Release() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	select {
	case <-l.lost:
		return
	default:
	}
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if err := l.n.kv.Delete(c, leaseKey, jetstream.LastRevision(rev)); err != nil {
		l.n.log.Warn("cluster: lease not released; a standby takes over after its TTL", "err", err)
	}
	l.markLost()
}
