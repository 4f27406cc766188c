package notify

import (
	"slices"
	"sync"
	"time"
)

// RosterOnDuty is the receivers' roster value that alerts the staff on
// duty for the alarm's site and unit at the alarm's time.
const RosterOnDuty = "on_duty"

// OnDuty is what the route tree needs of the shift roster (package
// roster satisfies it): the usernames on duty for a site and unit at an
// instant.
type OnDuty interface {
	OnDuty(site, unit string, at time.Time) []string
}

// WithRoster returns a copy of the tree whose roster receivers resolve
// through r. The tree stays immutable; r's answers may change (a lead
// edits the roster) and are read at each Match.
func (t *Tree) WithRoster(r OnDuty) *Tree {
	if t == nil {
		return nil
	}
	c := *t
	c.roster = r
	return &c
}

// resolve turns a roster receiver into the users on duty for the alarm's
// site and unit at at; its configured users are the fallback when nobody
// is. Other receivers are returned as they are.
func (t *Tree) resolve(r *Receiver, labels map[string]string, at time.Time) *Receiver {
	if r.Roster == "" {
		return r
	}
	c := *r
	var on []string
	if t.roster != nil {
		on = t.roster.OnDuty(labels["site"], labels["unit"], at)
	}
	if len(on) > 0 {
		c.Users = on
	} else {
		c.Fallback = true
	}
	return resolved.get(r, &c)
}

// resolved keeps, per roster receiver, the copy last resolved. Why: each
// care alarm's plan holds its resolved tiers for as long as it is open,
// and a storm's alarms at one site and time resolve to the same users; a
// copy each is 112 bytes per open alarm. Resolved receivers are read-only
// (as every receiver of a plan), so alarms may share one.
var resolved = resolveCache{m: map[*Receiver][]*Receiver{}}

type resolveCache struct {
	mu sync.Mutex
	m  map[*Receiver][]*Receiver // configured receiver -> copies resolved from it, newest last
}

// Bounds of the cache: copies kept per receiver (one per site and unit
// whose staff differ), and receivers (those of trees replaced by a
// reload would otherwise stay).
const (
	maxResolvedPer = 16
	maxResolved    = 1024
)

// get returns a copy equal to c resolved from r, the one kept if it is.
func (rc *resolveCache) get(r, c *Receiver) *Receiver {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	kept := rc.m[r]
	for i := len(kept) - 1; i >= 0; i-- {
		if k := kept[i]; k.Fallback == c.Fallback && slices.Equal(k.Users, c.Users) {
			return k
		}
	}
	if len(kept) >= maxResolvedPer {
		kept = slices.Delete(kept, 0, 1)
	} else if kept == nil && len(rc.m) >= maxResolved {
		clear(rc.m)
	}
	c.Users = slices.Clone(c.Users) // the roster's answer is its own
	rc.m[r] = append(kept, c)
	return c
}
