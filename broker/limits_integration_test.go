package broker

import (
	"bufio"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A CONNECT claiming 100 MB is refused from its fixed header: before the
// guard, mochi allocated the whole claimed length for each such connection
// and held it while the attacker trickled bytes (8 of them: 1.17 GB).
func TestIntegrationOversizeConnectRefusedBeforeAllocation(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, _ := limitBroker(t, &countingHandler{}, Limits{}, map[string]string{"s/g": "pw"})
	const attackers = 8
	before := heapInuse()
	conns := make([]net.Conn, attackers)
	for i := range conns {
		c, err := net.Dial("tcp", b.Addr("tcp"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// CONNECT, remaining length 100,000,000 (varint 0x80 0xc2 0xd7 0x2f).
		if _, err := c.Write([]byte{0x10, 0x80, 0xc2, 0xd7, 0x2f}); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	// Trickle a few body bytes, as the attack does, while the broker would
	// be holding the claimed buffers.
	for range 5 {
		for _, c := range conns {
			_, _ = c.Write([]byte("MQTT"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	grew := int64(heapInuse()) - int64(before)
	t.Logf("heap in use grew by %d KiB under %d CONNECTs claiming 100 MB", grew/1024, attackers)
	if grew > 8<<20 {
		t.Errorf("heap grew by %d MiB: the claimed length was allocated", grew>>20)
	}
	for i, c := range conns {
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("attacker %d still connected", i)
		}
	}
	eventually(t, 5*time.Second, "8 refusals counted", func() bool { return refusedCount(b, reasonTooLarge) == attackers })
	// A real gateway still logs in.
	if _, rc := rawLogin(t, b, "gw", "s/g", "pw"); rc != 0 {
		t.Fatalf("gateway refused: %d", rc)
	}
}

// After login, a packet over MaxPacketSize is refused by mochi from its
// header (no allocation) and counted.
func TestIntegrationOversizePacketAfterLoginCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, _ := limitBroker(t, &countingHandler{}, Limits{MaxPacketSize: 32 << 10}, map[string]string{"s/g": "pw"})
	cl, rc := rawLogin(t, b, "gw", "s/g", "pw")
	if rc != 0 {
		t.Fatalf("refused: %d", rc)
	}
	if _, err := cl.c.Write([]byte{0x32, 0x80, 0xc2, 0xd7, 0x2f}); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(cl.c, 5*time.Second) {
		t.Fatal("client sending a 100 MB PUBLISH still connected")
	}
	eventually(t, 5*time.Second, "refusal counted", func() bool { return refusedCount(b, reasonTooLarge) == 1 })
}

// Connections that never send CONNECT are closed after ConnectTimeout and
// counted; their slots are released.
func TestIntegrationIdleConnectionsClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, _ := limitBroker(t, &countingHandler{}, Limits{ConnectTimeout: 300 * time.Millisecond,
		MaxConnections: 1000, MaxConnectionsPerAddress: 1000}, nil)
	const n = 200
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", b.Addr("tcp"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	var open atomic.Int64
	for _, c := range conns {
		wg.Go(func() {
			if !closedWithin(c, 15*time.Second) {
				open.Add(1)
			}
		})
	}
	wg.Wait()
	if open.Load() > 0 {
		t.Fatalf("%d of %d silent connections still open after 15 s", open.Load(), n)
	}
	eventually(t, 5*time.Second, "every timeout counted", func() bool { return refusedCount(b, reasonConnectTimeout) == n })
	eventually(t, 5*time.Second, "slots released", func() bool { return b.gate.open() == 0 })
}

// The CONNECT deadline does not cut a client that logged in: a gateway
// with keepalive 60 s stays connected past it.
func TestIntegrationConnectDeadlineEndsAtConnect(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, _ := limitBroker(t, &countingHandler{}, Limits{ConnectTimeout: 200 * time.Millisecond}, map[string]string{"s/g": "pw"})
	cl, rc := rawLogin(t, b, "gw", "s/g", "pw")
	if rc != 0 {
		t.Fatalf("refused: %d", rc)
	}
	if closedWithin(cl.c, time.Second) {
		t.Fatal("a logged-in gateway was closed by the CONNECT deadline")
	}
}

// Connections over the per-address limit are refused at accept and
// counted; a freed slot can be used again. The total limit likewise.
func TestIntegrationConnectionsPerAddressLimited(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, _ := limitBroker(t, &countingHandler{}, Limits{MaxConnections: 10, MaxConnectionsPerAddress: 3},
		map[string]string{"s/g": "pw"})
	var held []*rawClient
	for i := range 3 {
		cl, rc := rawLogin(t, b, "gw"+string(rune('a'+i)), "s/g", "pw")
		if rc != 0 {
			t.Fatalf("login %d refused: %d", i, rc)
		}
		held = append(held, cl)
	}
	extra, err := net.Dial("tcp", b.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedWithin(extra, 5*time.Second) {
		t.Fatal("a 4th connection from one address was kept")
	}
	if got := refusedCount(b, reasonTooMany); got != 1 {
		t.Fatalf("too_many_connections = %d, want 1", got)
	}
	held[0].c.Close()
	eventually(t, 5*time.Second, "slot released", func() bool { return b.gate.open() == 2 })
	if _, rc := rawLogin(t, b, "gwz", "s/g", "pw"); rc != 0 {
		t.Fatalf("login after a slot was freed refused: %d", rc)
	}
}

// A different login presenting a gateway's client id is refused: the
// gateway stays connected, still gets its replies, and the collision is
// counted and logged with both identities. The gateway itself reconnecting
// with its id still takes its old session over.
func TestIntegrationClientIDBoundToLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, logs := limitBroker(t, &replyHandler{}, Limits{},
		map[string]string{"s/a": "pa", "s/b": "pb"})
	a, rc := rawLogin(t, b, "gw-a", "s/a", "pa")
	if rc != 0 {
		t.Fatalf("gateway a refused: %d", rc)
	}
	if _, err := a.c.Write(subscribePacket(1, event.ReplyTopic("s", "a"), 1)); err != nil {
		t.Fatal(err)
	}
	if p, err := readRaw(a.r); err != nil || p.typ != 0x90 || p.body[len(p.body)-1] != 1 {
		t.Fatalf("SUBACK: %x % x %v", p.typ, p.body, err)
	}

	_, rc = rawLogin(t, b, "gw-a", "s/b", "pb")
	if rc != 2 { // 3.1.1 "identifier rejected"
		t.Fatalf("login s/b with gateway a's client id: CONNACK %d, want 2", rc)
	}
	if got := refusedCount(b, reasonClientIDTaken); got != 1 {
		t.Fatalf("client_id_taken = %d, want 1", got)
	}
	if l := logs.String(); !strings.Contains(l, "username=s/b") || !strings.Contains(l, "owner=s/a") {
		t.Fatalf("log does not name both identities:\n%s", l)
	}

	// a is still connected and its reply reaches it.
	if _, err := a.c.Write(publishPacket(event.EventTopic("s", "a"), 7, badEvent(1))); err != nil {
		t.Fatal(err)
	}
	var puback, reply bool
	for !puback || !reply {
		p, err := readRaw(a.r)
		if err != nil {
			t.Fatalf("gateway a lost its link: %v (puback %v, reply %v)", err, puback, reply)
		}
		switch {
		case p.typ == 0x40:
			puback = true
		case p.typ&0xf0 == 0x30 && p.topic() == event.ReplyTopic("s", "a"):
			reply = true
			if p.typ&0x06 != 0 { // ack a QoS 1 reply
				n := 2 + len(p.topic())
				_, _ = a.c.Write([]byte{0x40, 2, p.body[n], p.body[n+1]})
			}
		}
	}

	// A real reconnect of a with its own id takes its session over.
	if _, rc := rawLogin(t, b, "gw-a", "s/a", "pa"); rc != 0 {
		t.Fatalf("gateway a's own reconnect refused: %d", rc)
	}
	if !closedWithin(a.c, 5*time.Second) {
		t.Fatal("a's old connection was not taken over")
	}
	if got := refusedCount(b, reasonClientIDTaken); got != 1 {
		t.Fatalf("client_id_taken = %d after a's own reconnect, want 1", got)
	}
}

// A QoS 1 subscriber that never acknowledges: every reply the hub
// publishes is either written to it or counted as dropped (inflight store
// full, outbound queue full), and the drops reach Dropped().
func TestIntegrationUnackedSubscriberDropsCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, _ := limitBroker(t, &replyHandler{}, Limits{MaxInflight: 50, MaxQueued: 20},
		map[string]string{"s/a": "pa"})
	sub, rc := rawLogin(t, b, "sub", "s/a", "pa")
	if rc != 0 {
		t.Fatalf("refused: %d", rc)
	}
	if _, err := sub.c.Write(subscribePacket(1, event.ReplyTopic("s", "a"), 1)); err != nil {
		t.Fatal(err)
	}
	if p, err := readRaw(sub.r); err != nil || p.typ != 0x90 {
		t.Fatalf("SUBACK: %x %v", p.typ, err)
	}
	var delivered atomic.Int64
	go func() {
		for {
			p, err := readRaw(sub.r)
			if err != nil {
				return
			}
			if p.typ&0xf0 == 0x30 {
				delivered.Add(1) // and never acknowledged
			}
		}
	}()

	pub, rc := rawLogin(t, b, "pub", "s/a", "pa")
	if rc != 0 {
		t.Fatalf("refused: %d", rc)
	}
	const n = 500
	w := bufio.NewWriter(pub.c)
	for i := 1; i <= n; i++ {
		_, _ = w.Write(publishPacket(event.EventTopic("s", "a"), uint16(i), badEvent(i)))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if p, err := readRaw(pub.r); err != nil || p.typ != 0x40 {
			t.Fatalf("PUBACK %d: %x %v", i, p.typ, err)
		}
	}
	accounted := func() int64 { return delivered.Load() + b.Dropped() }
	eventually(t, 10*time.Second, "every reply delivered or counted", func() bool { return accounted() >= n })
	time.Sleep(100 * time.Millisecond)
	t.Logf("delivered %d, dropped %d (inflight %d, queue %d)", delivered.Load(), b.Dropped(),
		b.inflightDropped(), b.hook.publishDropped.Load())
	if got := accounted(); got != n {
		t.Fatalf("delivered+dropped = %d, want exactly %d", got, n)
	}
	if b.Dropped() == 0 {
		t.Fatal("nothing dropped with an inflight limit of 50")
	}
}

// A retained publish on an event topic is not stored: a later subscriber
// gets the retained status, not the event.
func TestIntegrationRetainStrippedOnEventTopic(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, _ := limitBroker(t, &countingHandler{}, Limits{}, map[string]string{"s/a": "pa"})
	pub, rc := rawLogin(t, b, "pub", "s/a", "pa")
	if rc != 0 {
		t.Fatalf("refused: %d", rc)
	}
	ev := `{"v":1,"id":"r1","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`
	for i, p := range [][]byte{
		retainedPublish(event.EventTopic("s", "a"), 1, ev),
		retainedPublish(event.HeartbeatTopic("s", "a"), 2, `{"ts":"2026-11-23T03:00:00Z","seq":1}`),
		retainedPublish(event.StatusTopic("s", "a"), 3, `{"state":"online"}`),
	} {
		if _, err := pub.c.Write(p); err != nil {
			t.Fatal(err)
		}
		if p, err := readRaw(pub.r); err != nil || p.typ != 0x40 {
			t.Fatalf("PUBACK %d: %x %v", i, p.typ, err)
		}
	}
	sub, rc := rawLogin(t, b, "sub", "s/a", "pa")
	if rc != 0 {
		t.Fatalf("refused: %d", rc)
	}
	if _, err := sub.c.Write(subscribePacket(1, "vaka/v1/s/a/#", 0)); err != nil {
		t.Fatal(err)
	}
	var topics []string
	_ = sub.c.SetReadDeadline(time.Now().Add(time.Second))
	for {
		p, err := readRaw(sub.r)
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.typ&0xf0 == 0x30 {
			topics = append(topics, p.topic())
		}
	}
	if len(topics) != 1 || topics[0] != event.StatusTopic("s", "a") {
		t.Fatalf("a later subscriber got retained %q; want only the status", topics)
	}
	if got := b.hook.retainStripped.Load(); got != 2 {
		t.Fatalf("retain stripped %d times, want 2", got)
	}
}

// The hub's own replies are not counted as messages received.
func TestIntegrationReceivedCountsClientsOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, _ := limitBroker(t, &replyHandler{}, Limits{}, map[string]string{"s/a": "pa"})
	pub, rc := rawLogin(t, b, "pub", "s/a", "pa")
	if rc != 0 {
		t.Fatalf("refused: %d", rc)
	}
	for i := 1; i <= 3; i++ {
		if _, err := pub.c.Write(publishPacket(event.EventTopic("s", "a"), uint16(i), badEvent(i))); err != nil {
			t.Fatal(err)
		}
		if p, err := readRaw(pub.r); err != nil || p.typ != 0x40 {
			t.Fatalf("PUBACK %d: %x %v", i, p.typ, err)
		}
	}
	if got := b.hook.received.Load(); got != 3 {
		t.Fatalf("received = %d after 3 client publishes and 3 hub replies, want 3", got)
	}
}

// A flood of wrong-password logins while a gateway publishes an alarm: the
// wrong ones are refused and counted, bcrypt never runs more than
// AuthConcurrency at once, and the gateway's reconnect with the right
// password skips bcrypt (cached) and gets its alarm acknowledged.
func TestIntegrationPasswordFloodBoundedBcrypt(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	h := &countingHandler{}
	b, _ := limitBroker(t, h, Limits{MaxConnectionsPerAddress: 200, MaxConnections: 200},
		map[string]string{"s/a": "pa", "s/b": "pb"})
	var cur, peak atomic.Int64
	compare := b.hook.auth.compare
	b.hook.auth.compare = func(hash, pw []byte) error {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond) // widen the window in which overlap would show
		defer cur.Add(-1)
		return compare(hash, pw)
	}
	if _, rc := rawLogin(t, b, "gw-a", "s/a", "pa"); rc != 0 {
		t.Fatalf("gateway refused: %d", rc)
	}

	const flood = 64
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range flood {
		user := "s/b"
		if i%2 == 0 {
			user = "s/a" // guessing the gateway's own password too
		}
		wg.Go(func() {
			c, err := net.Dial("tcp", b.Addr("tcp"))
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := c.Write(connectPacketID("x"+string(rune('A'+i%26))+string(rune('a'+i/26)), user, "wrong", true)); err != nil {
				return
			}
			if p, err := readRaw(bufio.NewReader(c)); err == nil && p.typ == 0x20 && p.body[1] != 0 {
				refused.Add(1)
			}
		})
	}

	// Meanwhile the gateway reconnects and raises an alarm.
	hits := b.hook.auth.cacheHits.Load()
	a, rc := rawLogin(t, b, "gw-a", "s/a", "pa")
	if rc != 0 {
		t.Fatalf("gateway refused during the flood: %d", rc)
	}
	if _, err := a.c.Write(publishPacket(event.EventTopic("s", "a"), 1,
		`{"v":1,"id":"alarm1","device":"d","dty":"0003","stc":"0010","state":"pressed","ts":"2026-11-23T03:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if p, err := readRaw(a.r); err != nil || p.typ != 0x40 {
		t.Fatalf("alarm PUBACK: %x %v", p.typ, err)
	}
	if h.events.Load() != 1 {
		t.Fatalf("alarm not handled")
	}
	if b.hook.auth.cacheHits.Load() == hits {
		t.Fatal("the gateway's reconnect with the right password ran bcrypt instead of the cache")
	}
	wg.Wait()
	if refused.Load() != flood {
		t.Fatalf("%d of %d wrong passwords refused", refused.Load(), flood)
	}
	if got := refusedCount(b, "auth"); got != flood {
		t.Fatalf("auth refusals counted %d, want %d", got, flood)
	}
	if p := peak.Load(); p > 1 {
		t.Fatalf("%d bcrypt comparisons ran at once; limit 1", p)
	}
	t.Logf("bcrypt comparisons: %d for %d wrong logins", b.hook.auth.compares.Load(), flood)
}

// Before login the bound is tighter than after: a 32 KiB CONNECT is
// refused (default bound 16 KiB), a 32 KiB PUBLISH after login is not
// (default bound 64 KiB).
func TestIntegrationConnectBoundTighterThanPacketBound(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	b, _ := limitBroker(t, &countingHandler{}, Limits{}, map[string]string{"s/g": "pw"})
	c, err := net.Dial("tcp", b.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(connectPacketID("big", "s/g", strings.Repeat("p", 32<<10), true))
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("a 32 KiB CONNECT was kept")
	}
	eventually(t, 5*time.Second, "refusal counted", func() bool { return refusedCount(b, reasonTooLarge) == 1 })

	cl, rc := rawLogin(t, b, "gw", "s/g", "pw")
	if rc != 0 {
		t.Fatalf("refused: %d", rc)
	}
	if _, err := cl.c.Write(publishPacket(event.EventTopic("s", "g"), 1, strings.Repeat("x", 32<<10))); err != nil {
		t.Fatal(err)
	}
	if p, err := readRaw(cl.r); err != nil || p.typ != 0x40 {
		t.Fatalf("32 KiB publish after login: %x %v", p.typ, err)
	}
}
