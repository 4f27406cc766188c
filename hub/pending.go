package hub

import (
	"github.com/vaka-care/vaka/alarm"
)

// Pending appends: the quorum round trip outside the hub's lock.
//
// On the replicated journal (package cluster) an append is a round trip
// through Raft on three nodes. Made under the hub's lock, as a write(2)
// to the local file is, it let no two events share a round trip: every
// alarm cost one stream message and the lock was held while the
// replicas answered. Here the hub takes the journal's order under its
// lock (asyncAppender: the transitions are encoded and queued at once,
// behind everything queued before) and waits for the quorum outside it,
// so transitions of events handled meanwhile go into the same message
// (the journal's group commit, cluster/batch.go).
//
// The durability rule does not change: an event is acknowledged (PUBACK,
// SCAIP snu 0, HTTP 200) only once every transition it caused is
// acknowledged by a quorum (acceptWith waits for the entry); the notifier
// sees a transition only then (the journal is fenced: fenced.go); and the
// staff screens are shown the change once it is journaled, as before.
// If the journal refuses an entry, it refuses every entry queued behind
// it and every later append until ResumeAppends: the hub then holds the
// refused transitions in memory, in order, exactly as if a synchronous
// append had failed (durable.go), their events are answered busy (a
// resend too, until they are written), and only then lets appends
// through again. So nothing is ever written after a transition that was
// refused, and a batch refused under a stale term (another hub active)
// acknowledges none of its events.

// asyncAppender is a journal that takes the order of transitions at once
// and their quorum acknowledgement later (*cluster.Journal).
type asyncAppender interface {
	// AppendAllAsync queues ts (all or none) behind everything queued
	// before; done is called from another goroutine, in queue order,
	// with each transition's position or with the error that refused
	// them. A refusal refuses everything after it until ResumeAppends.
	AppendAllAsync(ts []*alarm.Transition, done func(pos []uint64, err error))
	ResumeAppends()
}

// pendingEntry is one AppendAllAsync call waiting for its quorum.
type pendingEntry struct {
	ts   []alarm.Transition // copies, as holdLocked keeps them
	obs  []deferredObs      // one per transition: the observers' view, once written
	show []*alarm.Alarm     // alarms to show on the screens once written
	keys []string           // events answered only once written
	done chan struct{}      // closed by the journal's callback
	pos  []uint64           // set before done is closed
	err  error
	// processed is set, under the hub's lock, once completeLocked has
	// applied the outcome.
	processed bool
}

// pendingState is guarded by Hub.mu.
type pendingState struct {
	q        []*pendingEntry // in journal order
	building *pendingEntry   // the entry commitRaiseLocked is filling
	last     *pendingEntry   // the newest entry
	enqueued uint64          // entries ever queued
	running  bool            // a completer goroutine is on its way
	keys     map[string]*pendingEntry
	halted   bool // an entry was refused: ResumeAppends once q is empty
}

// asyncLocked returns the journal's asyncAppender when transitions may be
// queued now: the journal is fenced (nothing is alerted before it is
// written), has no held transitions to write first.
func (h *Hub) asyncLocked() (asyncAppender, bool) {
	aj, ok := h.journal.(asyncAppender)
	if !ok || len(h.hs.held) > 0 || !h.fencedLocked() {
		return nil, false
	}
	return aj, true
}

// enqueueLocked queues ts on aj; commitRaiseLocked then files the
// observers' view of each in the entry (deferLocked).
func (h *Hub) enqueueLocked(aj asyncAppender, ts []*alarm.Transition) {
	p := &pendingEntry{ts: make([]alarm.Transition, len(ts)), done: make(chan struct{})}
	for i, t := range ts {
		p.ts[i] = heldCopy(t)
	}
	h.pq.q = append(h.pq.q, p)
	h.pq.building, h.pq.last = p, p
	h.pq.enqueued++
	aj.AppendAllAsync(ts, func(pos []uint64, err error) {
		p.pos, p.err = pos, err
		close(p.done)
	})
	if !h.pq.running {
		h.pq.running = true
		go h.completePending()
	}
}

