package hub

import (
	"errors"
	"fmt"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
)

// The hub's durability rule: a sender is told an event was kept (MQTT
// PUBACK, SCAIP snu 0, HTTP 200 to a tracker) only once every alarm
// transition the event caused is in the journal.
//
// When the journal cannot write (a full disk, an I/O error) a transition is
// still applied and shown to staff — seeing the alarm matters more than the
// disk — but it waits in memory, in order, behind any other held
// transition. The event is answered "busy, send it again" (snu 6; over MQTT
// 3.1.1 no PUBACK and a closed connection), so the gateway keeps its spooled
// copy. A hub_integrity alarm is raised at the first failure and held like
// any other transition. Every commit, and every tick, tries to write the
// held transitions again: when space returns they reach the journal in their
// original order, the integrity alarm is restored, and a resent event whose
// transitions are now durable is acknowledged without being evaluated twice.
// No restart is needed.

// maxHeld bounds the transitions held in memory. Past it the hub refuses
// new events before evaluating them (busy): the gateways hold them instead,
// on their own disks. Staff actions, the notifier and supervision are still
// held (their volume is bounded by the open alarms).
const maxHeld = 50_000

// retryEvery is how often a commit may retry the journal while it fails:
// each retry is a write(2) that fails fast, but a burst of events should
// not turn into a burst of failing syscalls.
const retryEvery = 20 * time.Millisecond

// errNotKept is what a staff action or notifier step gets when the journal
// cannot write and too much is already held.
var errNotKept = errors.New("hub: alarm journal cannot write; nothing was changed, try again")

// heldState is the in-memory side of the durability rule; it is guarded by
// Hub.mu.
type heldState struct {
	held    []alarm.Transition
	events  map[string]struct{} // keys of events with held transitions
	lastTry time.Time           // wall clock of the last failed write
	lastErr error
	lastLog time.Time
	failed  int64 // writes failed since the journal last worked
	// syncFails is the journal's fsync failure count last seen by Tick.
	syncFails int64
	// kept is how many of the last persistAllLocked's transitions are
	// durable; deferred are the observations of held transitions on a
	// fenced journal, one per held transition (fenced.go).
	kept     int
	deferred []deferredObs
}

// holdLocked keeps t in memory until the journal takes it. A raise's
// record carries the alarm itself (applyLocked), which will change before
// it is written: it is held with a copy of the alarm as raised; a
// subject points into scratch space, and is copied too.
func (h *Hub) holdLocked(t *alarm.Transition) {
	h.hs.held = append(h.hs.held, heldCopy(t))
}

// heldCopy is t as it must be kept to be written later (holdLocked,
// pending.go): the raise's alarm and the subject copied.
func heldCopy(t *alarm.Transition) alarm.Transition {
	c := *t
	if c.Raise != nil {
		snap := *c.Raise
		c.Raise = &snap
	}
	if c.Subj != nil {
		subj := *c.Subj // commitRaiseLocked's, reused by the next commit
		c.Subj = &subj
	}
	return c
}

// persistAllLocked writes ts (one transition, or a raise and its first
// notify steps) to the journal in one write(2), behind anything already
// held, or holds them all, in order. It reports whether they are durable.
func (h *Hub) persistAllLocked(ts []*alarm.Transition) bool {
	h.hs.kept = 0
	if len(h.hs.held) > 0 {
		h.flushLocked(false)
	}
	if aj, ok := h.asyncLocked(); ok {
		// pending.go: the order is taken now, the quorum waited for
		// outside the lock; until then ts count as held (their
		// observers wait in the entry).
		h.enqueueLocked(aj, ts)
		return true
	}
	if len(h.hs.held) == 0 {
		n, err := h.appendAllLocked(ts)
		h.hs.kept = n
		if err == nil {
			return true
		}
		h.storeFailedLocked(err)
		ts = ts[n:] // those before n are durable
	}
	for _, t := range ts {
		h.holdLocked(t)
	}
	h.setHeldLocked()
	return false
}

// batchAppender is a journal that writes several transitions at once,
// all or none: the local file, in one write(2).
type batchAppender interface {
	AppendAll(ts []*alarm.Transition) error
}

// appendAllLocked writes ts with one AppendAll where the journal has it,
// else one Append each (the replicated journal: a quorum round trip
// each). It returns how many of ts are durable: on an error, those
// before it, which must not be written again.
func (h *Hub) appendAllLocked(ts []*alarm.Transition) (int, error) {
	if h.ds.on {
		return h.appendDeferredLocked(ts) // syncwait.go
	}
	if b, ok := h.journal.(batchAppender); ok {
		if err := b.AppendAll(ts); err != nil {
			return 0, err
		}
		return len(ts), nil
	}
	for i, t := range ts {
		if err := h.journal.Append(t); err != nil {
			return i, err
		}
	}
	return len(ts), nil
}

// storeFailedLocked counts and logs a failed journal write. The first
// failure after a working journal queues a hub_integrity alarm (raised by
// raiseStoreTroubleLocked once the current commit is done).
func (h *Hub) storeFailedLocked(err error) {
	h.m.storeErrors.Inc()
	first := h.hs.failed == 0 && len(h.hs.held) == 0
	h.hs.failed++
	h.hs.lastErr = err
	h.hs.lastTry = time.Now()
	if first || time.Since(h.hs.lastLog) > 10*time.Second {
		h.hs.lastLog = time.Now()
		h.log.Error("hub: alarm journal cannot write; transitions are held in memory and events answered busy",
			"held", len(h.hs.held), "failed_writes", h.hs.failed, "err", err)
	}
	if first {
		h.integrityDue = fmt.Sprintf("larmjournalen kan inte skriva / alarm journal cannot write: %v. "+
			"Händelser kvitteras inte förrän den kan / events are not acknowledged until it can", err)
	}
}

