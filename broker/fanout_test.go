package broker

import (
	"bufio"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vaka-care/vaka/event"
)

func TestMayReceiveGatewayTraffic(t *testing.T) {
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{"#", true},
		{"vaka/#", true},
		{"vaka/v1/#", true},
		{"vaka/v1/s/g/event", true},
		{"vaka/v1/s/g/heartbeat", true},
		{"vaka/v1/+/+/event", true},
		{"vaka/v1/s/+/+", true},
		{"+/+/+/+/+", true},
		{"+/v1/s/g/#", true},
		{"$share/staff/vaka/v1/+/+/event", true},
		{"$share/staff/#", true},
		{"vaka/v1/s/g/reply", false},
		{"vaka/v1/s/g/status", false},
		{"vaka/v1/s/g", false},
		{"vaka/v1/s/g/event/x", false},
		{"vaka/v2/s/g/event", false},
		{"owntracks/#", false},
		{"$share/staff/vaka/v1/s/g/reply", false},
		{"vaka/v1//g/event", false}, // no site is empty
		{"+/+/+/+", false},
	} {
		if got := mayReceiveGatewayTraffic(tc.filter); got != tc.want {
			t.Errorf("mayReceiveGatewayTraffic(%q) = %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func unsubscribePacket(id uint16, filter string) []byte {
	b := []byte{byte(id >> 8), byte(id)}
	b = append(append(b, mqttStr(filter)...), filter...)
	return mqttPacket(0xa2, b)
}

// rawLoginClean is rawLogin with a chosen clean-session flag.
func rawLoginClean(t *testing.T, b *Broker, id, user, pass string, clean bool) (*rawClient, byte) {
	t.Helper()
	c, err := net.Dial("tcp", b.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(connectPacketID(id, user, pass, clean)); err != nil {
		t.Fatal(err)
	}
	cl := &rawClient{c: c, r: bufio.NewReader(c)}
	p, err := readRaw(cl.r)
	if err != nil || p.typ != 0x20 || len(p.body) != 2 {
		t.Fatalf("%s: no CONNACK: %x % x %v", id, p.typ, p.body, err)
	}
	return cl, p.body[1]
}

// expectPacket reads packets until one of type typ (high nibble) arrives,
// acknowledging QoS 1 PUBLISHes on the way.
func expectPacket(t *testing.T, cl *rawClient, typ byte, what string) rawPacket {
	t.Helper()
	_ = cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 20 {
		p, err := readRaw(cl.r)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if p.typ>>4 == typ {
			return p
		}
	}
	t.Fatalf("%s: no packet of type %d among 20", what, typ)
	return rawPacket{}
}

func publishAndAck(t *testing.T, gw *rawClient, id uint16, payload string) {
	t.Helper()
	if _, err := gw.c.Write(publishPacket(event.EventTopic("s", "g"), id, payload)); err != nil {
		t.Fatal(err)
	}
	p := expectPacket(t, gw, 4, "PUBACK")
	if got := uint16(p.body[0])<<8 | uint16(p.body[1]); got != id {
		t.Fatalf("PUBACK for %d, want %d", got, id)
	}
}

// Skipping mochi's subscriber lookup when nobody could receive an event
// must never cost a subscriber a message: a live subscriber, an offline
// persistent session and a wildcard all still get gateway events, and
// only once the last such subscription is gone are events left
// unforwarded (still handled and acknowledged).
func TestEventsStillReachSubscribers(t *testing.T) {
	h := &countingHandler{}
	b, _ := limitBroker(t, h, Limits{}, map[string]string{"s/g": "pw"})
	if !b.hook.subs.none() {
		t.Fatal("a new broker counts event subscribers")
	}
	gw, rc := rawLogin(t, b, "gw", "s/g", "pw")
	if rc != 0 {
		t.Fatalf("gateway login refused: %d", rc)
	}

	// Only the reply topic, and a refused "#": nobody reads events.
	if _, err := gw.c.Write(subscribePacket(1, event.ReplyTopic("s", "g"), 1)); err != nil {
		t.Fatal(err)
	}
	expectPacket(t, gw, 9, "SUBACK reply")
	if _, err := gw.c.Write(subscribePacket(2, "#", 1)); err != nil {
		t.Fatal(err)
	}
	if p := expectPacket(t, gw, 9, "SUBACK #"); p.body[len(p.body)-1] < 0x80 {
		t.Fatalf("a gateway was granted #: % x", p.body)
	}
	if !b.hook.subs.none() {
		t.Fatal("a reply subscription or a refused one counted as an event subscriber")
	}
	publishAndAck(t, gw, 10, `{"v":1,"id":"e0","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`)

	// A persistent session follows the gateway's events.
	sub, rc := rawLoginClean(t, b, "mirror", "s/g", "pw", false)
	if rc != 0 {
		t.Fatalf("subscriber login refused: %d", rc)
	}
	if _, err := sub.c.Write(subscribePacket(3, "vaka/v1/s/g/+", 1)); err != nil {
		t.Fatal(err)
	}
	if p := expectPacket(t, sub, 9, "SUBACK event"); p.body[len(p.body)-1] >= 0x80 {
		t.Fatalf("subscription refused: % x", p.body)
	}
	if b.hook.subs.none() {
		t.Fatal("an event subscription was not counted")
	}
	publishAndAck(t, gw, 11, `{"v":1,"id":"e1","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`)
	if p := expectPacket(t, sub, 3, "live event"); p.topic() != event.EventTopic("s", "g") {
		t.Fatalf("subscriber got %q", p.topic())
	}

	// Offline (persistent session kept): the event is queued for it.
	if _, err := sub.c.Write([]byte{0xe0, 0}); err != nil {
		t.Fatal(err)
	}
	sub.c.Close()
	eventually(t, 5*time.Second, "subscriber gone", func() bool {
		cl, ok := b.srv.Clients.Get("mirror")
		return ok && cl.Closed()
	})
	if b.hook.subs.none() {
		t.Fatal("an offline persistent session's subscription was forgotten")
	}
	publishAndAck(t, gw, 12, `{"v":1,"id":"e2","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`)
	sub, rc = rawLoginClean(t, b, "mirror", "s/g", "pw", false)
	if rc != 0 {
		t.Fatalf("subscriber login refused: %d", rc)
	}
	if p := expectPacket(t, sub, 3, "queued event"); p.topic() != event.EventTopic("s", "g") {
		t.Fatalf("subscriber got %q", p.topic())
	}

	// Unsubscribed: nobody reads events; they are still handled and acked.
	if _, err := sub.c.Write(unsubscribePacket(4, "vaka/v1/s/g/+")); err != nil {
		t.Fatal(err)
	}
	expectPacket(t, sub, 11, "UNSUBACK")
	if !b.hook.subs.none() {
		t.Fatal("an unsubscribed filter still counts")
	}
	before := h.events.Load()
	publishAndAck(t, gw, 13, `{"v":1,"id":"e3","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`)
	if h.events.Load() != before+1 {
		t.Fatal("an unforwarded event was not handled")
	}

	// A clean session's subscriptions end with its connection.
	sub2, rc := rawLoginClean(t, b, "mirror2", "s/g", "pw", true)
	if rc != 0 {
		t.Fatalf("subscriber login refused: %d", rc)
	}
	if _, err := sub2.c.Write(subscribePacket(5, "vaka/v1/s/g/#", 1)); err != nil {
		t.Fatal(err)
	}
	expectPacket(t, sub2, 9, "SUBACK #")
	if b.hook.subs.none() {
		t.Fatal("a # under the gateway's tree was not counted")
	}
	sub2.c.Close()
	eventually(t, 5*time.Second, "a closed clean session's subscription forgotten", b.hook.subs.none)
}

// An in-process (inline) subscription counts like a client's: it gets
// gateway events, and once it is removed they are left unforwarded.
func TestInlineSubscriberGetsEvents(t *testing.T) {
	h := &countingHandler{}
	b, _ := limitBroker(t, h, Limits{}, map[string]string{"s/g": "pw"})
	got := make(chan string, 4)
	if err := b.srv.Subscribe("vaka/v1/+/+/event", 7, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		got <- pk.TopicName
	}); err != nil {
		t.Fatal(err)
	}
	if b.hook.subs.none() {
		t.Fatal("an inline subscription was not counted")
	}
	// A second inline subscription on the same filter, removed again:
	// the first must still count.
	if err := b.srv.Subscribe("vaka/v1/+/+/event", 8, func(*mqtt.Client, packets.Subscription, packets.Packet) {}); err != nil {
		t.Fatal(err)
	}
	if err := b.srv.Unsubscribe("vaka/v1/+/+/event", 8); err != nil {
		t.Fatal(err)
	}
	if b.hook.subs.none() {
		t.Fatal("removing one inline subscription forgot another on the same filter")
	}
	gw, rc := rawLogin(t, b, "gw", "s/g", "pw")
	if rc != 0 {
		t.Fatalf("login refused: %d", rc)
	}
	publishAndAck(t, gw, 1, `{"v":1,"id":"i1","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`)
	select {
	case tp := <-got:
		if tp != event.EventTopic("s", "g") {
			t.Fatalf("inline subscriber got %q", tp)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the inline subscriber got no event")
	}
	if err := b.srv.Unsubscribe("vaka/v1/+/+/event", 7); err != nil {
		t.Fatal(err)
	}
	if !b.hook.subs.none() {
		t.Fatal("a removed inline subscription still counts")
	}
	publishAndAck(t, gw, 2, `{"v":1,"id":"i2","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`)
	if n := h.events.Load(); n != 2 {
		t.Fatalf("handled %d events, want 2", n)
	}
}
