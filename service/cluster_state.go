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

// SeenHeardSync is a SeenSync that also takes every device's last-heard
// time at each flush, in a few messages however many devices
// (cluster.DevicesSeen.PutHeard): the group's copy of last-heard times
// is then at most a flush old, while a device's own record is sent only
// when it is new, its battery level changed, or seenReplicateEvery
// passed. It returns the messages written.
type SeenHeardSync interface {
	SeenSync
	PutHeard(heard map[string]time.Time) (int, error)
}

// DevicesSeen is the hub's record of devices seen (devices-seen.json), as
// a redundant group shares it: the device page of the hub that takes over
// then tells a device heard before the failover from one never heard.
type DevicesSeen struct{ s *seenStore }

// seenReplicateEvery is how much newer a device's last-heard time must be
// than the copy the group has before its own record is sent again (a new
// device or a new battery level is sent at the next flush). The group
// learns last-heard times every minute through SeenHeardSync, in a few
// messages for the whole fleet; a device's own record is refreshed so
// rarely only to keep it from expiring (cluster: 90 days) and as the
// fallback when those messages cannot be read.
const seenReplicateEvery = 6 * time.Hour

// seenRefreshPerFlush bounds the refreshes (records sent only because
// seenReplicateEvery passed) of one flush: a fleet first heard at the same
// start would otherwise all be due in the same minute.
const seenRefreshPerFlush = 200

// seenSync is the replication state kept beside the seenStore.
type seenSync struct {
	to    atomic.Pointer[SeenSync]
	fails atomic.Int64
	sent  map[string]seenRec // what the group has (as far as this hub knows); under seenStore.mu
	// heard: a device was heard since the last-heard times were last
	// shared (under seenStore.mu).
	heard bool
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

// SyncFailures counts records the group did not take, and shares of
// last-heard times it refused.
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
	refresh := 0
	for k, v := range s.now {
		g, ok := s.sync.sent[k]
		switch {
		case !ok || !sameBattery(g, v):
		case v.LastSeen.Sub(g.LastSeen) >= seenReplicateEvery && refresh < seenRefreshPerFlush:
			refresh++
		default:
			continue
		}
		keys, recs = append(keys, k), append(recs, v)
	}
	var heard map[string]time.Time
	hs, shareHeard := (*p).(SeenHeardSync)
	if shareHeard && s.sync.heard {
		heard = make(map[string]time.Time, len(s.now))
		for k, v := range s.now {
			heard[k] = v.LastSeen
		}
		s.sync.heard = false
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
	if heard != nil {
		if _, err := hs.PutHeard(heard); err != nil {
			s.sync.fails.Add(1)
			s.mu.Lock()
			s.sync.heard = true // all of it again at the next flush
			s.mu.Unlock()
			s.log.Warn("service: last-heard times not replicated to the group; retried at the next flush", "devices", len(heard), "err", err)
		}
	}
	return sent
}

func sameBattery(a, b seenRec) bool {
	if (a.Battery == nil) != (b.Battery == nil) {
		return false
	}
	return a.Battery == nil || *a.Battery == *b.Battery
}
