package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// When a standby may try to take the lease
//
// The lease runs out when its revision has not changed for the TTL. A
// standby used to count the TTL from its own first look at a revision.
// That is safe whatever the clocks say, but a standby that was still
// starting when the active hub died (or was started after) then waited a
// whole TTL after its first look, on top of however long it had taken to
// get there: CI saw a takeover 10.4 s after a kill with a 5 s TTL.
//
// Two things fix that. WatchLease looks at the lease from right after
// Connect, beside everything else a standby does while starting (following
// the journal, reading the group's shared state), so the first look is as
// early as it can be. And the first revision a standby sees is dated by
// the NATS server's clock: JetStream stamps every message with the time
// its stream's leader stored it (KeyValueEntry.Created). The standby then
// writes a key of its own to the same bucket, noting its local time just
// before the write (sent) and just after the acknowledgement (recvd); that
// write is stamped S by the same kind of clock, at some moment between
// sent and recvd. The lease's renewal (stamped C) happened S-C before the
// stamp of our write, so in local time no later than recvd-(S-C). That
// is the latest the revision can have been written, so the TTL counted
// from it runs out no earlier than the true TTL would: a lease renewed 4 s
// ago by a dead hub is taken about 1 s later with a 5 s TTL rather than
// 5 s later. Only local differences of a monotonic clock and differences
// of server stamps are used, so the local machine's wall clock and its
// offset to the server may be anything: the offset is measured within the
// write's round trip, not assumed.
//
// The estimate is only as good as the server's stamps, so it is used
// conservatively:
//
//   - When the offset cannot be bounded, the standby falls back to its
//     first look: the write failed (no quorum; tried on the first three
//     looks), its round trip took over maxProbeRTT (the bucket between
//     leaders, or the machine overloaded), or the write's stamp is older
//     than the lease's (the two were stamped by different NATS servers
//     whose clocks disagree: a leader change in between).
//   - A dated revision is still watched for a renewal period (TTL/3) and
//     renewalSlack before a try: a live holder renews every TTL/3, so its
//     renewal lands in that window and the compare-and-set fails, even if
//     the server that stamped the lease ran seconds behind the one that
//     stamped our write (a skew no single write can show).
//
// Timing only decides when a standby tries. What makes two active hubs
// impossible is unchanged: the lease is taken by compare-and-set on the
// revision seen, and every journal append carries the expected last
// sequence, so a hub deposed while it still believes it is active has its
// next append refused (journal.go).
type leaseView struct {
	rev       uint64    // the revision seen last (0: none yet, or the key absent)
	node      string    // the hub that revision names
	seenAt    time.Time // when this hub first saw rev (local, monotonic)
	renewedBy time.Time // the latest local time rev can have been written
	takeAt    time.Time // when rev counts as run out
	dated     bool      // renewedBy comes from the server's stamps, not seenAt
	// datable: rev is the first revision this hub saw (only that one needs
	// dating; later ones are seen within a poll of being written), and
	// probes counts the writes tried for it.
	datable bool
	seenAny bool
	probes  int
	lastLog time.Time
}

// runOut reports whether the revision seen may be taken over at now.
func (v *leaseView) runOut(now time.Time) bool { return v.rev != 0 && !now.Before(v.takeAt) }

// maxProbeRTT bounds the round trip of the write that measures the offset
// to the server's clock: a longer one means the bucket is changing leader
// or the machine is overloaded, and the standby falls back to its first look.
const maxProbeRTT = 500 * time.Millisecond

// renewalSlack is how long past one renewal period a live holder's renewal
// may take to be written (a quorum round trip, with margin).
const renewalSlack = 250 * time.Millisecond

// maxProbes is how many looks try the clock write for the first revision.
const maxProbes = 3

// clockProbe is one measurement of the server's clock: the write's stamp
// and the local times around it.
type clockProbe struct {
	sent, recvd time.Time // local, monotonic
	stamp       time.Time // the server's, as stored with the write
}

// look reads the lease into v. A revision not seen before is dated (see
// leaseView); the key absent resets v. It returns the entry read.
func (n *Node) look(ctx context.Context, v *leaseView) (jetstream.KeyValueEntry, error) {
	e, err := n.kv.Get(ctx, leaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		v.rev, v.node, v.datable, v.dated = 0, "", false, false
		return nil, err
	case err != nil:
		if time.Since(v.lastLog) > 10*time.Second {
			v.lastLog = time.Now()
			n.log.Warn("cluster: lease not readable; the NATS cluster may have lost its quorum", "err", err)
		}
		return nil, err
	}
	if e.Revision() != v.rev {
		var lv leaseValue
		_ = json.Unmarshal(e.Value(), &lv)
		now := time.Now()
		v.rev, v.seenAt, v.renewedBy, v.takeAt, v.dated = e.Revision(), now, now, now.Add(n.opts.LeaseTTL), false
		v.datable, v.probes = !v.seenAny, 0
		v.seenAny = true
		if lv.Node != v.node {
			v.node = lv.Node
			n.log.Info("cluster: standby; another hub is active", "active", lv.Node, "node", n.opts.Node)
		}
	}
	if v.datable && !v.dated && v.probes < maxProbes {
		n.date(ctx, v, e)
	}
	return e, nil
}

