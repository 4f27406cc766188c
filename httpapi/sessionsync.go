package httpapi

import (
	"time"
)

// SessionRecord is one login session as a redundant group replicates it
// (docs/scale-out.md, "Staff app across a failover"): the user and the
// session's times, keyed by the hex SHA-256 of its token. The token itself
// never leaves the hub that made it, so a copy of the replicated records,
// like a copy of sessions.json, logs nobody in.
type SessionRecord struct {
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// SessionSync carries this hub's session changes to the other hubs of a
// redundant group, so a nurse logged in on one hub is still logged in on
// the hub that takes over, and a revoked session is revoked on all of
// them. Both calls are made synchronously, after the local change and
// without Auth's lock held: a login is answered only once its session is
// replicated (or the attempt failed and was counted). Put and Delete of
// one key must be applied by the other hubs in the order they were made.
type SessionSync interface {
	PutSession(key string, rec SessionRecord) error
	DeleteSession(key string) error
}

// SetSync makes Auth replicate every later login, logout and revocation
// through s (nil stops it). Changes that arrive from the group are applied
// with ApplySession, ApplyDelete and ReplaceSessions, which do not call s
// back.
func (a *Auth) SetSync(s SessionSync) {
	a.mu.Lock()
	a.sync = s
	a.mu.Unlock()
}

// SyncFailures counts session changes that could not be replicated
// (exported as a metric): a login that may not survive a failover, or -
// worse - a revocation that the next active hub would not know of.
func (a *Auth) SyncFailures() int64 { return a.syncErrs.Load() }

func (a *Auth) syncer() SessionSync {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sync
}

func (a *Auth) syncPut(key string, r *sessionRec) {
	if s := a.syncer(); s != nil {
		if err := s.PutSession(key, SessionRecord{User: r.User, Created: r.Created, Expires: r.Expires}); err != nil {
			a.syncErrs.Add(1)
		}
	}
}

func (a *Auth) syncDelete(keys ...string) {
	s := a.syncer()
	if s == nil {
		return
	}
	for _, k := range keys {
		if err := s.DeleteSession(k); err != nil {
			a.syncErrs.Add(1)
		}
	}
}

// usableLocked reports whether a replicated record may become a session
// here: a well-formed key, a user this hub knows, not yet expired.
func (a *Auth) usableLocked(key string, r SessionRecord, now time.Time) bool {
	return len(key) == 64 && a.users[r.User] != nil && !now.After(r.Expires)
}

// ApplySession adds or replaces a session that another hub of the group
// made (or this one, echoed back). A record for an unknown user or already
// expired is ignored.
func (a *Auth) ApplySession(key string, r SessionRecord) {
	a.mu.Lock()
	if !a.usableLocked(key, r, a.now()) {
		a.mu.Unlock()
		return
	}
	a.sessions[key] = &sessionRec{User: r.User, Created: r.Created, Expires: r.Expires}
	a.mu.Unlock()
	a.save()
}

// ApplyDelete ends a session that was logged out or revoked on another
// hub; its open live stream is told at once and closes.
func (a *Auth) ApplyDelete(key string) {
	a.mu.Lock()
	_, ok := a.sessions[key]
	delete(a.sessions, key)
	if ok {
		a.signalLocked()
	}
	a.mu.Unlock()
	if ok {
		a.save()
	}
}

// ReplaceSessions makes the group's records the whole set of sessions, as
// a hub does when it becomes active: sessions it kept in its own file from
// an earlier turn but that were revoked meanwhile must not come back.
// It returns how many sessions it kept.
func (a *Auth) ReplaceSessions(recs map[string]SessionRecord) int {
	now := a.now()
	a.mu.Lock()
	dropped := false
	for k := range a.sessions {
		if _, ok := recs[k]; !ok {
			delete(a.sessions, k)
			dropped = true
		}
	}
	for k, r := range recs {
		if a.usableLocked(k, r, now) {
			a.sessions[k] = &sessionRec{User: r.User, Created: r.Created, Expires: r.Expires}
		}
	}
	if dropped {
		a.signalLocked()
	}
	n := len(a.sessions)
	a.mu.Unlock()
	a.save()
	return n
}

// Records returns the live sessions as replicated records (to seed a new
// group's bucket with a hub's own sessions).
func (a *Auth) Records() map[string]SessionRecord {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]SessionRecord, len(a.sessions))
	for k, r := range a.sessions {
		if !now.After(r.Expires) {
			out[k] = SessionRecord{User: r.User, Created: r.Created, Expires: r.Expires}
		}
	}
	return out
}
