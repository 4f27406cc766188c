package tillsyn

import (
	"time"
)

// Record is a supervision record: one look-in's final result, as the hub
// journals it. Ids only, never names.
type Record struct {
	LookIn
	At time.Time `json:"at"` // when the result became final
	Result
	// LedTo is what the result led to: "alarm:<id>" (an alarm raised),
	// "open_alarm" (an alarm was already open), "visit" (a physical visit
	// asked for by VisitBy), or "" (all right: nothing).
	LedTo   string    `json:"led_to,omitempty"`
	VisitBy time.Time `json:"visit_by,omitzero"`
	Alarm   string    `json:"alarm,omitempty"` // the alarm raised, if any
}

// Visit is a physical visit staff made and recorded, so the pilot compares
// the look-ins with what really happened.
type Visit struct {
	Site     string    `json:"site"`
	Resident string    `json:"resident"`
	Unit     string    `json:"unit,omitempty"`
	Night    string    `json:"night"`
	Wall     string    `json:"wall,omitempty"` // the look-in it answers, if any
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Note     string    `json:"note,omitempty"`
}

// Final reports whether result r, evaluated at now, settles look-in l: an
// all-right result at once, any other when the tolerance has run out.
func Final(l LookIn, r Result, now time.Time) bool {
	return r.Outcome == AllRight || !now.Before(l.Deadline)
}

// NeedsVisit reports whether a final result asks for a physical visit:
// cannot tell always does; not all right does unless an alarm sends staff
// anyway (the plan's action is an alarm, or an alarm was already open).
func (p *Plan) NeedsVisit(r Result) bool {
	switch r.Outcome {
	case CannotTell:
		return true
	case NotAllRight:
		return p.Action.Kind != DoAlarm
	}
	return false
}

// Recheck is how often a look-in that is not yet all right is evaluated
// again until its deadline.
const Recheck = 15 * time.Second

// Queue holds look-ins waiting for their planned time or a re-check, in
// time order. It is not safe for concurrent use.
//
// Why its own heap and struct keys rather than container/heap and
// LookIn.Key: a region queues 30,000 look-ins a night and takes 10,000 at
// one instant; boxing each item into an interface and building each key
// string made half of the queue's cost and much of its garbage.
type Queue struct {
	h    []qitem
	keys map[qkey]struct{}
}

type qitem struct {
	next time.Time
	l    *LookIn
}

// qkey identifies a queued look-in, as LookIn.Key does, without building
// a string.
type qkey struct{ site, resident, night, wall string }

func keyOf(l *LookIn) qkey { return qkey{l.Site, l.Resident, l.Night, l.Wall} }

func (q *Queue) push(it qitem) {
	q.h = append(q.h, it)
	for i := len(q.h) - 1; i > 0; {
		up := (i - 1) / 2
		if !q.h[i].next.Before(q.h[up].next) {
			break
		}
		q.h[i], q.h[up] = q.h[up], q.h[i]
		i = up
	}
}

func (q *Queue) pop() qitem {
	top := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h[last] = qitem{}
	q.h = q.h[:last]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < len(q.h) && q.h[l].next.Before(q.h[small].next) {
			small = l
		}
		if r := l + 1; r < len(q.h) && q.h[r].next.Before(q.h[small].next) {
			small = r
		}
		if small == i {
			break
		}
		q.h[i], q.h[small] = q.h[small], q.h[i]
		i = small
	}
	return top
}

// Add queues l for its planned time unless it is queued already.
func (q *Queue) Add(l LookIn) bool {
	if q.keys == nil {
		q.keys = map[qkey]struct{}{}
	}
	k := keyOf(&l)
	if _, ok := q.keys[k]; ok {
		return false
	}
	q.keys[k] = struct{}{}
	q.push(qitem{next: l.Planned, l: &l})
	return true
}

// Due removes and returns the look-ins due at now (at most max).
func (q *Queue) Due(now time.Time, max int) []LookIn {
	var out []LookIn
	if len(q.h) > 0 && !q.h[0].next.After(now) && max > 0 {
		out = make([]LookIn, 0, min(max, len(q.h))) // one array, not five as it grows
	}
	for len(q.h) > 0 && !q.h[0].next.After(now) && len(out) < max {
		it := q.pop()
		delete(q.keys, keyOf(it.l))
		out = append(out, *it.l)
	}
	return out
}

