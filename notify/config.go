// Package notify decides who is alerted about an alarm, now and later, and
// records every step on the alarm.
//
// A route tree in the spirit of Alertmanager's dispatch/route.go matches
// an alarm's labels (site, unit, room, kind, priority, rule) and the shift
// window it was raised in (night, day) to receivers: a group of staff, one
// person or a webhook (an alarm receiving centre, an SMS gateway). Unlike
// Alertmanager it waits for nothing: the first tier is alerted at once,
// and an explicit escalation state machine (escalation.go) climbs to the
// next tier when no phone confirms the alert or nobody accepts in time,
// and reminds in between. Each step is a transition on the alarm
// (notify, delivered, escalate, reminder), persisted by the hub's journal.
package notify

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/rules"
)

// Config is the routing: section of the hub config. See docs/routing.md.
type Config struct {
	// Shifts are named daily windows of local wall-clock time (the hub's
	// time zone), e.g. night: {start: "22:00", end: "07:00"}.
	Shifts map[string]Shift `yaml:"shifts"`
	// Receivers are who can be alerted.
	Receivers []Receiver `yaml:"receivers"`
	// Route is the root of the route tree. It matches every alarm.
	Route *Route `yaml:"route"`
}

// Shift is a daily window, start inclusive, end exclusive.
type Shift struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

// Receiver is a group of staff, one person, or a webhook.
type Receiver struct {
	Name  string   `yaml:"name"`
	Users []string `yaml:"users"` // staff usernames: one person or a group
	// Roles adds every user of these roles (staff, lead, admin,
	// technician) to Users when the hub's config is checked, so "every
	// lead" needs no list kept by hand (hub/config_roles.go).
	Roles   []string `yaml:"roles"`
	Webhook *Webhook `yaml:"webhook"`
	// SCAIP hands the alarm to an alarm receiving centre (larmcentral)
	// over SCAIP, SS 91100:2014 (scaip.go).
	SCAIP *SCAIP `yaml:"scaip"`
	// Roster "on_duty" alerts the staff on duty, by the shift roster, for
	// the alarm's site and unit at the alarm's time (roster.go). Users,
	// if also set, are alerted instead when nobody is on duty, so a gap
	// in the roster never leaves an alarm with nobody to wake.
	Roster string `yaml:"roster"`
	// Fallback is set on a resolved roster receiver whose tier went to
	// its users because nobody was on duty.
	Fallback bool `yaml:"-" json:"fallback,omitempty"`
}

// Webhook posts the alarm as JSON to an alarm receiving centre or an SMS
// gateway. A 2xx answer counts as delivered.
type Webhook struct {
	URL        string        `yaml:"url"`
	Timeout    time.Duration `yaml:"timeout"`     // per attempt, default 5s
	MaxRetries int           `yaml:"max_retries"` // default 3
}

// Route is one node of the route tree. Unset fields are inherited from
// the parent.
type Route struct {
	// Match is label → value; a value may list alternatives "a|b".
	// Labels: site, unit, room, kind, priority, rule.
	Match map[string]string `yaml:"match"`
	// Shift limits the route to a named shift window.
	Shift    string `yaml:"shift"`
	Receiver string `yaml:"receiver"`
	// Escalate lists the receivers of the next tiers, in order.
	Escalate []string `yaml:"escalate"`
	// DeliveryTimeout: no phone of the current tier confirmed the alert
	// within this → next tier. 0 turns the check off.
	DeliveryTimeout *time.Duration `yaml:"delivery_timeout"`
	// AcceptTimeout: nobody accepted within this after the current tier
	// was alerted → next tier.
	AcceptTimeout *time.Duration `yaml:"accept_timeout"`
	// RemindEvery repeats the alert to everyone alerted so far until
	// someone accepts. 0 turns reminders off.
	RemindEvery *time.Duration `yaml:"remind_every"`
	// Continue goes on to the next sibling after a match, so one alarm can
	// reach several receivers.
	Continue bool     `yaml:"continue"`
	Routes   []*Route `yaml:"routes"`
	// GroupBy, GroupWait and GroupInterval group technical alarms (never
	// care alarms) in Alertmanager's spirit: alarms with the same values
	// of the GroupBy labels become one group alarm, notified GroupWait
	// after its first member and then at most once per GroupInterval.
	// Default for technical alarms: [site, gateway]; ["..."] turns
	// grouping off (each alarm its own). See grouping.go.
	GroupBy       []string       `yaml:"group_by"`
	GroupWait     *time.Duration `yaml:"group_wait"`
	GroupInterval *time.Duration `yaml:"group_interval"`
}

