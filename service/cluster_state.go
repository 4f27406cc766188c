package service

import (
	"sync/atomic"
	"time"

	"github.com/vaka-care/vaka/roster"
)

// WithClusterState calls attach, in a redundant group, with the hub's
// shift roster and its record of devices seen once the broker takes
// events and before the web listener opens (so no roster PUT falls
// between the group's snapshot and the replication hook), to take the
// group's copies over and replicate later changes (cluster.RosterSync,
// cluster.DevicesSeen). An error is logged, not fatal, and counted by the
// caller.
func WithClusterState(attach func(*roster.Roster, *DevicesSeen) error) Option {
	return func(op *options) { op.attachState = attach }
}

// SeenRecord is one device's entry in devices-seen.json: when it was last
// heard and its last battery level.
type SeenRecord = seenRec

// SeenSync replicates devices-seen records to the group; key is
// "<site>/<device>".
type SeenSync interface {
	PutSeen(key string, rec SeenRecord) error
}

// DevicesSeen is the hub's record of devices seen (devices-seen.json), as
// a redundant group shares it: the device page of the hub that takes over
// then tells a device heard before the failover from one never heard.
type DevicesSeen struct{ s *seenStore }

// seenReplicateEvery is how much newer a device's last-heard time must be
// than the copy the group has before it is sent again (a new device or a
// new battery level is sent at the next flush). Supervised devices are
// heard every minute or so: sending each hearing would put the whole
// fleet through the group's quorum every minute, for a page that needs
// only "heard before the failover".
const seenReplicateEvery = 10 * time.Minute

// seenSync is the replication state kept beside the seenStore.
type seenSync struct {
	to    atomic.Pointer[SeenSync]
	fails atomic.Int64
	sent  map[string]seenRec // what the group has (as far as this hub knows); under seenStore.mu
}

// Records returns every device's newest record (heard since this start
// or before it).
func (d *DevicesSeen) Records() map[string]SeenRecord {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]SeenRecord, len(s.prior)+len(s.now))
	for k, v := range s.prior {
		out[k] = v
	}
	for k, v := range s.now {
		if v.LastSeen.After(out[k].LastSeen) {
			out[k] = v
		}
	}
	return out
}

// Merge takes the group's records: each device's newer record of the
// two wins (a last-heard time only grows, so merging loses nothing). It
// returns how many devices the hub now knows.
func (d *DevicesSeen) Merge(group map[string]SeenRecord) int {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range group {
		d.applyLocked(k, v)
	}
	n := len(s.prior)
	for k := range s.now {
		if _, ok := s.prior[k]; !ok {
			n++
		}
	}
	return n
}

// Apply takes one record read from the group.
func (d *DevicesSeen) Apply(key string, rec SeenRecord) {
	d.s.mu.Lock()
	d.applyLocked(key, rec)
	d.s.mu.Unlock()
}

func (d *DevicesSeen) applyLocked(k string, v seenRec) {
	s := d.s
	if s.sync.sent == nil {
		s.sync.sent = map[string]seenRec{}
	}
	if v.LastSeen.After(s.sync.sent[k].LastSeen) {
		s.sync.sent[k] = v
	}
	if v.LastSeen.After(s.prior[k].LastSeen) {
		s.prior[k] = v
		s.dirty = true
	}
}

// SetSync makes the hub send new and changed records to x at each flush
// (nil: stop).
func (d *DevicesSeen) SetSync(x SeenSync) {
	if x == nil {
		d.s.sync.to.Store(nil)
		return
	}
	d.s.sync.to.Store(&x)
}

// SyncFailures counts records the group did not take.
func (d *DevicesSeen) SyncFailures() int64 { return d.s.sync.fails.Load() }

// Replicate sends what the group lacks now (the flusher does it every
// minute); it returns the records sent.
func (d *DevicesSeen) Replicate() int { return d.s.replicate() }

// replicate sends new devices, new battery levels and last-heard times
// seenReplicateEvery newer than the group's copy. A failed put is
// counted and ends the round: the rest wait for the next flush.
func (s *seenStore) replicate() int {
	p := s.sync.to.Load()
	if p == nil {
		return 0
	}
	s.mu.Lock()
	if s.sync.sent == nil {
		s.sync.sent = map[string]seenRec{}
	}
	var keys []string
	var recs []seenRec
	for k, v := range s.now {
		g, ok := s.sync.sent[k]
		if !ok || !sameBattery(g, v) || v.LastSeen.Sub(g.LastSeen) >= seenReplicateEvery {
			keys, recs = append(keys, k), append(recs, v)
		}
	}
	// Records from before this start that the group lacks (a single hub
	// made redundant: its own file seeds the group this way).
	for k, v := range s.prior {
		if _, heard := s.now[k]; heard {
			continue
		}
		if g, ok := s.sync.sent[k]; !ok || v.LastSeen.After(g.LastSeen) {
			keys, recs = append(keys, k), append(recs, v)
		}
	}
	s.mu.Unlock()
	sent := 0
	for i, k := range keys {
		select {
		case <-s.stop: // closing: the rest waits for the next hub
			return sent
		default:
		}
		if err := (*p).PutSeen(k, recs[i]); err != nil {
			s.sync.fails.Add(int64(len(keys) - i))
			s.log.Warn("service: devices seen not replicated to the group; retried at the next flush", "devices", len(keys)-i, "err", err)
			break
		}
		s.mu.Lock()
		s.sync.sent[k] = recs[i]
		s.mu.Unlock()
		sent++
	}
	return sent
}

func sameBattery(a, b seenRec) bool {
	if (a.Battery == nil) != (b.Battery == nil) {
		return false
	}
	return a.Battery == nil || *a.Battery == *b.Battery
}
