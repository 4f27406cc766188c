package notify

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/rules"
)

// Grouping, in the spirit of Alertmanager's dispatch (aggregation groups
// keyed by the group_by labels, a group_wait before the first notification
// and a group_interval between later ones), with three differences that
// safety asks for: only technical alarms are grouped, care alarms never;
// the group is an alarm of its own that staff can accept and resolve; and
// its card is on the screens at once, only the notification waits.

// Grouping defaults for technical alarms when no route sets them.
var DefaultGroupBy = []string{"site", "gateway"}

const (
	DefaultGroupWait     = 30 * time.Second
	DefaultGroupInterval = 5 * time.Minute
	// GroupOff as group_by ["..."] (Alertmanager's spelling for "every
	// label") makes each alarm its own: grouping off.
	GroupOff = "..."
)

func validateGrouping(r *Route, f string) []error {
	var errs []error
	for k, l := range r.GroupBy {
		switch {
		case l == GroupOff && len(r.GroupBy) == 1:
		case l == GroupOff:
			errs = append(errs, config.Errorf(config.Field(f, "group_by", k), `"..." (grouping off) must be alone`))
		case !slices.Contains(Labels, l):
			errs = append(errs, config.Errorf(config.Field(f, "group_by", k), "not a label; labels: %s", strings.Join(Labels, ", ")))
		case slices.Index(r.GroupBy, l) != k:
			errs = append(errs, config.Errorf(config.Field(f, "group_by", k), "label %q twice", l))
		}
	}
	if r.GroupBy != nil && len(r.GroupBy) == 0 {
		errs = append(errs, config.Errorf(f+".group_by", `empty: list labels, or ["..."] to turn grouping off`))
	}
	if d := r.GroupWait; d != nil && (*d < 0 || *d > time.Hour) {
		errs = append(errs, config.Errorf(f+".group_wait", "must be between 0 and 1h"))
	}
	if d := r.GroupInterval; d != nil && (*d < time.Second || *d > 24*time.Hour) {
		errs = append(errs, config.Errorf(f+".group_interval", "group_interval cannot be zero: must be between 1s and 24h"))
	}
	return errs
}

func inheritGrouping(r *Route, c *compiled) {
	if r.GroupBy != nil {
		c.groupBy = r.GroupBy
	}
	if r.GroupWait != nil {
		c.groupWait = *r.GroupWait
	}
	if r.GroupInterval != nil {
		c.groupInterval = *r.GroupInterval
	}
}

// Groupable reports whether a may be grouped at all: technical alarms
// only, never a care alarm, never a group itself, and never the hub's own
// integrity alarm (there is one, and it says the hub cannot be trusted).
func Groupable(a *alarm.Alarm) bool {
	return a.Kind == alarm.KindTechnical && a.Group() == nil && a.Rule != rules.RuleHubIntegrity && a.Rule != alarm.RuleGroup
}

// Raising is what the dispatcher decides, under the hub's lock, when the
// hub raises an alarm: the group it joins (GroupKey not empty), or the
// first notify steps, which the hub journals with the raise so staff get
// the raise and its notify in one frame.
type Raising struct {
	GroupKey string
	GroupBy  map[string]string
	First    []alarm.Transition
}

// preplan is a raise whose first steps the hub journaled: the loop only
// alerts the phones.
type preplan struct {
	plans []Plan
}

// groupTrack is a group alarm's notification state (loop goroutine only,
// except plans, set under mu by OnRaise).
type groupTrack struct {
	id       string
	plans    []Plan
	count    int       // members seen
	notified int       // members when staff were last notified
	last     time.Time // last notification of any kind on the group
	due      time.Time // when to notify next; zero: nothing pending
	snap     *alarm.Alarm
}

// OnRaise is called by the hub, under its lock, for every alarm it is
// about to raise. A groupable alarm on a route with group_by gets its
// group key; any other alarm gets its tier-0 notify steps (without
// sending anything: the loop does that after the hub committed them).
func (d *Dispatcher) OnRaise(a *alarm.Alarm, now time.Time) Raising {
	plans := d.matchRaise(a, now)
	if Groupable(a) {
		for _, p := range plans {
			if len(p.GroupBy) == 0 || len(p.Tiers) == 0 {
				continue
			}
			labels := LabelsOf(a)
			by := make(map[string]string, len(p.GroupBy))
			var b strings.Builder
			b.WriteString(p.Route)
			for _, l := range p.GroupBy {
				by[l] = labels[l]
				fmt.Fprintf(&b, "|%s=%s", l, labels[l])
			}
			key := b.String()
			d.mu.Lock()
			if d.groupPlans == nil {
				d.groupPlans = map[string][]Plan{}
			}
			if _, ok := d.groupPlans[key]; !ok {
				d.groupPlans[key] = groupPlans(plans)
			}
			d.mu.Unlock()
			return Raising{GroupKey: key, GroupBy: by}
		}
	}
	var first []alarm.Transition
	kept := plans[:0] // filtered in place: plans is this raise's own (matchRaise), not kept elsewhere
	for _, p := range plans {
		if len(p.Tiers) == 0 {
			continue
		}
		kept = append(kept, p)
		first = append(first, alarm.Transition{Alarm: a.ID, Action: alarm.ActNotify, At: now, By: "notify",
			Tier: 0, To: targets(p.Tiers[:1], alarm.ActNotify), Receiver: p.Tiers[0].Name, Note: "raised"})
	}
	if len(kept) > 0 {
		d.mu.Lock()
		if d.pre == nil {
			d.pre = map[string]preplan{}
		}
		d.pre[a.ID] = preplan{plans: kept}
		d.mu.Unlock()
	}
	return Raising{First: first}
}

