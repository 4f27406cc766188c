package hub

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/notify"
)

// Router is what the hub asks, under its lock, as it raises an alarm (the
// notifier, package notify): which group a technical alarm joins, or the
// first notify steps of any other alarm, which are journaled together
// with the raise so staff see the raise and who was alerted in one frame.
type Router interface {
	OnRaise(a *alarm.Alarm, now time.Time) notify.Raising
}

// groupState is the hub's part of grouping: the router, and every group
// alarm's members in raise order (the alarm itself lists the first
// alarm.MaxGroupMembers).
type groupState struct {
	router  Router
	members map[string][]string // group alarm id → member ids
	pending sync.WaitGroup      // members being resolved with their group
	grouped prometheus.Counter  // vaka_alarms_grouped_total
	// batch and batchP are commitRaiseLocked's scratch space.
	batch  []alarm.Transition
	batchP []*alarm.Transition
	subj   alarm.Subject
}

// SetRouter sets the notifier asked at each raise; nil turns grouping and
// the one-frame raise off (tests of the hub alone).
func (h *Hub) SetRouter(r Router) {
	h.mu.Lock()
	h.gs.router = r
	h.mu.Unlock()
}

// groupKey is the open-alarm key of a group alarm (alarmKey).
func groupKey(key string) string { return "group|" + key }

// raiseLocked commits the raise t of the new alarm a. A technical alarm on
// a grouping route joins its open group (raised now if none): it is
// journaled and readable like any alarm, but the screens are shown the
// group, not the member. Any other alarm's first notify steps are
// journaled right after its raise, and one frame carries both.
func (h *Hub) raiseLocked(a *alarm.Alarm, t alarm.Transition, now time.Time) bool {
	var r notify.Raising
	if h.gs.router != nil {
		r = h.gs.router.OnRaise(a, now)
	}
	var g *alarm.Alarm
	durable := true
	if r.GroupKey != "" {
		g, durable = h.openGroupLocked(r, a, now)
		a.SetGroupID(g.ID)
		h.gs.grouped.Inc()
		t.Raise = a // now with its GroupID
	}
	if !h.commitRaiseLocked(a, t, r.First) {
		durable = false
	}
	if g != nil {
		h.addMemberLocked(g, a)
	}
	h.showLocked(a)
	return durable
}

// openGroupLocked returns the open group alarm for r's key, raising it
// (journaled, shown at once) if there is none.
func (h *Hub) openGroupLocked(r notify.Raising, first *alarm.Alarm, now time.Time) (*alarm.Alarm, bool) {
	if id, ok := h.openByKey[groupKey(r.GroupKey)]; ok {
		if g := h.alarms[id]; g != nil && g.Open() {
			return g, true
		}
	}
	h.nextID++
	g := alarm.New(alarmID(h.nextID), now)
	g.Kind, g.Rule, g.Priority = alarm.KindTechnical, alarm.RuleGroup, first.Priority
	g.Site, g.Gateway = cmp.Or(r.GroupBy["site"], first.Site), r.GroupBy["gateway"]
	g.SourceTime = now
	var by []string
	for k, v := range r.GroupBy {
		by = append(by, k+"="+v)
	}
	sort.Strings(by)
	g.Note = "grupp av tekniska larm / group of technical alarms: " + strings.Join(by, " ")
	g.SetGroup(&alarm.Group{Key: r.GroupKey, By: r.GroupBy, Members: []alarm.Member{}})
	t := alarm.Transition{Alarm: g.ID, Action: alarm.ActRaise, At: now, By: "rule:" + alarm.RuleGroup, Note: g.Note}
	snap := *g
	snap.SetGroup(g.Group().Clone())
	t.Raise = &snap
	h.alarms[g.ID] = g
	h.openByKey[groupKey(r.GroupKey)] = g.ID
	h.countRaisedLocked(g.Kind, g.Rule)
	durable := h.commitQuietLocked(g, t)
	return g, durable
}

// showLocked tells the screens of a change to a. A group member is shown
// through its group: its entry in the group's list (if among the first
// alarm.MaxGroupMembers) changes, and the group's frame goes out instead.
func (h *Hub) showLocked(a *alarm.Alarm) {
	if h.deferShowLocked(a) { // pending.go: shown once journaled
		return
	}
	h.showNowLocked(a)
}

// showNowLocked is showLocked without waiting for the journal.
func (h *Hub) showNowLocked(a *alarm.Alarm) {
	if a.GroupID() == "" {
		h.broadcastLocked(a.Snapshot()) // compact history: the stream encoder reads it as is
		return
	}
	g := h.alarms[a.GroupID()]
	if g == nil || g.Group() == nil {
		return
	}
	for i := range g.Group().Members {
		if g.Group().Members[i].Alarm == a.ID {
			g.Group().Members[i] = memberOf(a)
		}
	}
	if g.Open() && !h.deferGroupLocked(g) { // lanes.go: once per technical slice
		h.broadcastLocked(g.Snapshot())
	}
}

// addMemberLocked records the new member a of g: counted, listed if among
// the first alarm.MaxGroupMembers, and kept for GroupMembers.
func (h *Hub) addMemberLocked(g, a *alarm.Alarm) {
	if h.gs.members == nil {
		h.gs.members = map[string][]string{}
	}
	h.gs.members[g.ID] = append(h.gs.members[g.ID], a.ID)
	g.Group().Count++
	if len(g.Group().Members) < alarm.MaxGroupMembers {
		g.Group().Members = append(g.Group().Members, memberOf(a))
	}
}

