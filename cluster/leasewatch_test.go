package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// connectStream is connect with a stream (and so a lease bucket) of its
// own, so several cases share one NATS cluster.
func connectStream(t testing.TB, urls []string, node, stream string, ttl time.Duration) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Connect(ctx, Options{Node: node, URLs: urls, Replicas: 3, LeaseTTL: ttl, Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// deadHolder makes a hub take the lease, stops its renewal and closes its
// connection (its machine gone), and returns the server's stamp of its
// last renewal.
func deadHolder(t *testing.T, urls []string, stream string, ttl time.Duration) time.Time {
	t.Helper()
	a := connectStream(t, urls, "hub-a", stream, ttl)
	la := acquire(t, a, 30*time.Second)
	close(la.stop)
	<-la.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := a.kv.Get(ctx, leaseKey)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	return e.Created()
}

// TestIntegrationLeaseDatedByServer: a lease last renewed X ago by a hub
// that is gone is taken by a standby started now about TTL-X later (the
// renewal dated by the NATS server's stamps), not a whole TTL after the
// standby's first look; never before the lease has really gone a TTL
// unrenewed, and never before one renewal period of watching (a live
// holder would have renewed by then). Real 3-node NATS; the servers'
// clock is this machine's, so "really" is measurable here.
func TestIntegrationLeaseDatedByServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	for i, c := range []struct{ ttl, age time.Duration }{
		{4 * time.Second, 1500 * time.Millisecond}, // TTL-X decides: 2.5 s
		{5 * time.Second, 4 * time.Second},         // the renewal period decides: 1.92 s, not 1 s
	} {
		stream := fmt.Sprintf("DATED%d", i)
		renewed := deadHolder(t, urls, stream, c.ttl)
		time.Sleep(time.Until(renewed.Add(c.age)))
		start := time.Now()
		b := connectStream(t, urls, "hub-b", stream, c.ttl)
		b.WatchLease()
		lb := acquire(t, b, 3*c.ttl)
		took := time.Now()
		lb.Release()
		v := b.leaseWatcher().view
		want := max(c.ttl-c.age, c.ttl/3+renewalSlack)
		t.Logf("TTL %s, renewed %s before the standby started: taken %s after its start (want about %s), %s after the renewal; dated %v",
			c.ttl, c.age, took.Sub(start).Round(time.Millisecond), want, took.Sub(renewed).Round(time.Millisecond), v.dated)
		if !v.dated {
			t.Errorf("TTL %s: the lease was not dated by the server's clock", c.ttl)
		}
		if took.Sub(renewed) < c.ttl-5*time.Millisecond {
			t.Errorf("TTL %s: taken %s after the last renewal, before its TTL", c.ttl, took.Sub(renewed))
		}
		if took.Sub(start) > want+750*time.Millisecond {
			t.Errorf("TTL %s: taken %s after the standby started, want within %s", c.ttl, took.Sub(start), want+750*time.Millisecond)
		}
	}
}

// TestIntegrationLeaseLiveHolderKept: standbys started one after another
// while the active hub renews never depose it, also when the server
// that stamps a standby's clock write is made to run 3 s ahead of the
// one that stamped the lease (a skew one write cannot show: the dated
// age is then 3 s too old, and only watching a renewal period keeps the
// holder).
func TestIntegrationLeaseLiveHolderKept(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	const ttl = 3 * time.Second
	a := connectStream(t, urls, "hub-a", "LIVE", ttl)
	la := acquire(t, a, 30*time.Second)
	defer la.Release()
	for round := range 4 {
		b := connectStream(t, urls, fmt.Sprintf("hub-b%d", round), "LIVE", ttl)
		skewed := round%2 == 1
		if skewed {
			b.probeHook = func(p *clockProbe) { p.stamp = p.stamp.Add(3 * time.Second) }
		}
		b.WatchLease()
		ctx, cancel := context.WithTimeout(context.Background(), 2*ttl)
		_, err := b.Acquire(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("round %d (skewed %v): a starting standby took a lease being renewed: %v", round, skewed, err)
		}
		select {
		case <-la.Lost():
			t.Fatalf("round %d: the active hub lost its lease", round)
		default:
		}
		b.Close()
	}
}

// TestIntegrationLeaseUndatedFallback: when the clock write does not
// bound the server's offset (its stamp older than the lease's, as with
// two NATS servers whose clocks disagree; or its round trip too long), a
// standby counts the TTL from its first look, as before: a lease renewed
// 1.5 s before it started is taken no earlier than a TTL after it began
// watching.
func TestIntegrationLeaseUndatedFallback(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	const ttl = 3 * time.Second
	for i, c := range []struct {
		name string
		hook func(*clockProbe)
	}{
		{"write stamped 10 s before the lease", func(p *clockProbe) { p.stamp = p.stamp.Add(-10 * time.Second) }},
		{"round trip beyond the bound", func(p *clockProbe) { p.recvd = p.sent.Add(maxProbeRTT + time.Second) }},
	} {
		stream := fmt.Sprintf("UNDATED%d", i)
		renewed := deadHolder(t, urls, stream, ttl)
		time.Sleep(time.Until(renewed.Add(1500 * time.Millisecond)))
		b := connectStream(t, urls, "hub-b", stream, ttl)
		b.probeHook = c.hook
		watching := time.Now()
		b.WatchLease()
		lb := acquire(t, b, 3*ttl)
		took := time.Since(watching)
		lb.Release()
		v := b.leaseWatcher().view
		t.Logf("%s: taken %s after the standby began watching; dated %v", c.name, took.Round(time.Millisecond), v.dated)
		if v.dated {
			t.Errorf("%s: the lease was dated", c.name)
		}
		if took < ttl {
			t.Errorf("%s: taken %s after the standby began watching, before a TTL of its own", c.name, took)
		}
	}
}
