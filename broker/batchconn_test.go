package broker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/event"
)

// countingHandler stands in for the hub: it counts events as they are
// handled, so a test can check no PUBACK leaves before its event was.
type countingHandler struct{ events atomic.Int64 }

func (h *countingHandler) HandleEvent(site, gateway string, payload []byte) event.Reply {
	h.events.Add(1)
	return event.Reply{Code: event.ReplyOK}
}
func (h *countingHandler) HandleStatus(string, string, []byte)    {}
func (h *countingHandler) HandleHeartbeat(string, string, []byte) {}

func startTestBroker(t testing.TB, h Handler) *Broker {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{TCP: "127.0.0.1:0", Handler: h,
		Credentials: []Credential{{Site: "s", Gateway: "g", PasswordHash: string(hash)}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func mqttStr(s string) []byte { return []byte{byte(len(s) >> 8), byte(len(s))} }

func mqttPacket(h byte, body []byte) []byte {
	out := []byte{h}
	n := len(body)
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		out = append(out, c)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// connectPacket is a clean-session CONNECT of client c1 (rawmqtt_test.go).
func connectPacket(user, pass string) []byte { return connectPacketID("c1", user, pass, true) }

func publishPacket(topic string, id uint16, payload string) []byte {
	var b []byte
	b = append(append(b, mqttStr(topic)...), topic...)
	b = append(b, byte(id>>8), byte(id))
	return mqttPacket(0x32, append(b, payload...))
}

func dialTest(t *testing.T, b *Broker, user, pass string) (net.Conn, *bufio.Reader, byte) {
	t.Helper()
	return dialGateway(t, b, user, pass, 10*time.Second, 4096)
}

// dialGateway logs user in over raw TCP and returns the connection (its
// deadline wait from now), a reader buffering size bytes past the CONNACK,
// and the CONNACK's return code. Benchmarks give a longer deadline and a
// larger buffer than tests.
func dialGateway(t testing.TB, b *Broker, user, pass string, wait time.Duration, size int) (net.Conn, *bufio.Reader, byte) {
	t.Helper()
	c, err := net.Dial("tcp", b.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(connectPacket(user, pass)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReaderSize(c, size)
	var ack [4]byte
	if _, err := io.ReadFull(r, ack[:]); err != nil {
		t.Fatalf("no CONNACK: %v", err)
	}
	if ack[0] != 0x20 {
		t.Fatalf("not a CONNACK: % x", ack)
	}
	return c, r, ack[3]
}

// A burst of events sent in one write gets every PUBACK, in order, each
// only after its event was handled, in far fewer writes than events.
func TestBatchConnAcksBurst(t *testing.T) {
	h := &countingHandler{}
	b := startTestBroker(t, h)
	c, r, rc := dialTest(t, b, "s/g", "pw")
	if rc != 0 {
		t.Fatalf("login refused: %d", rc)
	}
	const n = 300
	writes0 := b.hook.netWrites.Load()
	var burst []byte
	for i := 1; i <= n; i++ {
		burst = append(burst, publishPacket(event.EventTopic("s", "g"),
			uint16(i), fmt.Sprintf(`{"v":1,"id":"e%d","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`, i))...)
	}
	if _, err := c.Write(burst); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		var ack [4]byte
		if _, err := io.ReadFull(r, ack[:]); err != nil {
			t.Fatalf("PUBACK %d: %v", i, err)
		}
		if ack[0] != 0x40 || ack[1] != 2 || int(ack[2])<<8|int(ack[3]) != i {
			t.Fatalf("PUBACK %d: got % x", i, ack)
		}
		if got := h.events.Load(); got < int64(i) {
			t.Fatalf("PUBACK %d arrived with only %d events handled", i, got)
		}
	}
	w := b.hook.netWrites.Load() - writes0
	t.Logf("%d PUBACKs in %d writes", n, w)
	if w > n/3 {
		t.Errorf("%d PUBACKs took %d writes; want them batched", n, w)
	}
}

// A lone event on an idle link is acknowledged at once: nothing waits for
// more traffic to flush it.
func TestBatchConnAcksLoneEventAtOnce(t *testing.T) {
	b := startTestBroker(t, &countingHandler{})
	c, r, _ := dialTest(t, b, "s/g", "pw")
	for i := 1; i <= 3; i++ {
		start := time.Now()
		if _, err := c.Write(publishPacket(event.EventTopic("s", "g"), uint16(i),
			fmt.Sprintf(`{"v":1,"id":"x%d","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`, i))); err != nil {
			t.Fatal(err)
		}
		var ack [4]byte
		if _, err := io.ReadFull(r, ack[:]); err != nil {
			t.Fatalf("PUBACK %d: %v", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("PUBACK %d took %v", i, d)
		}
	}
}

// A refused login still gets its CONNACK before the broker closes the
// connection: Close sends what batchConn holds.
func TestBatchConnRefusedLoginGetsConnack(t *testing.T) {
	b := startTestBroker(t, &countingHandler{})
	_, _, rc := dialTest(t, b, "s/g", "wrong")
	if rc == 0 {
		t.Fatal("a wrong password was accepted")
	}
}
