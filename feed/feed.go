// Package feed is one staff screen's queue of alarm changes between the
// hub's fan-out and the screen's connection.
//
// Why a queue of its own and not a channel: a channel of fixed size forces
// one choice when a screen falls behind, to cut it off, and in an alarm
// storm that cut hid the one call-button press that mattered. A Queue
// instead keeps two lanes. Care alarms (call, fall, wander, hazard …) are
// never dropped and always leave first. Technical alarms (a device silent,
// a gateway offline, a group of them) coalesce: a newer state of the same
// alarm replaces an older frame not yet sent. When the technical lane is
// still too long, its frames are dropped and counted, and the screen gets
// one summary ("N technical updates skipped") that makes it refetch the
// list. Only when even the care lane is full (a connection that takes
// nothing: a dead client) is the subscriber cut, counted, and the client
// reconnects to a full snapshot.
//
// Push never blocks and costs a mutex and an append: the hub calls it
// under its own lock.
package feed

import (
	"sync"

	"github.com/vaka-care/vaka/alarm"
)

// Counter is the part of a Prometheus counter the queue uses.
type Counter interface{ Add(float64) }

// Counters are where a queue counts what it did; nil fields count nothing.
type Counters struct {
	Coalesced     Counter // a newer state replaced an unsent frame of the same alarm
	TechDropped   Counter // technical frames dropped from a slow subscriber's queue
	Summaries     Counter // summary frames queued (each asks the client to refetch)
	Cut           Counter // subscribers cut because even care frames could not be queued
	CareFrames    Counter // care frames queued
	TechnicalSent Counter // technical frames queued
}

func add(c Counter, n int) {
	if c != nil && n > 0 {
		c.Add(float64(n))
	}
}

// Default lane sizes. A care lane of 4,096 distinct care alarms unsent is
// a connection that takes nothing; a technical lane of 1,024 distinct
// alarms is about a second of a storm, after which a refetch is cheaper.
const (
	DefaultCareMax = 4096
	DefaultTechMax = 1024
)

// Frame is what the stream writes: an alarm, or (Alarm nil) a summary of
// Skipped technical updates the client must refetch.
type Frame struct {
	Alarm   *alarm.Alarm
	Skipped int
}

// Care reports whether a is a care alarm: anything a person needs help
// with. Technical alarms (and groups of them) are the rest.
func Care(a *alarm.Alarm) bool { return a.Kind != alarm.KindTechnical }

// lane is a FIFO of alarm frames with an index by alarm id, so a newer
// state of an alarm replaces its unsent frame in place.
type lane struct {
	q    []*alarm.Alarm // q[head:] are unsent; nil entries were dropped
	head int
	at   map[string]int // alarm id → index in q
}

func (l *lane) len() int { return len(l.at) }

func (l *lane) put(a *alarm.Alarm) (coalesced bool) {
	if i, ok := l.at[a.ID]; ok {
		l.q[i] = a
		return true
	}
	if l.at == nil {
		l.at = map[string]int{}
	}
	if l.head > 0 && l.head == len(l.q) {
		l.q, l.head = l.q[:0], 0
	}
	l.at[a.ID] = len(l.q)
	l.q = append(l.q, a)
	return false
}

func (l *lane) pop() *alarm.Alarm {
	for l.head < len(l.q) {
		a := l.q[l.head]
		l.q[l.head] = nil
		l.head++
		if a != nil {
			delete(l.at, a.ID)
			return a
		}
	}
	return nil
}

func (l *lane) clear() int {
	n := len(l.at)
	clear(l.q)
	l.q, l.head = l.q[:0], 0
	clear(l.at)
	return n
}

// Queue is one subscriber's queue. The zero value is not usable: use New.
type Queue struct {
	mu      sync.Mutex
	care    lane
	tech    lane
	skipped int  // technical updates dropped since the last summary left
	dead    bool // cut: the care lane overflowed, or closed
	cut     bool
	ready   chan struct{}
	careMax int
	techMax int
	c       Counters
}

// New returns a queue with lanes of careMax and techMax distinct alarms
// (0 means the default).
func New(careMax, techMax int, c Counters) *Queue {
	if careMax <= 0 {
		careMax = DefaultCareMax
	}
	if techMax <= 0 {
		techMax = DefaultTechMax
	}
	return &Queue{ready: make(chan struct{}, 1), careMax: careMax, techMax: techMax, c: c}
}

// Ready is signalled when frames may be waiting (or the queue was cut).
func (q *Queue) Ready() <-chan struct{} { return q.ready }

func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Push queues a's latest state. It never blocks. It reports false when the
// queue is (now) cut: the subscriber could not take even care frames.
func (q *Queue) Push(a *alarm.Alarm) bool {
	q.mu.Lock()
	if q.dead {
		q.mu.Unlock()
		return false
	}
	if Care(a) {
		if q.care.put(a) {
			add(q.c.Coalesced, 1)
		} else {
			add(q.c.CareFrames, 1)
			if q.care.len() > q.careMax {
				q.dead, q.cut = true, true
				q.care.clear()
				q.tech.clear()
				q.mu.Unlock()
				add(q.c.Cut, 1)
				q.signal()
				return false
			}
		}
	} else {
		switch {
		case q.tech.put(a):
			add(q.c.Coalesced, 1)
		case q.tech.len() > q.techMax:
			n := q.tech.clear()
			if q.skipped == 0 {
				add(q.c.Summaries, 1)
			}
			q.skipped += n
			add(q.c.TechDropped, n)
		default:
			add(q.c.TechnicalSent, 1)
		}
	}
	q.mu.Unlock()
	q.signal()
	return true
}

// Next appends up to max frames to buf, care frames first, then a
// pending summary, then technical frames, and reports whether the
// subscriber was cut (the stream must end; the client reconnects).
func (q *Queue) Next(buf []Frame, max int) ([]Frame, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cut {
		return buf, true
	}
	for n := 0; n < max; n++ {
		if a := q.care.pop(); a != nil {
			buf = append(buf, Frame{Alarm: a})
			continue
		}
		if q.skipped > 0 {
			buf = append(buf, Frame{Skipped: q.skipped})
			q.skipped = 0
			continue
		}
		a := q.tech.pop()
		if a == nil {
			break
		}
		buf = append(buf, Frame{Alarm: a})
	}
	if q.care.len() > 0 || q.tech.len() > 0 || q.skipped > 0 {
		q.signal() // more than max waiting: come back
	}
	return buf, false
}

// Len returns the care and technical frames waiting.
func (q *Queue) Len() (care, technical int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.care.len(), q.tech.len()
}

// Close marks the queue dead: later pushes are refused without counting.
func (q *Queue) Close() {
	q.mu.Lock()
	q.dead = true
	q.care.clear()
	q.tech.clear()
	q.mu.Unlock()
}
