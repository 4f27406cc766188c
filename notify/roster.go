package notify

import (
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
	return &c
}
