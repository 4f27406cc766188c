package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// The raw generator: an MQTT 3.1.1 QoS 1 publisher written for the bench,
// so the generator costs little next to the system under test. paho writes
// one syscall per message and reads each packet with several small reads;
// here the sender encodes every message that is due into one buffer per
// connection and writes it with one write(2), and one reader per
// connection reads PUBACKs through a large bufio.Reader.
//
// Packet ids are tracked per connection: the id of event i maps to i until
// its PUBACK arrives. A PUBACK for an id not in flight is counted
// (unexpected: a duplicate or a broker bug); an event without a PUBACK by
// the end is counted as missing. Loss, duplicates and reordering of the
// alarms themselves are found from the payloads, as with paho.

const (
	rawReadBuf   = 64 << 10
	rawKeepalive = 60 // seconds; every run sends more often than this
)

// rawPub is one gateway's MQTT connection. add and flush are called by the
// one sender goroutine; the reader goroutine records PUBACKs.
type rawPub struct {
	b     *bench
	c     net.Conn
	topic []byte
	buf   []byte // encoded messages not yet written
	next  uint16 // last packet id used
	// inflight[id] is the event index + 1 waiting for that id's PUBACK, or 0.
	inflight []atomic.Int64
	done     chan struct{}
	readErr  atomic.Pointer[string]
	closing  atomic.Bool
}

// dialRaw connects gateway g with its credentials (clean session) and
// waits for the CONNACK.
func dialRaw(b *bench, addr string, g int, topic string) (*rawPub, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	p := &rawPub{b: b, c: c, topic: []byte(topic), inflight: make([]atomic.Int64, 1<<16), done: make(chan struct{})}
	pk := appendConnect(nil, site+"-"+gatewayID(g), site+"/"+gatewayID(g), gwPass)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(pk); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	r := bufio.NewReaderSize(c, rawReadBuf)
	var ack [4]byte
	if _, err := io.ReadFull(r, ack[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("connack: %w", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 || ack[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("connack refused: % x", ack)
	}
	c.SetDeadline(time.Time{})
	go p.read(r)
	return p, nil
}

// appendConnect encodes an MQTT 3.1.1 CONNECT: clean session, username and
// password.
func appendConnect(dst []byte, clientID, user, pass string) []byte {
	var body []byte
	body = appendStr(body, "MQTT")
	body = append(body, 4, 0x02|0x80|0x40, 0, rawKeepalive)
	body = appendStr(body, clientID)
	body = appendStr(body, user)
	body = appendStr(body, pass)
	dst = append(dst, 0x10)
	dst = appendVarint(dst, len(body))
	return append(dst, body...)
}

func appendStr(dst []byte, s string) []byte {
	dst = append(dst, byte(len(s)>>8), byte(len(s)))
	return append(dst, s...)
}

func appendVarint(dst []byte, n int) []byte {
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		dst = append(dst, c)
		if n == 0 {
			return dst
		}
	}
}

// appendPublish encodes a QoS 1 PUBLISH.
func appendPublish(dst, topic []byte, id uint16, payload []byte) []byte {
	dst = append(dst, 0x32)
	dst = appendVarint(dst, 2+len(topic)+2+len(payload))
	dst = append(dst, byte(len(topic)>>8), byte(len(topic)))
	dst = append(dst, topic...)
	dst = append(dst, byte(id>>8), byte(id))
	return append(dst, payload...)
}

// errIDsBusy: all 65,535 packet ids of a connection wait for PUBACKs.
var errIDsBusy = errors.New("all packet ids in flight")

// add encodes event i into the pending buffer under the next free packet
// id. Ids are used in turn, so the next one is the oldest; if it is still
// in flight the broker is 65,535 PUBACKs behind and add reports errIDsBusy
// (the sender writes what it has and waits).
func (p *rawPub) add(i int, payload []byte) error {
	id := p.next + 1
	if id == 0 {
		id = 1
	}
	if !p.inflight[id].CompareAndSwap(0, int64(i)+1) {
		return errIDsBusy
	}
	p.next = id
	p.buf = appendPublish(p.buf, p.topic, id, payload)
	return nil
}

// flush writes the pending messages with one write call.
func (p *rawPub) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	_, err := p.c.Write(p.buf)
	p.buf = p.buf[:0]
	return err
}

// read records PUBACKs until the connection closes.
func (p *rawPub) read(r *bufio.Reader) {
	defer close(p.done)
	b := p.b
	var hdr [2]byte
	for {
		h, err := r.ReadByte()
		if err != nil {
			p.readFailed(err)
			return
		}
		n, err := readVarint(r)
		if err != nil {
			p.readFailed(err)
			return
		}
		if h>>4 == 4 && n == 2 { // PUBACK
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				p.readFailed(err)
				return
			}
			id := uint16(hdr[0])<<8 | uint16(hdr[1])
			v := p.inflight[id].Swap(0)
			if v == 0 {
				b.pubackUnexpected.Add(1)
				continue
			}
			b.acked[v-1].Store(max(1, b.now()))
			b.acks.Add(1)
			continue
		}
		// Anything else (PINGRESP, a reply the gateway did not subscribe
		// to): skip it.
		if _, err := r.Discard(n); err != nil {
			p.readFailed(err)
			return
		}
	}
}

