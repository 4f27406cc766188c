package broker

import (
	"bufio"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

// gateHandler holds each event until the test lets it go, then answers
// with the reply set for it.
type gateHandler struct {
	countingHandler
	entered chan struct{}
	release chan event.Reply
	handled atomic.Int64
}

func newGateHandler() *gateHandler {
	return &gateHandler{entered: make(chan struct{}, 16), release: make(chan event.Reply, 16)}
}

func (h *gateHandler) HandleEvent(site, gateway string, payload []byte) event.Reply {
	h.entered <- struct{}{}
	r := <-h.release
	h.handled.Add(1)
	return r
}

func pressPayload(i int) string {
	return fmt.Sprintf(`{"v":1,"id":"k%d","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`, i)
}

// noBytesFor reports whether nothing arrives on cl within d.
func noBytesFor(cl *rawClient, d time.Duration) bool {
	_ = cl.c.SetReadDeadline(time.Now().Add(d))
	_, err := cl.r.Peek(1)
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func waitEntered(t *testing.T, h *gateHandler) {
	t.Helper()
	select {
	case <-h.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the event never reached the handler")
	}
}

// The hook acknowledges a kept event itself (no subscriber, MQTT 3.1.1):
// the PUBACK still leaves only after the hub returned, mochi tracks
// nothing in flight for it, and an event the hub could not keep is still
// never acknowledged.
func TestKeptEventAckedByHookOnlyAfterHandled(t *testing.T) {
	h := newGateHandler()
	b, _ := limitBroker(t, h, Limits{}, map[string]string{"s/g": "pw"})
	gw, rc := rawLogin(t, b, "gw", "s/g", "pw")
	if rc != 0 {
		t.Fatalf("login refused: %d", rc)
	}
	if _, err := gw.c.Write(publishPacket(event.EventTopic("s", "g"), 7, pressPayload(1))); err != nil {
		t.Fatal(err)
	}
	waitEntered(t, h)
	if !noBytesFor(gw, 100*time.Millisecond) {
		t.Fatal("bytes arrived while the hub still held the event")
	}
	h.release <- event.Reply{Code: event.ReplyOK}
	p := expectPacket(t, gw, 4, "PUBACK")
	if len(p.body) != 2 || p.body[0] != 0 || p.body[1] != 7 {
		t.Fatalf("PUBACK body % x, want 00 07", p.body)
	}
	if h.handled.Load() != 1 {
		t.Fatal("PUBACK before the event was handled")
	}
	if got := b.hook.selfAcked.Load(); got != 1 {
		t.Fatalf("hook acknowledged %d events, want 1", got)
	}
	cl, ok := b.srv.Clients.Get("gw")
	if !ok {
		t.Fatal("gateway not connected")
	}
	if n := cl.State.Inflight.Len(); n != 0 {
		t.Errorf("%d messages left in flight", n)
	}
	if n := atomic.LoadInt64(&b.srv.Info.Inflight); n != 0 {
		t.Errorf("broker counts %d in flight", n)
	}

	// Not kept (journal cannot write): no PUBACK, the 3.1.1 client is
	// disconnected so it resends.
	if _, err := gw.c.Write(publishPacket(event.EventTopic("s", "g"), 8, pressPayload(2))); err != nil {
		t.Fatal(err)
	}
	waitEntered(t, h)
	h.release <- event.Reply{Code: event.ReplyBusy, Reason: "journal"}
	_ = gw.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		p, err := readRaw(gw.r)
		if err != nil {
			break // closed, as it must be
		}
		if p.typ>>4 == 4 {
			t.Fatalf("an event not kept was acknowledged: % x", p.body)
		}
	}
	if got := b.hook.selfAcked.Load(); got != 1 {
		t.Fatalf("hook acknowledged %d events, want still 1", got)
	}
}

// With a subscriber that could receive events, and for MQTT 5 clients,
// mochi acknowledges as before (and forwards).
func TestMochiAcksWhenForwardedOrMQTT5(t *testing.T) {
	h := newGateHandler()
	b, _ := limitBroker(t, h, Limits{}, map[string]string{"s/g": "pw"})

	// MQTT 5, no subscriber.
	c, err := net.Dial("tcp", b.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	v5 := &rawClient{c: c, r: bufio.NewReader(c)}
	if _, err := c.Write(connectV5("gw5", "s/g", "pw")); err != nil {
		t.Fatal(err)
	}
	if p := expectPacket(t, v5, 2, "CONNACK"); p.body[1] != 0 {
		t.Fatalf("MQTT 5 login refused: % x", p.body)
	}
	if _, err := c.Write(publishV5(event.EventTopic("s", "g"), 9, pressPayload(3))); err != nil {
		t.Fatal(err)
	}
	waitEntered(t, h)
	h.release <- event.Reply{Code: event.ReplyOK}
	if p := expectPacket(t, v5, 4, "MQTT 5 PUBACK"); p.body[0] != 0 || p.body[1] != 9 {
		t.Fatalf("MQTT 5 PUBACK % x", p.body)
	}
	if got := b.hook.selfAcked.Load(); got != 0 {
		t.Fatalf("hook acknowledged an MQTT 5 event (%d)", got)
	}

	// MQTT 3.1.1 with a subscriber to its events.
	gw, _ := rawLogin(t, b, "gw", "s/g", "pw")
	sub, _ := rawLogin(t, b, "mirror", "s/g", "pw")
	if _, err := sub.c.Write(subscribePacket(1, event.EventTopic("s", "g"), 1)); err != nil {
		t.Fatal(err)
	}
	expectPacket(t, sub, 9, "SUBACK")
	if _, err := gw.c.Write(publishPacket(event.EventTopic("s", "g"), 10, pressPayload(4))); err != nil {
		t.Fatal(err)
	}
	waitEntered(t, h)
	h.release <- event.Reply{Code: event.ReplyOK}
	if p := expectPacket(t, gw, 4, "PUBACK"); p.body[1] != 10 {
		t.Fatalf("PUBACK % x", p.body)
	}
	if p := expectPacket(t, sub, 3, "forwarded event"); p.typ&0x06 != 0x02 {
		t.Fatalf("forwarded at QoS %d, want 1", p.typ>>1&3)
	}
	if got := b.hook.selfAcked.Load(); got != 0 {
		t.Fatalf("hook acknowledged a forwarded event (%d)", got)
	}
}

func connectV5(id, user, pass string) []byte {
	var b []byte
	b = append(append(b, mqttStr("MQTT")...), "MQTT"...)
	b = append(b, 5, 0xc2, 0, 60, 0) // level 5, user+pass+clean, keepalive, no properties
	b = append(append(b, mqttStr(id)...), id...)
	b = append(append(b, mqttStr(user)...), user...)
	b = append(append(b, mqttStr(pass)...), pass...)
	return mqttPacket(0x10, b)
}

func publishV5(topic string, id uint16, payload string) []byte {
	var b []byte
	b = append(append(b, mqttStr(topic)...), topic...)
	b = append(b, byte(id>>8), byte(id), 0) // packet id, no properties
	return mqttPacket(0x32, append(b, payload...))
}
