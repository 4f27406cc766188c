package hub

import (
	"fmt"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/notify"
)

// fencedJournal is a journal shared by a redundant group of hubs (package
// cluster): an append it refuses may be another hub's to make. On such a
// journal nothing leaves the hub for a transition before it is durable:
// the observers (the notifier, which pushes to phones and posts to
// webhooks and alarm centres) see a held transition only once it is
// written, and a notifier step that cannot be written is not applied at
// all (Record returns notify.ErrNotKept and the notifier tries again). A
// deposed hub, whose every append is refused, therefore alerts nobody,
// and the hub that took over, which read every step the deposed one
// wrote, sends none of them again (docs/scale-out.md).
//
// The single hub keeps its rule: seeing an alarm matters more than the
// disk, so it alerts while its journal cannot write; no other hub would.
type fencedJournal interface {
	Fenced() bool
}

func (h *Hub) fencedLocked() bool {
	f, ok := h.journal.(fencedJournal)
	return ok && f.Fenced()
}

// deferredObs is an observation held back with its held transition.
type deferredObs struct {
	a    *alarm.Alarm // nil: nothing to observe (the transition was refused)
	skip bool
	t    alarm.Transition
}

// deferLocked holds back the observers' view of t, held, until
// flushLocked writes it: one entry per held transition, in order.
func (h *Hub) deferLocked(a *alarm.Alarm, t alarm.Transition, skip bool) {
	if p := h.pq.building; p != nil { // pending.go: waits with its entry
		p.obs = append(p.obs, deferredObs{a: a, t: t, skip: skip})
		return
	}
	h.hs.deferred = append(h.hs.deferred, deferredObs{a: a, t: t, skip: skip})
}

// observeFlushedLocked tells the observers of the oldest held transition,
// just written by flushLocked.
func (h *Hub) observeFlushedLocked() {
	if len(h.hs.deferred) == 0 {
		return
	}
	d := h.hs.deferred[0]
	h.hs.deferred[0] = deferredObs{}
	h.hs.deferred = h.hs.deferred[1:]
	if len(h.hs.deferred) == 0 {
		h.hs.deferred = nil
	}
	if d.skip {
		return
	}
	for _, o := range h.observers {
		o.ObserveTransition(d.a, d.t)
	}
}

// recordFencedLocked is Record on a fenced journal: t is written first and
// applied only once a quorum has it. Nothing is held: the notifier keeps
// the step and tries again (notify.ErrNotKept), and if this hub was
// deposed meanwhile, the step is the new active hub's to make.
func (h *Hub) recordFencedLocked(a *alarm.Alarm, t alarm.Transition) error {
	if len(h.hs.held) > 0 {
		h.flushLocked(true)
		if len(h.hs.held) > 0 {
			return fmt.Errorf("hub: %d earlier transitions not yet journaled (%v): %w", len(h.hs.held), h.hs.lastErr, notify.ErrNotKept)
		}
	}
	if needsSubject(t) {
		s := subjectOf(a)
		t.Subj = &s
	}
	if _, err := h.appendAllLocked([]*alarm.Transition{&t}); err != nil {
		h.m.storeErrors.Inc()
		h.log.Warn("hub: notification step not journaled, so not sent; the notifier tries again", "alarm", a.ID, "action", t.Action, "err", err)
		return fmt.Errorf("hub: %s not journaled: %v: %w", t.Action, err, notify.ErrNotKept)
	}
	t.Subj = nil
	// Every entry queued before t is answered now (the journal writes in
	// order): apply those first, so the observers see the steps in the
	// journal's order.
	h.completeLocked()
	h.appliedLocked(a, t, false)
	h.showLocked(a)
	return nil
}
