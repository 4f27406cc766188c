package hub

import "sync"

// dedup remembers the most recent event keys, so an event delivered twice
// (QoS 1 redelivery, a gateway replaying its spool) raises nothing twice.
// It is bounded: a ring of keys evicts the oldest. The journal carries the
// keys of events that raised or updated alarms, so those survive a restart.
type dedup struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newDedup(n int) *dedup {
	return &dedup{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// addIfNew adds k and reports whether it was new.
func (d *dedup) addIfNew(k string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[k]; ok {
		return false
	}
	d.insertLocked(k)
	return true
}

func (d *dedup) add(k string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[k]; !ok {
		d.insertLocked(k)
	}
}

func (d *dedup) insertLocked(k string) {
	if old := d.ring[d.next]; old != "" {
		delete(d.set, old)
	}
	d.ring[d.next] = k
	d.set[k] = struct{}{}
	d.next = (d.next + 1) % len(d.ring)
}
