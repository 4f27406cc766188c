package cluster

import (
	"context"

	"github.com/vaka-care/vaka/roster"
)

// RosterSync replicates the shifts set through the roster API (PUT
// /api/v1/roster) through the lease bucket, as one key (roster.api: a PUT
// replaces them all, so one value keeps them whole), so a hub that takes
// over routes alarms with the shifts the lead set on the hub before it.
// The roster file's shifts come with the config, which every hub of a
// group has the same.
type RosterSync struct {
	m *kvMirror[[]roster.Shift]
}

const rosterKey = "api"

// Roster returns the group's replicated roster shifts.
func (n *Node) Roster() *RosterSync {
	return &RosterSync{m: newMirror[[]roster.Shift](n, n.kv, "roster.", "shared.roster-seeded", "roster",
		"after a failover the next active hub would route alarms with the old shifts", nil)}
}

// PutShifts replicates the API's shifts (roster.Sync).
func (s *RosterSync) PutShifts(shifts []roster.Shift) error {
	if shifts == nil {
		shifts = []roster.Shift{}
	}
	return s.m.put(rosterKey, shifts)
}

// Prefetch writes the group's shifts into r (persisted in its file) by a
// direct get, which needs no JetStream meta leader: a hub that took the
// lease calls it before its hub starts, so the first alarms it routes use
// the group's roster even while a lost meta leader is being replaced.
// Absent shifts (none set in the group yet) leave r as it is; Attach
// decides then.
func (s *RosterSync) Prefetch(ctx context.Context, r *roster.Roster) (found bool, err error) {
	shifts, ok, err := s.m.get(ctx, rosterKey)
	if err != nil || !ok {
		return false, err
	}
	_, err = s.apply(r, shifts)
	return err == nil, err
}

// apply makes shifts r's API shifts; shifts that fail the roster's checks
// are left out by r, and counted and logged here.
func (s *RosterSync) apply(r *roster.Roster, shifts []roster.Shift) (int, error) {
	kept, err := r.ApplyAPI(shifts)
	if left := len(shifts) - kept; err == nil && left > 0 {
		s.m.n.damaged.Add(int64(left))
		s.m.n.log.Warn("cluster: roster shifts from the group that fail the roster's checks left out", "shifts", left)
	}
	return kept, err
}

// Attach makes the group's shifts r's API shifts (a new group is seeded
// with r's own), makes r replicate later changes, and applies the group's
// changes until stop is called.
func (s *RosterSync) Attach(ctx context.Context, r *roster.Roster) (stop func(), err error) {
	apply := func(shifts []roster.Shift) int {
		kept, err := s.apply(r, shifts)
		if err != nil {
			s.m.n.log.Error("cluster: the group's roster shifts not saved on this hub; they are used until it restarts", "err", err)
		}
		return kept
	}
	return s.m.attach(ctx, mirrorLocal[[]roster.Shift]{
		own: func() map[string][]roster.Shift {
			if api := r.APIShifts(); len(api) > 0 {
				return map[string][]roster.Shift{rosterKey: api}
			}
			return nil
		},
		replace: func(group map[string][]roster.Shift) int { return apply(group[rosterKey]) },
		put: func(k string, shifts []roster.Shift) {
			if k == rosterKey {
				apply(shifts)
			}
		},
		del: func(k string) {
			if k == rosterKey {
				apply(nil)
			}
		},
		hook: func(on bool) {
			if on {
				r.SetSync(s)
			} else {
				r.SetSync(nil)
			}
		},
	})
}
