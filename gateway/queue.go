package gateway

import "errors"

// Message is one encoded event waiting for the broker.
type Message struct {
	ID      string // event id, for logs
	Seq     uint64 // gateway sequence
	Alarm   bool   // alarm-class: kept in preference to telemetry when full
	Payload []byte // encoded event.Event
}

// ErrQueueFull is returned by Queue.Push when the message could not be kept.
var ErrQueueFull = errors.New("gateway: outbox full")

// Queue is the outbox: events accepted from drivers but not yet
// acknowledged by the broker, oldest first. The gateway sends only the
// front and removes it after the broker's PUBACK, so order is kept across
// reconnects.
//
// The in-memory queue (NewMemQueue) keeps events only for the life of the
// process; the disk spool (OpenSpool) implements the same methods on disk so
// that they also survive a restart, a SIGKILL or a power cut.
// Implementations need not be safe for concurrent use; the gateway
// serialises calls.
type Queue interface {
	// Push appends m. When full it may evict older telemetry messages to
	// make room for an alarm, and returns them so each drop is counted; if
	// m itself cannot be kept it returns ErrQueueFull.
	Push(m Message) (evicted []Message, err error)
	// Front returns the oldest message without removing it.
	Front() (Message, bool)
	// Pop removes the front message once the broker acknowledged it.
	Pop()
	Len() int
}

// msgOverhead approximates the bookkeeping bytes of one message beyond its
// payload (id, sequence, record framing), for the byte bound.
const msgOverhead = 64

func msgSize(m *Message) int64 { return int64(len(m.Payload) + len(m.ID) + msgOverhead) }

// MemQueue is a bounded in-memory Queue.
type MemQueue struct {
	buf      []Message
	head     int
	max      int
	maxBytes int64 // 0: no byte bound
	bytes    int64
}

var _ Queue = (*MemQueue)(nil)

// NewMemQueue returns a queue holding at most n messages (at least 1).
func NewMemQueue(n int) *MemQueue { return &MemQueue{max: max(1, n)} }

// SetMaxBytes bounds the queue also by the approximate bytes it holds
// (payloads plus a small per-message overhead); 0 removes the bound.
func (q *MemQueue) SetMaxBytes(n int64) { q.maxBytes = max(0, n) }

// Bytes is the approximate size of what the queue holds.
func (q *MemQueue) Bytes() int64 { return q.bytes }

func (q *MemQueue) full(extra int64) bool {
	return q.Len() >= q.max || (q.maxBytes > 0 && q.bytes+extra > q.maxBytes)
}

// Push implements Queue. When full (by count or bytes), an alarm evicts the
// oldest telemetry messages until it fits; telemetry, or an alarm when only
// alarms are queued, is refused. Refusing the newest alarm rather than
// evicting an older one keeps the order the hub sees intact; either way the
// drop is counted and raised.
func (q *MemQueue) Push(m Message) ([]Message, error) {
	size := msgSize(&m)
	if !q.full(size) {
		q.buf = append(q.buf, m)
		q.bytes += size
		return nil, nil
	}
	if !m.Alarm || (q.maxBytes > 0 && size > q.maxBytes) {
		return nil, ErrQueueFull
	}
	// Check first that evicting telemetry makes enough room, so a refused
	// alarm costs no telemetry. Never evict the front: it may be in flight.
	n, freed := 0, int64(0)
	for i := q.head + 1; i < len(q.buf) && (q.Len()-n >= q.max || (q.maxBytes > 0 && q.bytes-freed+size > q.maxBytes)); i++ {
		if !q.buf[i].Alarm {
			n++
			freed += msgSize(&q.buf[i])
		}
	}
	if q.Len()-n >= q.max || (q.maxBytes > 0 && q.bytes-freed+size > q.maxBytes) {
		return nil, ErrQueueFull
	}
	evicted := make([]Message, 0, n)
	kept := q.buf[:q.head+1]
	for _, x := range q.buf[q.head+1:] {
		if len(evicted) < n && !x.Alarm {
			evicted = append(evicted, x)
			continue
		}
		kept = append(kept, x)
	}
	clear(q.buf[len(kept):])
	q.buf = append(kept, m)
	q.bytes += size - freed
	return evicted, nil
}

// Front implements Queue.
func (q *MemQueue) Front() (Message, bool) {
	if q.Len() == 0 {
		return Message{}, false
	}
	return q.buf[q.head], true
}

// Pop implements Queue.
func (q *MemQueue) Pop() {
	if q.Len() == 0 {
		return
	}
	q.bytes -= msgSize(&q.buf[q.head])
	q.buf[q.head] = Message{} // let the payload be collected
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head, q.bytes = q.buf[:0], 0, 0
	} else if q.head > 1024 && q.head > len(q.buf)/2 {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
}

// Len implements Queue.
func (q *MemQueue) Len() int { return len(q.buf) - q.head }