// flushLocked writes held transitions in order until one fails. Unless
// force is set it does nothing within retryEvery of the last failure.
func (h *Hub) flushLocked(force bool) {
	if len(h.hs.held) == 0 || (!force && time.Since(h.hs.lastTry) < retryEvery) {
		return
	}
	for len(h.hs.held) > 0 {
		if err := h.journal.Append(&h.hs.held[0]); err != nil {
			h.storeFailedLocked(err)
			h.setHeldLocked()
			return
		}
		if a := h.alarms[h.hs.held[0].Alarm]; a != nil {
			a.Journaled(&h.hs.held[0]) // its step may now leave memory
		}
		h.observeFlushedLocked()          // fenced.go: only now may it alert anyone
		h.hs.held[0] = alarm.Transition{} // let the GC have what it pointed to
		h.hs.held = h.hs.held[1:]
	}
	h.hs.held = nil
	clear(h.hs.events)
	h.setHeldLocked()
	h.log.Info("hub: alarm journal writes again; every held transition is written", "failed_writes", h.hs.failed)
	h.hs.failed = 0
	h.recoveredDue = true
}

// raiseStoreTroubleLocked raises or restores the hub_integrity alarm for the
// journal after a commit: a raise at the first failure (it is held like
// any other transition until the disk takes it) and a restore once every
// held transition is written.
func (h *Hub) raiseStoreTroubleLocked(now time.Time) {
	if note := h.integrityDue; note != "" {
		h.integrityDue = ""
		h.applyLocked(rules.Action{Kind: rules.Raise, Rule: rules.RuleHubIntegrity, Key: rules.RuleHubIntegrity,
			Alarm: alarm.KindTechnical, Priority: 2, Status: event.IPConnectionFailed, Site: "hub", Note: note}, now)
	}
	if h.recoveredDue {
		h.recoveredDue = false
		if id, open := h.openByKey[rules.RuleHubIntegrity]; open && h.alarms[id].RestoredAt() == nil {
			h.commitLocked(h.alarms[id], alarm.Transition{Alarm: id, Action: alarm.ActRestore, At: now, By: "hub",
				Note: "larmjournalen skriver igen / alarm journal writes again: every held transition is written"})
		}
	}
}

// heldAnswer decides, for an event seen before, whether it may be
// acknowledged now: it may unless its transitions are still held. A resend
// is the sender asking again, so the journal is tried at once.
func (h *Hub) heldAnswer(key string) bool {
	h.mu.Lock()
	if p := h.pendingForLocked(key); p != nil {
		// Its transitions wait for the quorum (pending.go): so does
		// the resend.
		h.mu.Unlock()
		return p.wait()
	}
	defer h.mu.Unlock()
	if _, held := h.hs.events[key]; !held {
		return true
	}
	h.flushLocked(true)
	h.raiseStoreTroubleLocked(h.now())
	return len(h.hs.held) == 0
}

// full reports whether the held transitions reached maxHeld even after a
// retry; new events are then refused before they are evaluated.
func (h *Hub) full() bool {
	if h.heldN.Load() < maxHeld {
		return false // the alarm path's usual answer, without the lock
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushLocked(false)
	h.raiseStoreTroubleLocked(h.now())
	return len(h.hs.held) >= maxHeld
}

// holdEventLocked remembers that key's transitions are held.
func (h *Hub) holdEventLocked(key string) {
	if h.hs.events == nil {
		h.hs.events = map[string]struct{}{}
	}
	h.hs.events[key] = struct{}{}
}

// busyReply is the answer to an event that is not (yet) durable.
func busyReply(id string) event.Reply {
	return event.Reply{Code: event.ReplyBusy, ID: id,
		Reason: "hub: not stored, the alarm journal cannot write; keep the event and send it again"}
}

// checkJournal runs on every tick: it retries held transitions (so the hub
// recovers by itself when space returns) and raises a failed background
// fsync, which loses nothing yet but means the disk may not keep what it
// was given.
func (h *Hub) checkJournal(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushLocked(true)
	if n := h.journal.Stats().SyncFails; n > h.hs.syncFails {
		h.hs.syncFails = n
		h.log.Error("hub: alarm journal fsync failed", "total", n)
		h.applyLocked(rules.Action{Kind: rules.Raise, Rule: rules.RuleHubIntegrity, Key: rules.RuleHubIntegrity,
			Alarm: alarm.KindTechnical, Priority: 2, Status: event.IPConnectionFailed, Site: "hub",
			Note: fmt.Sprintf("larmjournalens fsync misslyckades / alarm journal fsync failed (total %d): check the disk", n)}, now)
	}
	h.raiseStoreTroubleLocked(now)
}

// Flush writes what the journal could not take before; the service calls
// it before closing the journal. What still cannot be written is lost with
// the process, but was never acknowledged to a gateway.
func (h *Hub) Flush() error {
	h.waitPending() // pending.go
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushLocked(true)
	if n := len(h.hs.held); n > 0 {
		return fmt.Errorf("hub: %d alarm transitions could not be written: %w", n, h.hs.lastErr)
	}
	return nil
}

func (h *Hub) setHeldLocked() {
	h.heldN.Store(int64(len(h.hs.held)))
	h.m.held.Set(float64(len(h.hs.held)))
}