// date moves v's run-out time earlier by the server's stamps, if they
// bound it (leaseView).
func (n *Node) date(ctx context.Context, v *leaseView, e jetstream.KeyValueEntry) {
	v.probes++
	p, err := n.probeClock(ctx)
	if err != nil {
		if v.probes == maxProbes {
			n.log.Info("cluster: lease age not measurable by the NATS server's clock; counting its TTL from this hub's first look", "err", err)
		}
		return
	}
	created := e.Created()
	var why string
	switch {
	case p.recvd.Sub(p.sent) > maxProbeRTT:
		why = fmt.Sprintf("the clock write's round trip took %s", p.recvd.Sub(p.sent).Round(time.Millisecond))
	case p.stamp.Before(created):
		why = "the clock write is stamped before the lease's renewal (NATS servers' clocks disagree)"
	}
	if why != "" {
		v.probes = maxProbes // a retry would measure the same
		n.log.Info("cluster: lease age not bounded by the NATS server's clock; counting its TTL from this hub's first look", "why", why)
		return
	}
	ttl := n.opts.LeaseTTL
	renewedBy := p.recvd.Add(-p.stamp.Sub(created))
	if renewedBy.After(v.seenAt) { // cannot be, but seenAt is a bound too
		renewedBy = v.seenAt
	}
	v.renewedBy, v.dated = renewedBy, true
	v.takeAt = renewedBy.Add(ttl)
	if guard := v.seenAt.Add(ttl/3 + renewalSlack); v.takeAt.Before(guard) {
		v.takeAt = guard
	}
	n.log.Info("cluster: lease age measured by the NATS server's clock", "unrenewed_for", time.Since(renewedBy).Round(time.Millisecond),
		"run_out_in", max(0, time.Until(v.takeAt)).Round(time.Millisecond), "probe_rtt", p.recvd.Sub(p.sent).Round(time.Millisecond))
}

// probeClock writes this hub's clock key in the lease bucket and reads
// back the server's stamp of that write.
func (n *Node) probeClock(ctx context.Context) (clockProbe, error) {
	key := "clock." + base64.RawURLEncoding.EncodeToString([]byte(n.opts.Node))
	var p clockProbe
	p.sent = time.Now()
	rev, err := n.kv.Put(ctx, key, []byte(p.sent.UTC().Format(time.RFC3339Nano)))
	p.recvd = time.Now()
	if err != nil {
		return p, fmt.Errorf("cluster: clock write: %w", err)
	}
	// A direct get may reach a replica that has not applied the write
	// yet: a few tries.
	var e jetstream.KeyValueEntry
	for try := 0; try < 3; try++ {
		if e, err = n.kv.GetRevision(ctx, key, rev); err == nil {
			break
		}
	}
	if err != nil {
		return p, fmt.Errorf("cluster: clock read: %w", err)
	}
	p.stamp = e.Created()
	if n.probeHook != nil {
		n.probeHook(&p)
	}
	return p, nil
}

// leaseWatch looks at the lease from WatchLease until Acquire takes over
// what it saw.
type leaseWatch struct {
	view    leaseView
	mu      sync.Mutex
	halted  bool
	started bool
	stop    chan struct{}
	done    chan struct{}
}

func (n *Node) leaseWatcher() *leaseWatch {
	n.watchOnce.Do(func() { n.watch = &leaseWatch{stop: make(chan struct{}), done: make(chan struct{})} })
	return n.watch
}

// WatchLease starts looking at the lease now, in the background, so that
// Acquire, called once the standby has started everything else, times the
// lease from this moment and not from its own first look (leaseView). A
// hub calls it right after Connect. Calling it again, or after Acquire,
// does nothing.
func (n *Node) WatchLease() {
	w := n.leaseWatcher()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.halted || w.started {
		return // running, or Acquire has the view
	}
	w.started = true
	stopped, cancelAll := context.WithCancel(context.Background())
	go func() {
		<-w.stop
		cancelAll()
	}()
	go func() {
		defer close(w.done)
		poll, try := n.leasePoll()
		for {
			c, cancel := context.WithTimeout(stopped, try)
			n.look(c, &w.view)
			cancel()
			select {
			case <-w.stop:
				return
			case <-time.After(poll):
			}
		}
	}()
}

// halt stops the background look (if any) and returns the view, now
// owned by the caller (Acquire, under acquireMu).
func (w *leaseWatch) halt() *leaseView {
	w.mu.Lock()
	if !w.halted {
		w.halted = true
		close(w.stop)
	}
	started := w.started
	w.mu.Unlock()
	if started {
		<-w.done
	}
	return &w.view
}
