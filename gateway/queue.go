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
// This is the seam for the disk spool (a later issue): a spool implements
// the same four methods on disk so that events also survive a restart or a
// power cut. The in-memory queue (NewMemQueue) keeps them only for the life
// of the process. Implementations need not be safe for concurrent use; the
// gateway serialises calls.
type Queue interface {
	// Push appends m. When full it may evict an older telemetry message to
	// make room for an alarm, and returns it so the drop is counted; if m
	// itself cannot be kept it returns ErrQueueFull.
	Push(m Message) (evicted *Message, err error)
	// Front returns the oldest message without removing it.
	Front() (Message, bool)
	// Pop removes the front message once the broker acknowledged it.
	Pop()
	Len() int
}

// MemQueue is a bounded in-memory Queue.
type MemQueue struct {
	buf  []Message
	head int
	max  int
}

var _ Queue = (*MemQueue)(nil)

// NewMemQueue returns a queue holding at most n messages (at least 1).
func NewMemQueue(n int) *MemQueue { return &MemQueue{max: max(1, n)} }

// Push implements Queue. When full, an alarm evicts the oldest telemetry
// message; telemetry, or an alarm when only alarms are queued, is refused.
// Refusing the newest alarm rather than evicting an older one keeps the
// order the hub sees intact; either way the drop is counted and raised.
func (q *MemQueue) Push(m Message) (*Message, error) {
	if q.Len() < q.max {
		q.buf = append(q.buf, m)
		return nil, nil
	}
	if !m.Alarm {
		return nil, ErrQueueFull
	}
	// Never evict the front: it may be in flight right now.
	for i := q.head + 1; i < len(q.buf); i++ {
		if !q.buf[i].Alarm {
			ev := q.buf[i]
			q.buf = append(q.buf[:i], q.buf[i+1:]...)
			q.buf = append(q.buf, m)
			return &ev, nil
		}
	}
	return nil, ErrQueueFull
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
	q.buf[q.head] = Message{} // let the payload be collected
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	} else if q.head > 1024 && q.head > len(q.buf)/2 {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
}

// Len implements Queue.
func (q *MemQueue) Len() int { return len(q.buf) - q.head }
