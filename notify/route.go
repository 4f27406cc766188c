package notify

import (
	"slices"
	"strconv"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/rules"
)

// Tree is a compiled route tree. It is immutable: a reload builds a new one.
type Tree struct {
	loc       *time.Location
	root      *node
	receivers map[string]*Receiver
	shifts    map[string]rules.Window
	roster    OnDuty // resolves roster receivers; nil: nobody on duty
}

type compiled struct {
	receiver                 string
	escalate                 []string
	delivery, accept, remind time.Duration
	groupBy                  []string // nil or ["..."]: not grouped
	groupWait, groupInterval time.Duration
}

type node struct {
	path     string
	match    map[string][]string
	shift    string
	cont     bool
	opts     compiled
	children []*node
}

// Plan is what one matching route says: who is alerted at each tier and
// the timers that move an alarm between them.
type Plan struct {
	Route           string        `json:"route"` // config path of the matched route
	Tiers           []*Receiver   `json:"tiers"` // tier 0 is alerted at once
	DeliveryTimeout time.Duration `json:"delivery_timeout"`
	AcceptTimeout   time.Duration `json:"accept_timeout"`
	RemindEvery     time.Duration `json:"remind_every"`
	// Grouping of technical alarms on this route (grouping.go); care
	// alarms are never grouped whatever it says.
	GroupBy       []string      `json:"group_by,omitempty"`
	GroupWait     time.Duration `json:"group_wait,omitempty"`
	GroupInterval time.Duration `json:"group_interval,omitempty"`
}

// LabelsOf returns the routing labels of an alarm.
func LabelsOf(a *alarm.Alarm) map[string]string {
	m := make(map[string]string, 7)
	fillLabels(m, a)
	return m
}

// fillLabels sets a's labels in m (LabelsOf, into a map reused).
func fillLabels(m map[string]string, a *alarm.Alarm) {
	m["site"], m["unit"], m["room"], m["kind"] = a.Site, a.Unit, a.Room, string(a.Kind)
	m["priority"], m["rule"], m["gateway"] = strconv.Itoa(int(a.Priority)), a.Rule, a.Gateway
}

// Match returns the plans for labels at time at: the deepest matching
// route on each branch, siblings after a match only when it says continue.
// An empty tree (no users at all) returns nothing.
func (t *Tree) Match(labels map[string]string, at time.Time) []Plan {
	if t == nil || t.root == nil {
		return nil
	}
	var out []Plan
	t.match(t.root, labels, at, &out)
	return out
}

func (t *Tree) match(n *node, labels map[string]string, at time.Time, out *[]Plan) {
	matched := false
	for _, ch := range n.children {
		if !t.matches(ch, labels, at) {
			continue
		}
		matched = true
		t.match(ch, labels, at, out)
		if !ch.cont {
			break
		}
	}
	if !matched {
		*out = append(*out, t.plan(n, labels, at))
	}
}

func (t *Tree) matches(n *node, labels map[string]string, at time.Time) bool {
	for k, alts := range n.match {
		if !slices.Contains(alts, labels[k]) {
			return false
		}
	}
	if n.shift != "" {
		w, ok := t.shifts[n.shift]
		if !ok || !w.Contains(at, t.loc) {
			return false
		}
	}
	return true
}

func (t *Tree) plan(n *node, labels map[string]string, at time.Time) Plan {
	p := Plan{Route: n.path, DeliveryTimeout: n.opts.delivery, AcceptTimeout: n.opts.accept, RemindEvery: n.opts.remind}
	if g := n.opts.groupBy; len(g) > 0 && g[0] != GroupOff {
		p.GroupBy, p.GroupWait, p.GroupInterval = g, n.opts.groupWait, n.opts.groupInterval
	}
	if r := t.receivers[n.opts.receiver]; r != nil {
		p.Tiers = append(p.Tiers, t.resolve(r, labels, at))
	}
	for _, e := range n.opts.escalate {
		if r := t.receivers[e]; r != nil {
			p.Tiers = append(p.Tiers, t.resolve(r, labels, at))
		}
	}
	return p
}

// Location is the tree's time zone (shift windows are read on it).
func (t *Tree) Location() *time.Location { return t.loc }

// Receivers lists the receivers by name.
func (t *Tree) Receivers() map[string]*Receiver { return t.receivers }
