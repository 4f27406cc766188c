package hub

import "sync"

// dedup remembers the most recent event keys, so an event delivered twice
// (QoS 1 redelivery, a gateway replaying its spool) raises nothing twice.
// It is bounded: a ring of keys evicts the oldest. The journal carries the
// keys of events that raised or updated alarms, so those survive a restart.
//
// A key is "evaluating" from addIfNew until its first delivery's outcome is
// known (done): durable, held, or nothing to keep. A second delivery that
// arrives meanwhile (a gateway that reconnected and resent while its old
// connection's handler is still in the rules) waits for that outcome before
// it is answered: answered at once, it would be acknowledged before the
// first delivery's transitions were queued for the journal, and a journal
// that then refused them would leave an event acknowledged and not kept.
type dedup struct {
	mu      sync.Mutex
	cond    sync.Cond       // L is &mu; broadcast by done when someone waits
	set     map[string]bool // true: the first delivery is still evaluating
	ring    []string
	next    int
	waiters int
}

func newDedup(n int) *dedup {
	d := &dedup{set: make(map[string]bool, n), ring: make([]string, n)}
	d.cond.L = &d.mu
	return d
}

// addIfNew adds k as evaluating and reports whether it was new. A caller
// that gets true must call done(k) once the delivery's outcome is known.
func (d *dedup) addIfNew(k string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[k]; ok {
		return false
	}
	d.insertLocked(k, true)
	return true
}

// add adds k as done (a key read back from the journal).
func (d *dedup) add(k string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[k]; !ok {
		d.insertLocked(k, false)
	}
}

// done marks k's first delivery as decided and wakes its waiters.
func (d *dedup) done(k string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set[k] {
		d.set[k] = false
	}
	if d.waiters > 0 {
		d.cond.Broadcast()
	}
}

// waitDone returns once k's first delivery is decided (at once when it
// is, or when k was evicted meanwhile).
func (d *dedup) waitDone(k string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.set[k] {
		d.waiters++
		d.cond.Wait()
		d.waiters--
	}
}

func (d *dedup) insertLocked(k string, evaluating bool) {
	if old := d.ring[d.next]; old != "" {
		delete(d.set, old)
	}
	d.ring[d.next] = k
	d.set[k] = evaluating
	d.next = (d.next + 1) % len(d.ring)
}
