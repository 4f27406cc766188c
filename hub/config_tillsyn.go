package hub

import (
	"strings"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/tillsyn"
)

// TillsynConfig is a resident's digital night supervision plan
// (residents[].plan.tillsyn, docs/tillsyn.md): planned look-ins that replace
// physical night visits, and what "all right" means from the resident's
// sensors. It runs only with consent (consent.rules lists tillsyn).
type TillsynConfig struct {
	// Times are fixed look-ins, "23:00", inside the night window; Every
	// spaces them instead (2h: from the window's start + 2h).
	Times []string      `yaml:"times"`
	Every time.Duration `yaml:"every"`
	// Tolerance is how long after the planned time the resident may still
	// come out all right (default 10m). Look-ins may not overlap.
	Tolerance *time.Duration `yaml:"tolerance"`
	// HeardWithin: a sensor not heard within this long cannot vouch for
	// the resident (default: its own supervision period).
	HeardWithin time.Duration   `yaml:"heard_within"`
	AllRight    TillsynCriteria `yaml:"all_right"`
	Sensors     []string        `yaml:"sensors"` // device ids; empty: the resident's bed, mat, presence and own door sensors
	NotAllRight TillsynAction   `yaml:"not_all_right"`
	Replaces    []string        `yaml:"replaces"` // physical visits (wall times) a look-in at the same time replaces
}

// TillsynCriteria say what "all right" means; every one set must hold.
type TillsynCriteria struct {
	InBed          bool          `yaml:"in_bed"`
	InBedFor       time.Duration `yaml:"in_bed_for"`
	PresenceWithin time.Duration `yaml:"presence_within"`
	DoorClosed     bool          `yaml:"door_closed"`
	NoAlarmOpen    bool          `yaml:"no_alarm_open"`
}

// TillsynAction is what a look-in that is not all right leads to.
type TillsynAction struct {
	Do          string        `yaml:"do"`       // visit (default) or alarm
	Kind        string        `yaml:"kind"`     // the alarm's kind: call (default), wander or fall
	Priority    int           `yaml:"priority"` // 1–3, default 2
	VisitWithin time.Duration `yaml:"visit_within"`
}

// DefaultTillsynTolerance is a plan's tolerance when it sets none.
const DefaultTillsynTolerance = 10 * time.Minute

// roleOf is the look-in role a device type serves.
func roleOf(t event.DeviceType) (tillsyn.Role, bool) {
	switch t {
	case event.BedMonitor, event.MatSensor:
		return tillsyn.RoleBed, true
	case event.Occupancy, event.WanderSensor:
		return tillsyn.RolePresence, true
	case event.DoorSensor:
		return tillsyn.RoleDoor, true
	}
	return "", false
}

// checkTillsyn validates the site's tillsyn plans; f builds the site's
// field paths.
func checkTillsyn(s *Site, f func(parts ...any) string) []error {
	var errs []error
	if s.Plan.Tillsyn != nil {
		errs = append(errs, config.Errorf(f("plan", "tillsyn"), "tillsyn is planned per resident (residents[].plan.tillsyn), with their consent"))
	}
	for k, u := range s.Units {
		if u.Plan.Tillsyn != nil {
			errs = append(errs, config.Errorf(f("units", k, "plan", "tillsyn"), "tillsyn is planned per resident (residents[].plan.tillsyn), with their consent"))
		}
	}
	var own map[string][]Device
	for k := range s.Residents {
		r := &s.Residents[k]
		if r.Plan.Tillsyn == nil {
			continue
		}
		if own == nil {
			own = devicesByResident(s)
		}
		tf := func(parts ...any) string {
			return f(append([]any{"residents", k, "plan", "tillsyn"}, parts...)...)
		}
		_, es := compileTillsyn(s, r, own[r.ID], tf)
		errs = append(errs, es...)
	}
	return errs
}

// devicesByResident indexes a site's devices by resident, in config order:
// a region's 10,000 plans must not each walk every device.
func devicesByResident(s *Site) map[string][]Device {
	out := map[string][]Device{}
	for _, g := range s.Gateways {
		for _, d := range g.Devices {
			if d.Resident != "" {
				out[d.Resident] = append(out[d.Resident], d)
			}
		}
	}
	return out
}