// completePending applies the outcome of each entry, in order, as the
// journal answers, and returns when none is left.
func (h *Hub) completePending() {
	for {
		h.mu.Lock()
		h.completeLocked()
		if len(h.pq.q) == 0 {
			h.pq.running = false
			h.mu.Unlock()
			return
		}
		head := h.pq.q[0]
		h.mu.Unlock()
		<-head.done
	}
}

// completeLocked applies the outcome of every answered entry at the head
// of the queue: written, the positions go into the alarms' history, the
// observers are told and the screens shown; refused, the transitions are
// held (durable.go), behind nothing, since everything after them was
// refused too.
func (h *Hub) completeLocked() {
	for len(h.pq.q) > 0 {
		p := h.pq.q[0]
		select {
		case <-p.done:
		default:
			return
		}
		h.pq.q[0] = nil
		h.pq.q = h.pq.q[1:]
		p.processed = true
		if p.err == nil {
			h.writtenLocked(p)
		} else {
			h.refusedLocked(p)
		}
		for _, a := range p.show {
			h.showNowLocked(a)
		}
		p.ts, p.obs, p.show = nil, nil, nil
	}
	h.pq.q = nil
	if h.pq.halted {
		h.pq.halted = false
		if aj, ok := h.journal.(asyncAppender); ok {
			aj.ResumeAppends()
		}
		h.raiseStoreTroubleLocked(h.now())
	}
}

func (h *Hub) writtenLocked(p *pendingEntry) {
	for i := range p.ts {
		t := &p.ts[i]
		t.Seq, t.Rec = p.pos[i], int64(p.pos[i])
		if a := h.alarms[t.Alarm]; a != nil {
			a.Journaled(t)
		}
	}
	for i, d := range p.obs {
		if d.skip {
			continue
		}
		if i < len(p.pos) {
			d.t.Seq, d.t.Rec = p.pos[i], int64(p.pos[i])
		}
		for _, o := range h.observers {
			o.ObserveTransition(d.a, d.t)
		}
	}
	for _, k := range p.keys {
		if h.pq.keys[k] == p {
			delete(h.pq.keys, k)
		}
	}
}

func (h *Hub) refusedLocked(p *pendingEntry) {
	h.pq.halted = true
	h.storeFailedLocked(p.err)
	h.hs.held = append(h.hs.held, p.ts...)
	h.hs.deferred = append(h.hs.deferred, p.obs...)
	h.setHeldLocked()
	for _, k := range p.keys {
		if h.pq.keys[k] == p {
			delete(h.pq.keys, k)
		}
		h.holdEventLocked(k)
	}
}

// pendingMark is where an operation under the lock starts; pendingSince
// returns the newest entry it queued (nil: none). Waiting for that one is
// enough: an entry is written only after every entry before it was.
func (h *Hub) pendingMark() uint64 { return h.pq.enqueued }

func (h *Hub) pendingSince(mark uint64, key string) *pendingEntry {
	if h.pq.enqueued == mark {
		return nil
	}
	p := h.pq.last
	if key != "" {
		p.keys = append(p.keys, key)
		if h.pq.keys == nil {
			h.pq.keys = map[string]*pendingEntry{}
		}
		h.pq.keys[key] = p
	}
	return p
}

// wait waits, without the hub's lock, for p's quorum; it reports whether
// p was written.
func (p *pendingEntry) wait() bool {
	<-p.done
	return p.err == nil
}

// pendingForLocked returns the entry an event's transitions wait in, if any.
func (h *Hub) pendingForLocked(key string) *pendingEntry { return h.pq.keys[key] }

// deferShowLocked files a for the screens with the newest entry still
// waiting for its quorum, and reports whether it did.
func (h *Hub) deferShowLocked(a *alarm.Alarm) bool {
	p := h.pq.last
	if p == nil || p.processed {
		return false
	}
	for _, x := range p.show {
		if x == a {
			return true
		}
	}
	p.show = append(p.show, a)
	return true
}

// waitPending waits until every queued entry is answered and applied.
func (h *Hub) waitPending() {
	for {
		h.mu.Lock()
		h.completeLocked()
		if len(h.pq.q) == 0 {
			h.mu.Unlock()
			return
		}
		last := h.pq.q[len(h.pq.q)-1]
		h.mu.Unlock()
		<-last.done
	}
}
