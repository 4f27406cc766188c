package webpush

import "sync/atomic"

// StoreSync carries this hub's subscription changes to the other hubs of
// a redundant group (docs/scale-out.md, "Staff app across a failover"),
// so the hub that takes over still reaches every locked phone. Calls are
// made after the local change, without the store's lock held (a push
// being sent never waits for the group).
type StoreSync interface {
	PutSubscription(sub Subscription) error
	DeleteSubscription(id string) error
}

var syncFailures atomic.Int64

// SyncFailures counts subscription changes that could not be replicated
// (all stores of the process together): that phone may get no push from
// the next active hub until the app is opened again.
func SyncFailures() int64 { return syncFailures.Load() }

// SetSync makes the store replicate later changes through x (nil stops).
func (s *Store) SetSync(x StoreSync) {
	s.mu.Lock()
	s.sync = x
	s.mu.Unlock()
}

func (s *Store) replicate(x StoreSync, put *Subscription, removed []string) {
	for _, id := range removed {
		if err := x.DeleteSubscription(id); err != nil {
			syncFailures.Add(1)
		}
	}
	if put != nil {
		if err := x.PutSubscription(*put); err != nil {
			syncFailures.Add(1)
		}
	}
}

// ApplyPut adds or replaces a subscription another hub stored.
func (s *Store) ApplyPut(sub Subscription) {
	if sub.ID == "" || sub.User == "" || sub.Endpoint == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := sub
	s.subs[sub.ID] = &c
	_ = s.saveLocked()
}

// ApplyDelete removes a subscription another hub removed.
func (s *Store) ApplyDelete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[id]; ok {
		delete(s.subs, id)
		_ = s.saveLocked()
	}
}

// All lists every subscription (to seed a new group).
func (s *Store) All() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		out = append(out, *sub)
	}
	return out
}

// ReplaceAll makes list the store's whole content, as a hub does when it
// becomes active in a group; it returns how many it holds.
func (s *Store) ReplaceAll(list []Subscription) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.subs)
	for _, sub := range list {
		if sub.ID != "" && sub.User != "" && sub.Endpoint != "" {
			c := sub
			s.subs[sub.ID] = &c
		}
	}
	_ = s.saveLocked()
	return len(s.subs)
}