// groupPlans keeps the grouping plans, with reminders no more often than
// the group interval: a group is notified at most once per interval.
func groupPlans(ps []Plan) []Plan {
	var out []Plan
	for _, p := range ps {
		if len(p.GroupBy) == 0 || len(p.Tiers) == 0 {
			continue
		}
		if p.RemindEvery > 0 && p.RemindEvery < p.GroupInterval {
			p.RemindEvery = p.GroupInterval
		}
		out = append(out, p)
	}
	return out
}

// targets lists who a step on receivers rs alerts.
func targets(rs []*Receiver, act alarm.Action) []string {
	var to []string
	for _, r := range rs {
		if r.Webhook != nil {
			if act != alarm.ActReminder {
				to = append(to, "webhook:"+r.Name)
			}
			continue
		}
		if r.SCAIP != nil {
			if act != alarm.ActReminder {
				to = append(to, "scaip:"+r.Name)
			}
			continue
		}
		for _, u := range r.Users {
			if !slices.Contains(to, u) {
				to = append(to, u)
			}
		}
	}
	return to
}

// groupRaised starts a group's notification clock: the first notification
// is group_wait after its first member.
func (d *Dispatcher) groupRaised(a *alarm.Alarm, now time.Time) {
	if a.Group() == nil {
		return
	}
	d.mu.Lock()
	plans := d.groupPlans[a.Group().Key]
	d.mu.Unlock()
	if len(plans) == 0 {
		// Raised before this start, or the tree changed: plan it again.
		plans = groupPlans(d.Tree().Match(LabelsOf(a), now))
		if len(plans) == 0 {
			return
		}
	}
	snap := *a
	snap.SetHistory(nil)
	snap.SetGroup(nil)
	g := &groupTrack{id: a.ID, plans: plans, count: a.Group().Count, snap: &snap, due: now.Add(plans[0].GroupWait)}
	if d.groups == nil {
		d.groups = map[string]*groupTrack{}
	}
	d.groups[a.ID] = g
}

// memberRaised counts a new member; a group already notified is notified
// again no sooner than group_interval after its last notification.
func (d *Dispatcher) memberRaised(a *alarm.Alarm, now time.Time) {
	g := d.groups[a.GroupID()]
	if g == nil {
		return
	}
	g.count++
	if g.notified > 0 && g.due.IsZero() {
		g.due = maxTime(g.last.Add(g.plans[0].GroupInterval), now)
	}
}

// runGroups notifies every group whose time has come and returns the
// earliest next time (zero: none). Groups are few (one per gateway or
// cause at most), so a scan is cheap.
func (d *Dispatcher) runGroups(now time.Time) time.Time {
	var next time.Time
	for _, g := range d.groups {
		if g.due.IsZero() {
			continue
		}
		if g.notified > 0 {
			if t := g.last.Add(g.plans[0].GroupInterval); now.Before(t) {
				g.due = t
			}
		}
		if now.Before(g.due) {
			if next.IsZero() || g.due.Before(next) {
				next = g.due
			}
			continue
		}
		g.due = time.Time{}
		if g.notified == 0 {
			g.notified = g.count
			for _, p := range g.plans {
				tr := NewTrack(g.id, p, now)
				d.addTrack(tr)
				s := Step{Action: alarm.ActNotify, Tier: 0, Receiver: p.Tiers[0],
					Reason: fmt.Sprintf("grupp: %d tekniska larm / group of %d technical alarms", g.count, g.count)}
				if !d.alert(g.snap, tr, s, now) && !tr.Stopped {
					tr.retry = &s // not journaled: tried again by runDue
					d.schedule(tr, now.Add(stepRetry))
					continue
				}
				d.schedule(tr, now)
			}
			continue
		}
		if g.count == g.notified {
			continue
		}
		g.notified = g.count
		for tr := d.tracks[g.id]; tr != nil; tr = tr.next {
			if tr.Stopped {
				continue
			}
			d.alert(g.snap, tr, Step{Action: alarm.ActReminder, Tier: tr.Tier,
				Reason: fmt.Sprintf("gruppen växer: %d tekniska larm / group grew to %d technical alarms", g.count, g.count)}, now)
			tr.LastAlert = now
		}
	}
	return next
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// matchRaise is Tree().Match(LabelsOf(a), now) with one labels map for
// every raise: a raise is on the alarm path, and a fresh map is about
// 400 bytes for the collector. Matching keeps nothing of the map.
func (d *Dispatcher) matchRaise(a *alarm.Alarm, now time.Time) []Plan {
	tree := d.Tree()
	d.lmu.Lock()
	defer d.lmu.Unlock()
	if d.labels == nil {
		d.labels = make(map[string]string, 7)
	}
	fillLabels(d.labels, a)
	return tree.Match(d.labels, now)
}
