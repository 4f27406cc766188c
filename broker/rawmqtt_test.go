package broker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/event"
)

// A raw MQTT 3.1.1 client for tests that must misbehave in ways a library
// client will not (claim huge packets, never ack, never send CONNECT).

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// limitBroker starts a broker with the logins in pass (username → password)
// and the given limits; its log goes to the returned buffer.
func limitBroker(t testing.TB, h Handler, lim Limits, pass map[string]string) (*Broker, *syncBuffer) {
	t.Helper()
	var creds []Credential
	for u, p := range pass {
		hash, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		site, gw, _ := strings.Cut(u, "/")
		creds = append(creds, Credential{Site: site, Gateway: gw, PasswordHash: string(hash)})
	}
	logs := &syncBuffer{}
	b, err := New(Options{TCP: "127.0.0.1:0", Handler: h, Credentials: creds, Limits: lim,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, logs
}

func refusedCount(b *Broker, reason string) int {
	var m dto.Metric
	_ = b.hook.refused.WithLabelValues(reason).Write(&m)
	return int(m.GetCounter().GetValue())
}

func connectPacketID(id, user, pass string, clean bool) []byte {
	var b []byte
	b = append(append(b, mqttStr("MQTT")...), "MQTT"...)
	flags := byte(0xc0)
	if clean {
		flags |= 0x02
	}
	b = append(b, 4, flags, 0, 60)
	b = append(append(b, mqttStr(id)...), id...)
	b = append(append(b, mqttStr(user)...), user...)
	b = append(append(b, mqttStr(pass)...), pass...)
	return mqttPacket(0x10, b)
}

func subscribePacket(id uint16, filter string, qos byte) []byte {
	b := []byte{byte(id >> 8), byte(id)}
	b = append(append(b, mqttStr(filter)...), filter...)
	return mqttPacket(0x82, append(b, qos))
}

func retainedPublish(topic string, id uint16, payload string) []byte {
	p := publishPacket(topic, id, payload)
	p[0] |= 0x01
	return p
}

type rawPacket struct {
	typ  byte // first byte: type and flags
	body []byte
}

// topic is a PUBLISH's topic name.
func (p rawPacket) topic() string {
	if len(p.body) < 2 {
		return ""
	}
	n := int(p.body[0])<<8 | int(p.body[1])
	if len(p.body) < 2+n {
		return ""
	}
	return string(p.body[2 : 2+n])
}

func readRaw(r *bufio.Reader) (rawPacket, error) {
	h, err := r.ReadByte()
	if err != nil {
		return rawPacket{}, err
	}
	n, mult := 0, 1
	for i := 0; i < 4; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return rawPacket{}, err
		}
		n += int(c&0x7f) * mult
		mult *= 128
		if c&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return rawPacket{}, err
	}
	return rawPacket{typ: h, body: body}, nil
}

type rawClient struct {
	c net.Conn
	r *bufio.Reader
}

// rawLogin connects with client id, user and password and returns the
// CONNACK return code (0 = accepted).
func rawLogin(t testing.TB, b *Broker, id, user, pass string) (*rawClient, byte) {
	t.Helper()
	c, err := net.Dial("tcp", b.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(connectPacketID(id, user, pass, true)); err != nil {
		t.Fatal(err)
	}
	cl := &rawClient{c: c, r: bufio.NewReader(c)}
	p, err := readRaw(cl.r)
	if err != nil {
		t.Fatalf("%s: no CONNACK: %v", id, err)
	}
	if p.typ != 0x20 || len(p.body) != 2 {
		t.Fatalf("%s: not a CONNACK: %x % x", id, p.typ, p.body)
	}
	return cl, p.body[1]
}

// closedWithin reports whether the server closes c within d (reading and
// discarding anything it sends).
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if ok := asNetError(err, &ne); ok && ne.Timeout() {
				return false
			}
			return true
		}
	}
}

func asNetError(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("not within %v: %s", d, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// replyHandler refuses every event (as a malformed one would be), so the
// hub answers on the gateway's reply topic.
type replyHandler struct{ countingHandler }

func (h *replyHandler) HandleEvent(site, gateway string, payload []byte) event.Reply {
	h.events.Add(1)
	return event.Reply{Code: event.ReplyMandatoryMissed, Reason: "event: field \"dty\": missing"}
}

func badEvent(i int) string { return fmt.Sprintf(`{"v":1,"id":"bad%d"}`, i) }
