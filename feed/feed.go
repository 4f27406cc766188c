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
// list.
//
// A screen that is behind but still reading is never cut, however far
// behind: a lane holds pointers to the alarm snapshots the hub made for
// the change anyway (one per change, shared by every screen), one per
// distinct alarm, so a long care lane costs an index entry per alarm.
// A subscriber is cut (counted; the client reconnects to a full snapshot)
// only when it makes no progress, taking no frame for StallTimeout while
// frames wait (a connection whose socket accepts nothing), or when its
// care lane reaches CareMax distinct alarms, a bound far above a region's
// open alarms that only keeps memory finite.
//
// Push never blocks and costs a mutex, a clock read and an append: the
// hub calls it under its own lock.
package feed

import (
	"sync"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// Counter is the part of a Prometheus counter the queue uses.
type Counter interface{ Add(float64) }

// Counters are where a queue counts what it did; nil fields count nothing.
type Counters struct {
	Coalesced     Counter // a newer state replaced an unsent frame of the same alarm
	TechDropped   Counter // technical frames dropped from a slow subscriber's queue
	Summaries     Counter // summary frames queued (each asks the client to refetch)
	Cut           Counter // subscribers cut because their care lane reached CareMax
	Stalled       Counter // subscribers cut because they took nothing for StallTimeout
	CareFrames    Counter // care frames queued
	TechnicalSent Counter // technical frames queued
}

func add(c Counter, n int) {
	if c != nil && n > 0 {
		c.Add(float64(n))
	}
}

// Defaults. A care lane of a million distinct unsent care alarms is four
// times a region's 250,000 supervised buttons all pressed at once: only a
// bound on memory (an index entry of 45–65 bytes per alarm, measured, plus
// the alarm's snapshot, which the hub shares among all screens). A
// technical lane of 1,024 distinct alarms is about a second of a storm,
// after which a refetch is cheaper. A screen that accepts nothing for 30 s
// is gone: the hub pings every 15 s, and the app itself gives up a silent
// stream after 60 s and reconnects.
const (
	DefaultCareMax      = 1_000_000
	DefaultTechMax      = 1024
	DefaultStallTimeout = 30 * time.Second
)

// Options configure a queue; zero fields take the defaults.
type Options struct {
	// CareMax bounds distinct unsent care alarms; beyond it the
	// subscriber is cut (DefaultCareMax).
	CareMax int
	// TechMax bounds distinct unsent technical alarms; beyond them the
	// technical lane is dropped and summarised (DefaultTechMax).
	TechMax int
	// StallTimeout is how long frames may wait while the consumer takes
	// none before the subscriber is cut (DefaultStallTimeout).
	StallTimeout time.Duration
	// Now is the clock (time.Now).
	Now      func() time.Time
	Counters Counters
}

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
// state of an alarm replaces its unsent frame in place. Positions in the
// index are absolute (base counts the entries compacted away), so
// compacting the slice never rewrites the index.
type lane struct {
	q    []*alarm.Alarm // q[head:] are unsent
	head int
	base int            // absolute position of q[0]
	at   map[string]int // alarm id → absolute position
}

// Compaction and release thresholds: a lane that is always a little
// behind never empties, so its sent prefix is moved out once it is at
// least half the slice; a lane that held a long backlog gives its memory
// back when it empties.
const (
	compactMin = 1024
	keepCap    = 4096
)

func (l *lane) len() int { return len(l.at) }

func (l *lane) put(a *alarm.Alarm) (coalesced bool) {
	if i, ok := l.at[a.ID]; ok {
		l.q[i-l.base] = a
		return true
	}
	if l.at == nil {
		l.at = map[string]int{}
	}
	if l.head >= compactMin && 2*l.head >= len(l.q) {
		n := copy(l.q, l.q[l.head:])
		clear(l.q[n:])
		l.q = l.q[:n]
		l.base += l.head
		l.head = 0
	}
	l.at[a.ID] = l.base + len(l.q)
	l.q = append(l.q, a)
	return false
}

func (l *lane) pop() *alarm.Alarm {
	if l.head == len(l.q) {
		return nil
	}
	a := l.q[l.head]
	l.q[l.head] = nil
	l.head++
	delete(l.at, a.ID)
	if l.head == len(l.q) {
		l.reset()
	}
	return a
}

// reset empties the lane, giving a long backlog's memory back.
func (l *lane) reset() {
	if cap(l.q) > keepCap {
		l.q, l.at = nil, nil
	} else {
		l.q = l.q[:0]
	}
	l.head, l.base = 0, 0
}

// clear drops every unsent frame and returns how many there were.
func (l *lane) clear() int {
	n := len(l.at)
	clear(l.q)
	if n > 0 && cap(l.q) <= keepCap {
		clear(l.at)
	}
	l.reset()
	return n
}

// Queue is one subscriber's queue. The zero value is not usable: use New.
type Queue struct {
	mu      sync.Mutex
	care    lane
	tech    lane
	skipped int       // technical updates dropped since the last summary left
	since   time.Time // frames have waited, the consumer taking none, since; zero: none wait
	dead    bool      // cut or closed: pushes are refused
	cut     string    // why it was cut: "" (not cut), "stalled", "full"
	ready   chan struct{}
	o       Options
}

// Reasons a queue was cut (CutReason).
const (
	CutStalled = "stalled" // no frame taken for StallTimeout while frames waited
	CutFull    = "full"    // CareMax distinct care alarms unsent
)

// New returns a queue.
func New(o Options) *Queue {
	if o.CareMax <= 0 {
		o.CareMax = DefaultCareMax
	}
	if o.TechMax <= 0 {
		o.TechMax = DefaultTechMax
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Queue{ready: make(chan struct{}, 1), o: o}
}

// StallTimeout is how long the queue waits for a consumer that takes
// nothing; the stream uses it as its write deadline too, so a write the
// socket does not take within it ends the connection.
func (q *Queue) StallTimeout() time.Duration { return q.o.StallTimeout }

// Ready is signalled when frames may be waiting (or the queue was cut).
func (q *Queue) Ready() <-chan struct{} { return q.ready }

func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *Queue) waiting() bool { return q.care.len() > 0 || q.tech.len() > 0 || q.skipped > 0 }

// Push queues a's latest state. It never blocks. It reports false when the
// queue is (now) cut: its consumer took nothing for StallTimeout while
// frames waited, or its care lane is full (CutReason says which).
func (q *Queue) Push(a *alarm.Alarm) bool {
	now := q.o.Now()
	c := &q.o.Counters
	q.mu.Lock()
	if q.dead {
		q.mu.Unlock()
		return false
	}
	if !q.since.IsZero() && now.Sub(q.since) >= q.o.StallTimeout {
		q.cutLocked(CutStalled)
		q.mu.Unlock()
		add(c.Stalled, 1)
		q.signal()
		return false
	}
	if Care(a) {
		if q.care.put(a) {
			add(c.Coalesced, 1)
		} else {
			add(c.CareFrames, 1)
			if q.care.len() > q.o.CareMax {
				q.cutLocked(CutFull)
				q.mu.Unlock()
				add(c.Cut, 1)
				q.signal()
				return false
			}
		}
	} else {
		switch {
		case q.tech.put(a):
			add(c.Coalesced, 1)
		case q.tech.len() > q.o.TechMax:
			n := q.tech.clear()
			if q.skipped == 0 {
				add(c.Summaries, 1)
			}
			q.skipped += n
			add(c.TechDropped, n)
		default:
			add(c.TechnicalSent, 1)
		}
	}
	if q.since.IsZero() {
		q.since = now
	}
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *Queue) cutLocked(why string) {
	q.dead, q.cut = true, why
	q.care.clear()
	q.tech.clear()
	q.skipped = 0
	q.since = time.Time{}
}

// Next appends up to max frames to buf, care frames first, then a
// pending summary, then technical frames, and reports whether the
// subscriber was cut (the stream must end; the client reconnects).
// Taking a frame is the consumer's progress: it restarts the stall clock.
func (q *Queue) Next(buf []Frame, max int) ([]Frame, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cut != "" {
		return buf, true
	}
	n0 := len(buf)
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
	switch {
	case !q.waiting():
		q.since = time.Time{}
	case len(buf) > n0:
		q.since = q.o.Now()
		q.signal() // more than max waiting: come back
	}
	return buf, false
}

// Stalled reports that the consumer could not hand its frames on within
// StallTimeout (its connection accepted nothing: a write deadline
// passed). The queue is cut and counted as stalled, once, unless it was
// already cut or closed.
func (q *Queue) Stalled() {
	q.mu.Lock()
	if q.dead {
		q.mu.Unlock()
		return
	}
	q.cutLocked(CutStalled)
	q.mu.Unlock()
	add(q.o.Counters.Stalled, 1)
	q.signal()
}

// Len returns the care and technical frames waiting.
func (q *Queue) Len() (care, technical int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.care.len(), q.tech.len()
}

// CutReason says why the queue was cut (CutStalled, CutFull), or "".
func (q *Queue) CutReason() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cut
}

// Close marks the queue dead: later pushes are refused without counting.
func (q *Queue) Close() {
	q.mu.Lock()
	q.dead = true
	q.care.clear()
	q.tech.clear()
	q.skipped = 0
	q.since = time.Time{}
	q.mu.Unlock()
}