func (p *rawPub) readFailed(err error) {
	if p.closing.Load() {
		return
	}
	msg := err.Error()
	p.readErr.Store(&msg)
}

func readVarint(r *bufio.Reader) (int, error) {
	n, mul := 0, 1
	for range 4 {
		c, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n += int(c&0x7f) * mul
		if c&0x80 == 0 {
			return n, nil
		}
		mul *= 128
	}
	return 0, errors.New("mqtt: malformed remaining length")
}

// close sends DISCONNECT and closes the connection.
func (p *rawPub) close() {
	if p.closing.Swap(true) {
		return
	}
	p.c.SetWriteDeadline(time.Now().Add(time.Second))
	p.c.Write([]byte{0xe0, 0})
	p.c.Close()
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
}

// sendOpenLoopRaw publishes event i at start + i/rate. Each wake-up
// encodes every event now due (up to a batch) and writes each connection's
// share with one write call; then it sleeps until the next event is due
// (at least tick, if set). Events sent late count their lateness.
func (b *bench) sendOpenLoopRaw(pubs []*rawPub, payloads [][]byte) (int, string) {
	o := b.o
	period := float64(time.Second) / o.Rate
	start := b.now() + int64(20*time.Millisecond)
	limit := start + int64(o.Duration) + int64(maxBehind)
	G := len(pubs)
	sleep, closePacer, err := b.sleeper()
	if err != nil {
		return 0, "pacer: " + err.Error()
	}
	defer closePacer()
	due := func(i int) int64 { return start + int64(float64(i)*period) }
	const maxBatch = 4096
	i := 0
	for i < b.n {
		now := b.now()
		if d := due(i) - now; d > 0 {
			sleep(max(time.Duration(d), o.Tick))
			now = b.now()
		}
		if now > limit {
			return i, fmt.Sprintf("gave up: more than %v behind schedule at event %d", maxBehind, i)
		}
		first := i
		busy := false
		for i < b.n && i-first < maxBatch {
			d := due(i)
			if d > now {
				break
			}
			if err := pubs[i%G].add(i, payloads[i]); err != nil {
				busy = true
				break
			}
			b.sched[i] = d
			i++
		}
		t := b.now()
		for k := first; k < i; k++ {
			b.sent[k] = t
		}
		for _, p := range pubs {
			if err := p.flush(); err != nil {
				return first, fmt.Sprintf("write: %v", err)
			}
		}
		if busy {
			time.Sleep(time.Millisecond)
		}
		for _, p := range pubs {
			if e := p.readErr.Load(); e != nil {
				return i, "connection lost: " + *e
			}
		}
	}
	return b.n, ""
}

// sendOneAtATimeRaw sends one event, waits for its alarm on the stream (or,
// in ceiling mode, its PUBACK), and repeats.
func (b *bench) sendOneAtATimeRaw(pubs []*rawPub, payloads [][]byte) (int, string) {
	G := len(pubs)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := range b.n {
		p := pubs[i%G]
		now := b.now()
		b.sched[i], b.sent[i] = now, now
		if err := p.add(i, payloads[i]); err != nil {
			return i, err.Error()
		}
		if err := p.flush(); err != nil {
			return i, "write: " + err.Error()
		}
		if msg := b.awaitAlarm(i, timer); msg != "" {
			return i + 1, msg
		}
	}
	return b.n, ""
}