func memberOf(a *alarm.Alarm) alarm.Member {
	return alarm.Member{Alarm: a.ID, Rule: a.Rule, Device: a.Device, Gateway: a.Gateway, Since: a.RaisedAt, Restored: a.RestoredAt()}
}

// GroupMembers returns the members of group alarm id, in raise order.
func (h *Hub) GroupMembers(id string) ([]*alarm.Alarm, bool) {
	return h.GroupMembersPage(id, 0, -1)
}

// GroupMembersPage returns up to limit members (limit < 0: all) from
// offset on, without their history.
func (h *Hub) GroupMembersPage(id string, offset, limit int) ([]*alarm.Alarm, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	g, ok := h.alarms[id]
	if !ok || g.Group() == nil {
		return nil, false
	}
	out := []*alarm.Alarm{}
	ids := h.gs.members[id]
	ids = ids[min(max(offset, 0), len(ids)):]
	if limit >= 0 && limit < len(ids) {
		ids = ids[:limit]
	}
	for _, m := range ids {
		if a, ok := h.alarms[m]; ok {
			c := a.Clone()
			c.SetHistory(nil)
			out = append(out, c)
		}
	}
	return out, true
}

// memberChunk bounds the members resolved per hold of the hub's lock, so
// resolving a group of 250,000 never holds up a care alarm for long.
const memberChunk = 256

// resolveMembers resolves, on behalf of who resolved group gid, every
// member still open: accepted and resolved by the same person with the
// group's outcome, each step journaled. A member that comes back later
// (its device silent again) raises a new alarm and joins a new group.
func (h *Hub) resolveMembers(gid, by string, outcome alarm.Outcome) {
	defer h.gs.pending.Done()
	h.mu.RLock()
	ids := slices.Clone(h.gs.members[gid])
	h.mu.RUnlock()
	note := "löst med gruppen " + gid + " / resolved with group " + gid
	for len(ids) > 0 {
		n := min(memberChunk, len(ids))
		h.mu.Lock()
		now := h.now()
		for _, id := range ids[:n] {
			a := h.alarms[id]
			if a == nil || !a.Open() {
				continue
			}
			if a.State == alarm.Raised {
				h.commitQuietLocked(a, alarm.Transition{Alarm: id, Action: alarm.ActAccept, At: now, By: by, Note: note})
			}
			h.commitQuietLocked(a, alarm.Transition{Alarm: id, Action: alarm.ActResolve, At: now, By: by, Outcome: outcome, Note: note})
		}
		h.raiseStoreTroubleLocked(now)
		h.mu.Unlock()
		ids = ids[n:]
	}
}

// afterActLocked: resolving a group resolves its open members, in chunks
// outside this call.
func (h *Hub) afterActLocked(a *alarm.Alarm, action alarm.Action, by string) {
	if a.Group() == nil || action != alarm.ActResolve {
		return
	}
	h.gs.pending.Add(1)
	go h.resolveMembers(a.ID, by, a.Outcome())
}

// rebuildGroups restores each group's count and member list from its
// members' group_id after a journal replay.
func (h *Hub) rebuildGroups() {
	var ids []string
	for id, a := range h.alarms {
		if a.GroupID() != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, g := range h.alarms {
		if g.Group() != nil {
			g.Group().Count, g.Group().Members = 0, []alarm.Member{}
		}
	}
	for _, id := range ids {
		a := h.alarms[id]
		if g := h.alarms[a.GroupID()]; g != nil && g.Group() != nil {
			h.addMemberLocked(g, a)
		}
	}
}

// commitRaiseLocked commits t on a, and after it a raise's first notify
// steps, with one journal write (store.Journal.AppendAll): the same
// records in the same order as one commit each, but one write(2), and a
// crash keeps the raise with its notify or neither.
func (h *Hub) commitRaiseLocked(a *alarm.Alarm, t alarm.Transition, first []alarm.Transition) bool {
	// Scratch slices under h.mu: nothing keeps them (a held transition
	// is copied), so each raise reuses them.
	ts, ps := append(h.gs.batch[:0], t), h.gs.batchP[:0]
	for _, ft := range first {
		ft.Raise = nil
		ts = append(ts, ft)
	}
	// Every step but a raise carries the alarm's subject for the journal
	// (needsSubject); they share one, in scratch space too: a held
	// copy takes its own (holdLocked), and what the observers are handed
	// has none (they never read it, and could keep it past this raise).
	subj := false
	for i := range ts {
		if needsSubject(ts[i]) {
			if !subj { // one subject for all, built without an allocation
				h.gs.subj, subj = subjectOf(a), true
			}
			ts[i].Subj = &h.gs.subj
		}
		ps = append(ps, &ts[i])
	}
	durable := h.persistAllLocked(ps)
	for i := range ts {
		ts[i].Subj = nil
		h.appliedLocked(a, ts[i], i >= h.hs.kept)
	}
	h.pq.building = nil // pending.go
	clear(ts)
	clear(ps)
	h.gs.batch, h.gs.batchP = ts[:0], ps[:0]
	return durable
}

// subjectOf is a.Subject() as a value. It is written out rather than
// dereferencing a.Subject(): that allocated a Subject (168 B) per call,
// and commitRaiseLocked called it twice per raise (TestSubjectOfMatches
// keeps the two equal).
func subjectOf(a *alarm.Alarm) alarm.Subject {
	return alarm.Subject{
		Kind: a.Kind, Rule: a.Rule, Priority: a.Priority, Site: a.Site, Gateway: a.Gateway,
		Device: a.Device, DeviceType: a.DeviceType, Status: a.Status, Unit: a.Unit, Room: a.Room,
		Resident: a.Resident, RaisedAt: a.RaisedAt.UnixMilli(),
	}
}
