package roster

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Sync replicates the API's shifts to the other hubs of a redundant group
// (cluster.RosterSync), so the hub that takes over routes alarms with the
// shifts the lead set, not with its own older copy.
type Sync interface {
	PutShifts(shifts []Shift) error
}

// ErrNotReplicated is returned by SetAPI when the shifts were saved on
// this hub but the group did not take them: after a failover the next
// active hub would route with the old shifts. Setting them again is safe.
var ErrNotReplicated = errors.New("roster: saved on this hub but not replicated to the group")

// syncState is kept beside the Roster's fields; its zero value (a single
// hub) replicates nothing.
type syncState struct {
	to    atomic.Pointer[Sync]
	fails atomic.Int64
	order sync.Mutex // SetAPI's save and replication, one PUT at a time
}

// SetSync makes SetAPI replicate through s (nil: stop).
func (r *Roster) SetSync(s Sync) {
	if s == nil {
		r.sync.to.Store(nil)
		return
	}
	r.sync.to.Store(&s)
}

// SyncFailures counts SetAPI calls whose shifts the group did not take.
func (r *Roster) SyncFailures() int64 { return r.sync.fails.Load() }

// replicate is called by SetAPI after the local save.
func (r *Roster) replicate(shifts []Shift) error {
	p := r.sync.to.Load()
	if p == nil {
		return nil
	}
	if err := (*p).PutShifts(slices.Clone(shifts)); err != nil {
		r.sync.fails.Add(1)
		return fmt.Errorf("%w: %v", ErrNotReplicated, err)
	}
	return nil
}

// ApplyAPI makes shifts the API's shifts as read from the group (another
// hub set them), persisting them like SetAPI but without replicating them
// back. Shifts that fail Check are left out: the group's copy is outside
// input too.
func (r *Roster) ApplyAPI(shifts []Shift) (kept int, err error) {
	ok := make([]Shift, 0, len(shifts))
	for _, s := range shifts {
		if f, _ := s.Check(); f == "" {
			s.line = 0
			ok = append(ok, s)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Used at once even if this hub's file cannot be written: the group
	// holds them, and a restart reads them from the group again.
	r.api = ok
	if r.path != "" {
		b, err := json.MarshalIndent(ok, "", " ")
		if err != nil {
			return len(ok), err
		}
		if err := writeFileAtomic(r.path, b); err != nil {
			return len(ok), fmt.Errorf("roster: save: %w", err)
		}
	}
	return len(ok), nil
}

// APIShifts returns the API's shifts.
func (r *Roster) APIShifts() []Shift {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.api)
}