// compileTillsyn resolves one resident's plan, with the errors that make
// it unusable (named by field); devs are the resident's devices.
func compileTillsyn(s *Site, r *Resident, devs []Device, tf func(parts ...any) string) (*tillsyn.Plan, []error) {
	tc := r.Plan.Tillsyn
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, config.Errorf(field, format, args...)) }
	p := &tillsyn.Plan{Site: s.ID, Unit: r.Unit, Resident: r.ID, Every: tc.Every, Tolerance: DefaultTillsynTolerance,
		Criteria: tillsyn.Criteria{InBed: tc.AllRight.InBed, InBedFor: tc.AllRight.InBedFor, PresenceWithin: tc.AllRight.PresenceWithin,
			DoorClosed: tc.AllRight.DoorClosed, NoAlarmOpen: tc.AllRight.NoAlarmOpen},
		Limits: tillsyn.Limits{HeardWithin: tc.HeardWithin}}
	if tc.Tolerance != nil {
		p.Tolerance = *tc.Tolerance
	}
	for _, c := range r.Consent.Rules {
		if c == rules.RuleTillsyn {
			p.Consent = true
		}
	}
	if !p.Consent {
		add(tf(), "no recorded consent: digital supervision needs %q in consent.rules, with recorded_by and recorded_at", rules.RuleTillsyn)
	}
	night := s.Night
	for _, u := range s.Units {
		if u.ID == r.Unit && u.Night != nil {
			night = *u.Night
		}
	}
	if r.Night != nil {
		night = *r.Night
	}
	w, err := rules.ParseWindow(night.Start, night.End)
	if err != nil {
		return nil, append(errs, config.Errorf(tf(), "needs a valid night window"))
	}
	p.NightStart, p.NightEnd = w.Start, w.End
	for i, t := range tc.Times {
		m, err := tillsyn.ParseClock(t)
		if err != nil {
			add(tf("times", i), "%v", err)
			continue
		}
		p.Times = append(p.Times, m)
	}
	for i, t := range tc.Replaces {
		m, err := tillsyn.ParseClock(t)
		if err != nil {
			add(tf("replaces", i), "%v", err)
			continue
		}
		p.Replaces = append(p.Replaces, m)
	}
	if tc.HeardWithin < 0 || tc.AllRight.InBedFor < 0 || tc.AllRight.PresenceWithin < 0 {
		add(tf("all_right"), "durations must not be negative")
	}
	if len(errs) == 0 {
		for _, e := range p.Check() {
			field, msg, _ := strings.Cut(e.Error(), ": ")
			if i := strings.IndexByte(field, '.'); i > 0 {
				add(tf(field[:i], field[i+1:]), "%s", msg)
			} else {
				add(tf(field), "%s", msg)
			}
		}
	}
	// Action.
	switch tc.NotAllRight.Do {
	case "", string(tillsyn.DoVisit):
		p.Action.Kind = tillsyn.DoVisit
	case string(tillsyn.DoAlarm):
		p.Action.Kind = tillsyn.DoAlarm
	default:
		add(tf("not_all_right", "do"), "must be visit or alarm")
	}
	p.Action.AlarmKind = tc.NotAllRight.Kind
	switch tc.NotAllRight.Kind {
	case "":
		p.Action.AlarmKind = "call"
	case "call", "wander", "fall":
	default:
		add(tf("not_all_right", "kind"), "must be call, wander or fall")
	}
	p.Action.Priority = tc.NotAllRight.Priority
	if p.Action.Priority == 0 {
		p.Action.Priority = 2
	} else if p.Action.Priority < 1 || p.Action.Priority > 3 {
		add(tf("not_all_right", "priority"), "must be 1, 2 or 3")
	}
	p.Action.VisitWithin = tc.NotAllRight.VisitWithin
	if p.Action.VisitWithin < 0 {
		add(tf("not_all_right", "visit_within"), "must not be negative")
	}
	// Sensors: the resident's own devices only.
	own := map[string]Device{}
	for _, d := range devs {
		own[d.ID] = d
	}
	roles := map[tillsyn.Role]bool{}
	if len(tc.Sensors) > 0 {
		for i, id := range tc.Sensors {
			d, ok := own[id]
			if !ok {
				add(tf("sensors", i), "resident %q has no device %q (devices[].resident must name them)", r.ID, id)
				continue
			}
			t, _ := event.ParseDeviceType(d.Type)
			role, ok := roleOf(t)
			if !ok {
				add(tf("sensors", i), "device %q is a %s: a look-in reads bed, mat, presence or door sensors", id, t.Name())
				continue
			}
			p.Sensors = append(p.Sensors, tillsyn.SensorRef{Device: id, Role: role})
			roles[role] = true
		}
	} else {
		for _, d := range devs {
			if d.Exit {
				continue
			}
			t, _ := event.ParseDeviceType(d.Type)
			if role, ok := roleOf(t); ok {
				p.Sensors = append(p.Sensors, tillsyn.SensorRef{Device: d.ID, Role: role})
				roles[role] = true
			}
		}
	}
	need := map[tillsyn.Role]string{tillsyn.RoleBed: "in_bed", tillsyn.RolePresence: "presence_within", tillsyn.RoleDoor: "door_closed"}
	for _, role := range p.Criteria.Roles() {
		if !roles[role] {
			add(tf("all_right", need[role]), "resident %q has no %s sensor for it", r.ID, role)
		}
	}
	return p, errs
}

// TillsynPlans returns every resident's supervision plan, resolved.
// Validate first: plans with errors are left out.
func (c *Config) TillsynPlans() []*tillsyn.Plan {
	var out []*tillsyn.Plan
	for i := range c.Sites {
		s := &c.Sites[i]
		var own map[string][]Device
		for k := range s.Residents {
			r := &s.Residents[k]
			if r.Plan.Tillsyn == nil {
				continue
			}
			if own == nil {
				own = devicesByResident(s)
			}
			if p, errs := compileTillsyn(s, r, own[r.ID], func(...any) string { return "" }); len(errs) == 0 {
				out = append(out, p)
			}
		}
	}
	return out
}