// DueAppend is Due appending to dst (returned): a caller taking chunk
// after chunk reuses one array.
func (q *Queue) DueAppend(dst []LookIn, now time.Time, max int) []LookIn {
	for n := 0; len(q.h) > 0 && !q.h[0].next.After(now) && n < max; n++ {
		it := q.pop()
		delete(q.keys, keyOf(it.l))
		dst = append(dst, *it.l)
	}
	return dst
}

// Again re-queues l for a re-check at the earlier of at and its deadline.
func (q *Queue) Again(l LookIn, at time.Time) {
	if l.Deadline.Before(at) {
		at = l.Deadline
	}
	if q.keys == nil {
		q.keys = map[qkey]struct{}{}
	}
	q.keys[keyOf(&l)] = struct{}{}
	q.push(qitem{next: at, l: &l})
}

// Len is how many look-ins are queued.
func (q *Queue) Len() int { return len(q.h) }

// Next is the earliest queued time.
func (q *Queue) Next() (time.Time, bool) {
	if len(q.h) == 0 {
		return time.Time{}, false
	}
	return q.h[0].next, true
}

// Pending lists the queued look-ins (any order).
func (q *Queue) Pending() []LookIn {
	out := make([]LookIn, 0, len(q.h))
	for _, it := range q.h {
		out = append(out, *it.l)
	}
	return out
}

// LateAfter is how far past its deadline a look-in's first evaluation may
// come before it counts as not made (the hub was not running): then it is
// "cannot tell" (late), never judged on later sensor state.
const LateAfter = time.Minute

// Settle evaluates the look-ins due at now. A final result becomes a
// record (with VisitBy set when it asks for a visit); any other is
// re-queued for Recheck. plan returns a look-in's plan (nil: the plan was
// removed, the look-in is dropped); snap returns the resident's snapshot
// at now. At most max look-ins are handled per call.
func (q *Queue) Settle(now time.Time, max int, plan func(LookIn) *Plan, snap func(LookIn, *Plan) Snapshot) []Record {
	var out []Record
	for _, l := range q.Due(now, max) {
		p := plan(l)
		if p == nil {
			continue
		}
		var s Snapshot
		if NeedsSnapshot(l, now) {
			s = snap(l, p)
		}
		rec, final := Judge(l, p, s, now)
		if !final {
			q.Again(l, now.Add(Recheck))
			continue
		}
		out = append(out, rec)
	}
	return out
}

// NeedsSnapshot reports whether judging l at now reads sensor state: a
// look-in first judged more than LateAfter past its deadline is "cannot
// tell (late)" without it.
func NeedsSnapshot(l LookIn, now time.Time) bool { return now.Sub(l.Deadline) <= LateAfter }

// Judge is one look-in's judgement at now from s, the resident's state as
// of now (ignored when NeedsSnapshot is false). It returns the supervision
// record and whether it is final; one not final is to be looked at again
// at now+Recheck. Why apart from Settle: the hub takes every due
// resident's snapshot at the tick and judges them afterwards, spread out,
// so a region's burst does not crowd the alarm path; the result is the
// same as judging at once, since it depends only on l, p, s and now.
func Judge(l LookIn, p *Plan, s Snapshot, now time.Time) (Record, bool) {
	rec, final, _ := JudgeAppend(l, p, s, now, nil)
	return rec, final
}

// JudgeAppend is Judge with the record's evidence appended to buf, which
// it returns (grown if it had to be): a chunk of look-ins judged into one
// array of evidence instead of one per look-in. The record is Judge's;
// its Evidence is capped, so later appends to buf never change it.
func JudgeAppend(l LookIn, p *Plan, s Snapshot, now time.Time, buf []Evidence) (Record, bool, []Evidence) {
	var r Result
	n0 := len(buf)
	if !NeedsSnapshot(l, now) {
		r = Result{Outcome: CannotTell, Cause: CauseLate, Reasons: []string{CauseWords(CauseLate)}}
	} else {
		if buf == nil {
			buf = make([]Evidence, 0, len(s.Sensors))
		}
		r, buf = evaluate(p.Criteria, p.Limits, s, buf)
	}
	if !Final(l, r, now) {
		return Record{}, false, buf[:n0] // looked at again later: its evidence is not kept
	}
	rec := Record{LookIn: l, At: now, Result: r}
	if p.NeedsVisit(r) {
		within := p.Action.VisitWithin
		if within <= 0 {
			within = DefaultVisitWithin
		}
		rec.VisitBy = now.Add(within)
		rec.LedTo = "visit"
	}
	return rec, true, buf
}

// DefaultVisitWithin is the deadline of a requested visit when the plan
// sets none.
const DefaultVisitWithin = 30 * time.Minute