// Labels an alarm can be routed on.
var Labels = []string{"site", "unit", "room", "kind", "priority", "rule", "gateway"}

// Defaults when the root route does not set them.
const (
	DefaultDeliveryTimeout = 30 * time.Second
	DefaultAcceptTimeout   = 60 * time.Second
	DefaultRemindEvery     = 60 * time.Second
	// MaxDepth and MaxRoutes bound the tree (a config is outside input).
	MaxDepth  = 16
	MaxRoutes = 1000
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Validate checks the section. field is its path ("routing"); users are
// the hub's staff usernames.
func (c *Config) Validate(field string, users []string) []error {
	var errs []error
	add := func(f, format string, args ...any) { errs = append(errs, config.Errorf(f, format, args...)) }
	if c.Route == nil && len(c.Receivers) == 0 && len(c.Shifts) == 0 {
		return nil // the default route: every user, see Compile
	}
	for name, s := range c.Shifts {
		f := config.Field(field, "shifts", name)
		if !nameRE.MatchString(name) {
			add(f, "shift name must be lower-case letters, digits, . _ -")
		}
		if _, err := rules.ParseWindow(s.Start, s.End); err != nil {
			add(f, "%v", err)
		}
	}
	known := map[string]bool{}
	for _, u := range users {
		known[u] = true
	}
	recv := map[string]bool{}
	for i, r := range c.Receivers {
		f := func(parts ...any) string { return config.Field(append([]any{field, "receivers", i}, parts...)...) }
		switch {
		case !nameRE.MatchString(r.Name):
			add(f("name"), "missing or not lower-case letters, digits, . _ -")
		case recv[r.Name]:
			add(f("name"), "duplicate receiver %q", r.Name)
		}
		recv[r.Name] = true
		if r.SCAIP != nil {
			if r.Roster != "" || len(r.Users) > 0 || r.Webhook != nil {
				add(f(), "set scaip alone, not with users, roster or webhook")
			}
			errs = append(errs, r.SCAIP.validate(f("scaip"))...)
			continue
		}
		switch {
		case r.Roster != "" && r.Roster != RosterOnDuty:
			add(f("roster"), "must be %s", RosterOnDuty)
		case r.Roster != "" && r.Webhook != nil:
			add(f(), "set roster or webhook, not both")
		case r.Roster != "":
		case len(r.Users) > 0 && r.Webhook != nil:
			add(f(), "set users or webhook, not both")
		case len(r.Users) == 0 && r.Webhook == nil:
			add(f(), "missing: users (staff usernames), roster: on_duty, webhook or scaip")
		}
		for k, u := range r.Users {
			if !known[u] {
				add(f("users", k), "no user %q under users", u)
			}
		}
		if w := r.Webhook; w != nil {
			u, err := url.Parse(w.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(f("webhook", "url"), "missing or not an http(s) URL")
			}
			if w.Timeout < 0 || w.Timeout > time.Minute {
				add(f("webhook", "timeout"), "must be between 0 (default 5s) and 1m")
			}
			if w.MaxRetries < 0 || w.MaxRetries > 10 {
				add(f("webhook", "max_retries"), "must be between 0 (default 3) and 10")
			}
		}
	}
	if c.Route == nil {
		add(config.Field(field, "route"), "missing: the root route with a receiver")
		return errs
	}
	if c.Route.Receiver == "" {
		add(config.Field(field, "route", "receiver"), "missing: the root route needs a receiver")
	}
	if len(c.Route.Match) > 0 || c.Route.Shift != "" {
		add(config.Field(field, "route"), "the root route matches every alarm: no match or shift")
	}
	n := 0
	var walk func(r *Route, f string, depth int)
	walk = func(r *Route, f string, depth int) {
		n++
		if depth > MaxDepth {
			add(f, "routes nested deeper than %d", MaxDepth)
			return
		}
		if n > MaxRoutes {
			if n == MaxRoutes+1 {
				add(f, "more than %d routes", MaxRoutes)
			}
			return
		}
		if r == nil {
			add(f, "empty route")
			return
		}
		if r.Receiver != "" && !recv[r.Receiver] {
			add(f+".receiver", "no receiver %q under %s.receivers", r.Receiver, field)
		}
		for k, e := range r.Escalate {
			if !recv[e] {
				add(config.Field(f, "escalate", k), "no receiver %q under %s.receivers", e, field)
			}
		}
		if r.Shift != "" {
			if _, ok := c.Shifts[r.Shift]; !ok {
				add(f+".shift", "no shift %q under %s.shifts", r.Shift, field)
			}
		}
		for _, k := range sortedKeys(r.Match) {
			if !slices.Contains(Labels, k) {
				add(config.Field(f, "match", k), "not a label; labels: %s", strings.Join(Labels, ", "))
			} else if r.Match[k] == "" {
				add(config.Field(f, "match", k), "empty value")
			}
		}
		for _, d := range []struct {
			name string
			v    *time.Duration
			min  time.Duration
		}{{"delivery_timeout", r.DeliveryTimeout, 5 * time.Second}, {"accept_timeout", r.AcceptTimeout, 5 * time.Second}, {"remind_every", r.RemindEvery, 10 * time.Second}} {
			if d.v != nil && *d.v != 0 && (*d.v < d.min || *d.v > 24*time.Hour) {
				add(f+"."+d.name, "must be 0 (off) or between %v and 24h", d.min)
			}
		}
		errs = append(errs, validateGrouping(r, f)...)
		for k, ch := range r.Routes {
			walk(ch, config.Field(f, "routes", k), depth+1)
		}
	}
	walk(c.Route, config.Field(field, "route"), 0)
	return errs
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// DefaultReceiver is the name of the receiver the default route uses.
const DefaultReceiver = "alla"

// Compile builds the route tree from a validated config. An empty config
// is the default route: every user is alerted at once, reminded every
// minute, with no further tier.
func (c *Config) Compile(users []string, loc *time.Location) (*Tree, error) {
	if loc == nil {
		loc = time.UTC
	}
	if c.Route == nil && len(c.Receivers) == 0 {
		off := time.Duration(0)
		rem := DefaultRemindEvery
		def := &Config{Receivers: []Receiver{{Name: DefaultReceiver, Users: users}},
			Route: &Route{Receiver: DefaultReceiver, DeliveryTimeout: &off, AcceptTimeout: &off, RemindEvery: &rem}}
		if len(users) == 0 {
			return &Tree{loc: loc, receivers: map[string]*Receiver{}}, nil
		}
		return def.Compile(users, loc)
	}
	if errs := c.Validate("routing", users); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t := &Tree{loc: loc, receivers: map[string]*Receiver{}, shifts: map[string]rules.Window{}}
	for i := range c.Receivers {
		r := c.Receivers[i]
		t.receivers[r.Name] = &r
	}
	for name, s := range c.Shifts {
		w, _ := rules.ParseWindow(s.Start, s.End)
		t.shifts[name] = w
	}
	root := compiled{receiver: c.Route.Receiver, delivery: DefaultDeliveryTimeout, accept: DefaultAcceptTimeout, remind: DefaultRemindEvery,
		groupBy: DefaultGroupBy, groupWait: DefaultGroupWait, groupInterval: DefaultGroupInterval}
	t.root = t.build(c.Route, root, "routing.route")
	return t, nil
}

func (t *Tree) build(r *Route, parent compiled, path string) *node {
	n := &node{path: path, shift: r.Shift, cont: r.Continue, match: map[string][]string{}}
	c := parent
	if r.Receiver != "" {
		c.receiver = r.Receiver
	}
	if r.Escalate != nil {
		c.escalate = r.Escalate
	}
	if r.DeliveryTimeout != nil {
		c.delivery = *r.DeliveryTimeout
	}
	if r.AcceptTimeout != nil {
		c.accept = *r.AcceptTimeout
	}
	if r.RemindEvery != nil {
		c.remind = *r.RemindEvery
	}
	inheritGrouping(r, &c)
	n.opts = c
	for k, v := range r.Match {
		n.match[k] = strings.Split(v, "|")
	}
	for i, ch := range r.Routes {
		n.children = append(n.children, t.build(ch, c, fmt.Sprintf("%s.routes.%d", path, i)))
	}
	return n
}
