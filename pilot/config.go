package pilot

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
)

// Config is the hub config's pilot section: where pilot evidence goes
// (InfluxDB, optional; the embedded store always) and the trials with
// their success criteria, agreed before each trial starts.
type Config struct {
	// Influx, when set, receives every event, transition and alarm record.
	// Absent: the embedded store in the data dir only.
	Influx *InfluxConfig `yaml:"influx"`
	// PseudonymKeyFile holds the HMAC key that turns resident and device
	// ids into pseudonyms. Empty: generated into <data_dir>/pilot/pseudonym.key.
	PseudonymKeyFile string `yaml:"pseudonym_key_file"`
	// SpoolMaxMB bounds the durable queue in front of InfluxDB (default 256).
	SpoolMaxMB int `yaml:"spool_max_mb"`
	// Night is the window that makes a resident-night (default 22:00–07:00,
	// hub timezone).
	Night *Window `yaml:"night"`
	// Trials are the pilots that run or ran on this hub.
	Trials []Trial `yaml:"trials"`
}

// InfluxConfig names an InfluxDB 2.x/Cloud bucket, or a 1.8+ database
// (bucket "db/rp", org empty, token "user:password" or empty).
type InfluxConfig struct {
	URL       string `yaml:"url"`
	Org       string `yaml:"org"`
	Bucket    string `yaml:"bucket"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// Window is a wall-clock window "HH:MM"–"HH:MM"; it may wrap midnight.
type Window struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

// Trial is one pilot: a need, a hypothesis, arms, a period, consent and
// criteria agreed up front (behov → lösning → test).
type Trial struct {
	ID         string      `yaml:"id" json:"id"`
	Title      string      `yaml:"title" json:"title"`
	Need       string      `yaml:"need" json:"need"`
	Hypothesis string      `yaml:"hypothesis" json:"hypothesis"`
	Start      string      `yaml:"start" json:"start"` // YYYY-MM-DD, first night
	End        string      `yaml:"end" json:"end"`     // YYYY-MM-DD, exclusive
	Arms       []Arm       `yaml:"arms" json:"arms"`
	Consent    []Consent   `yaml:"consent" json:"consent"`
	Criteria   []Criterion `yaml:"criteria" json:"criteria"`
	// Baseline is the arm working the old way, against which physical
	// night visits replaced are counted; default: the baseline of the
	// first criterion that names one.
	Baseline string `yaml:"baseline" json:"baseline,omitempty"`
	// Benefits are the benefit calculation's assumptions (nyttokalkyl);
	// default DefaultAssumptions, editable on the page.
	Benefits Assumptions `yaml:"benefits" json:"benefits"`
	// BaselineStart (YYYY-MM-DD, before Start) opens a baseline period
	// [BaselineStart, Start): the same units measured before the trial, so
	// a criterion can compare an arm with itself before (baseline
	// "before") as well as with another arm. Alarms on the trial's units
	// in that period are recorded for the trial.
	BaselineStart string `yaml:"baseline_start" json:"baseline_start,omitempty"`
	// AssumedOutageHours is how long a device outage is taken to last
	// (detection and repair) while none has been seen. Without an outage
	// the data say nothing about how long one lasts, so device uptime has
	// no lower bound and an uptime criterion stays undecided however long
	// the trial runs; with this assumption, shown on the page, zero
	// outages over many device-hours can meet it. 0: no assumption.
	AssumedOutageHours float64 `yaml:"assumed_outage_hours" json:"assumed_outage_hours,omitempty"`
}

// BaselineBefore is a criterion's baseline meaning "the same arm in the
// trial's baseline period".
const BaselineBefore = "before"

// BaselinePeriod is [baseline_start, start) in loc; ok false without one.
func (t *Trial) BaselinePeriod(loc *time.Location) (from, to time.Time, ok bool) {
	if t.BaselineStart == "" {
		return time.Time{}, time.Time{}, false
	}
	from, err := time.ParseInLocation(time.DateOnly, t.BaselineStart, loc)
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	to, _ = t.Period(loc)
	return from, to, from.Before(to)
}

// Recorded is the span whose data belongs to the trial: its baseline
// period, if any, and its period.
func (t *Trial) Recorded(loc *time.Location) (from, to time.Time) {
	from, to = t.Period(loc)
	if b, _, ok := t.BaselinePeriod(loc); ok {
		from = b
	}
	return from, to
}

// BaselineArm is the arm the others are compared with ("" if none).
func (t *Trial) BaselineArm() string {
	if t.Baseline != "" {
		return t.Baseline
	}
	for _, c := range t.Criteria {
		if c.Baseline != "" && c.Baseline != BaselineBefore {
			return c.Baseline
		}
	}
	return ""
}

// Arm is one way of working in a trial, on some units or residents.
type Arm struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
	// Units ("site/unit") and Residents ("site/resident") in this arm.
	Units     []string `yaml:"units" json:"units,omitempty"`
	Residents []string `yaml:"residents" json:"-"`
	// ResidentCount is how many residents the arm covers (for
	// resident-nights); default: len(residents), else those seen.
	ResidentCount int `yaml:"resident_count" json:"resident_count,omitempty"`
	// PlannedNightVisits is the routine physical visits per resident-night
	// in this arm (night rounds); alarm-driven visits are counted on top.
	PlannedNightVisits float64 `yaml:"planned_night_visits" json:"planned_night_visits"`
	// DeviceCount is how many supervised devices the arm has (for device
	// uptime); default: the hub's registered devices in the arm's units
	// or of its residents.
	DeviceCount int `yaml:"device_count" json:"device_count,omitempty"`
}

// Consent is a consent record for a trial participant ("site/resident"):
// the participant starts on RecordedAt and, if consent is withdrawn or
// the participant stops, ends on WithdrawnAt (the continuation rate).
type Consent struct {
	Resident   string `yaml:"resident" json:"-"`
	RecordedBy string `yaml:"recorded_by" json:"recorded_by"`
	RecordedAt string `yaml:"recorded_at" json:"recorded_at"`
	Note       string `yaml:"note" json:"note,omitempty"`
	// Arm the participant is in; default: the arm that lists the resident.
	Arm string `yaml:"arm" json:"arm,omitempty"`
	// WithdrawnAt (YYYY-MM-DD) is when the participant stopped; empty:
	// continues.
	WithdrawnAt string `yaml:"withdrawn_at" json:"withdrawn_at,omitempty"`
	// WithdrawnReason is why, in words without personal data (e.g.
	// "upplevde sensorerna som störande").
	WithdrawnReason string `yaml:"withdrawn_reason" json:"withdrawn_reason,omitempty"`
}

// Criterion is one success criterion, agreed before the trial began.
type Criterion struct {
	ID   string `yaml:"id" json:"id"`
	Text string `yaml:"text" json:"text"` // as agreed, in words
	// Metric is one of Metrics (e.g. p90_to_accept_s,
	// alarms_per_resident_night.button).
	Metric string `yaml:"metric" json:"metric"`
	Arm    string `yaml:"arm" json:"arm"`
	// Op: at_most, at_least (against Value), reduced_by_pct (at least
	// Value % below Baseline's) or no_rise (at most Value % above Baseline's).
	Op         string  `yaml:"op" json:"op"`
	Value      float64 `yaml:"value" json:"value"`
	Baseline   string  `yaml:"baseline" json:"baseline,omitempty"`
	MinSamples int     `yaml:"min_samples" json:"min_samples"` // default 20
}

// Ops a criterion can use.
const (
	OpAtMost       = "at_most"
	OpAtLeast      = "at_least"
	OpReducedByPct = "reduced_by_pct"
	OpNoRise       = "no_rise"
)

// DefaultMinSamples is the least data a verdict needs.
const DefaultMinSamples = 20

// DefaultSpoolMB bounds the InfluxDB spool.
const DefaultSpoolMB = 256

// DefaultNight is the resident-night window.
var DefaultNight = Window{Start: "22:00", End: "07:00"}

// Validate checks the section as a whole document (paths start at its
// root); hub.Config calls Check("pilot").
func (c *Config) Validate() error { return errors.Join(c.Check()...) }

// Check validates the section and fills defaults. at is the path of the
// section in the document ("pilot"), so errors carry full paths.
func (c *Config) Check(at ...any) []error {
	var errs []error
	f := func(parts ...any) string { return config.Field(append(append([]any{}, at...), parts...)...) }
	add := func(field, format string, args ...any) { errs = append(errs, config.Errorf(field, format, args...)) }
	if in := c.Influx; in != nil {
		if in.URL == "" {
			add(f("influx", "url"), "missing: e.g. http://127.0.0.1:8086")
		} else if !strings.HasPrefix(in.URL, "http://") && !strings.HasPrefix(in.URL, "https://") {
			add(f("influx", "url"), "must start with http:// or https://")
		}
		if in.Bucket == "" {
			add(f("influx", "bucket"), "missing: a 2.x bucket, or db/rp for InfluxDB 1.8")
		}
		if in.Token != "" && in.TokenFile != "" {
			add(f("influx", "token_file"), "set token or token_file, not both")
		}
	}
	if c.SpoolMaxMB == 0 {
		c.SpoolMaxMB = DefaultSpoolMB
	} else if c.SpoolMaxMB < 1 {
		add(f("spool_max_mb"), "must be at least 1")
	}
	if c.Night == nil {
		n := DefaultNight
		c.Night = &n
	} else if _, _, err := c.Night.parse(); err != nil {
		add(f("night"), "%v", err)
	}
	trials := map[string]bool{}
	for i := range c.Trials {
		errs = append(errs, c.Trials[i].check(trials, func(parts ...any) string { return f(append([]any{"trials", i}, parts...)...) })...)
	}
	return errs
}

func (t *Trial) check(seen map[string]bool, f func(...any) string) []error {
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, config.Errorf(field, format, args...)) }
	if err := event.ValidName(t.ID); err != nil {
		add(f("id"), "%v", err)
	} else if seen[t.ID] {
		add(f("id"), "duplicate trial %q", t.ID)
	}
	seen[t.ID] = true
	if strings.TrimSpace(t.Need) == "" {
		add(f("need"), "missing: the need the trial answers (behov)")
	}
	if strings.TrimSpace(t.Hypothesis) == "" {
		add(f("hypothesis"), "missing: what the trial expects to show")
	}
	start, err1 := time.Parse(time.DateOnly, t.Start)
	if err1 != nil {
		add(f("start"), "missing or not a date YYYY-MM-DD")
	}
	end, err2 := time.Parse(time.DateOnly, t.End)
	if err2 != nil {
		add(f("end"), "missing or not a date YYYY-MM-DD")
	}
	if err1 == nil && err2 == nil && !end.After(start) {
		add(f("end"), "must be after start")
	}
	if t.BaselineStart != "" {
		if b, err := time.Parse(time.DateOnly, t.BaselineStart); err != nil {
			add(f("baseline_start"), "not a date YYYY-MM-DD")
		} else if err1 == nil && !b.Before(start) {
			add(f("baseline_start"), "must be before start (the baseline period ends where the trial starts)")
		}
	}
	if len(t.Arms) == 0 {
		add(f("arms"), "missing: at least one arm, e.g. sensors and call_button_only")
	}
	arms := map[string]bool{}
	where := map[string]string{}
	for k, a := range t.Arms {
		if err := event.ValidName(a.ID); err != nil {
			add(f("arms", k, "id"), "%v", err)
		} else if arms[a.ID] {
			add(f("arms", k, "id"), "duplicate arm %q", a.ID)
		}
		arms[a.ID] = true
		if len(a.Units) == 0 && len(a.Residents) == 0 {
			add(f("arms", k), "missing: units or residents")
		}
		for m, u := range a.Units {
			if !sitePair(u) {
				add(f("arms", k, "units", m), "must be site/unit")
			} else if prev, ok := where[u]; ok {
				add(f("arms", k, "units", m), "%q is already in arm %q", u, prev)
			}
			where[u] = a.ID
		}
		for m, r := range a.Residents {
			if !sitePair(r) {
				add(f("arms", k, "residents", m), "must be site/resident (a pseudonymous id, never a name)")
			} else if prev, ok := where[r]; ok {
				add(f("arms", k, "residents", m), "%q is already in arm %q", r, prev)
			}
			where[r] = a.ID
		}
		if a.ResidentCount < 0 {
			add(f("arms", k, "resident_count"), "must not be negative")
		}
		if a.PlannedNightVisits < 0 {
			add(f("arms", k, "planned_night_visits"), "must not be negative")
		}
		if a.DeviceCount < 0 {
			add(f("arms", k, "device_count"), "must not be negative")
		}
	}
	for _, b := range []struct {
		name string
		v    float64
	}{{"minutes_per_visit", t.Benefits.MinutesPerVisit}, {"hourly_cost", t.Benefits.HourlyCost},
		{"callout_cost", t.Benefits.CalloutCost}, {"guarantee_min", t.Benefits.GuaranteeMin}} {
		if b.v < 0 || b.v > 1e6 || math.IsNaN(b.v) {
			add(f("benefits", b.name), "must be between 0 and 1000000")
		}
	}
	if t.AssumedOutageHours < 0 || t.AssumedOutageHours > 24*90 || math.IsNaN(t.AssumedOutageHours) {
		add(f("assumed_outage_hours"), "must be between 0 and 2160 (90 days)")
	}
	if t.Baseline != "" && !arms[t.Baseline] {
		add(f("baseline"), "no arm %q in this trial", t.Baseline)
	}
	for k, c := range t.Consent {
		if !sitePair(c.Resident) {
			add(f("consent", k, "resident"), "must be site/resident")
		}
		if c.RecordedBy == "" {
			add(f("consent", k, "recorded_by"), "missing: who recorded the consent")
		}
		rec, err := time.Parse(time.DateOnly, c.RecordedAt)
		if err != nil {
			add(f("consent", k, "recorded_at"), "missing or not a date YYYY-MM-DD")
		}
		if c.Arm != "" && !arms[c.Arm] {
			add(f("consent", k, "arm"), "no arm %q in this trial", c.Arm)
		}
		if c.WithdrawnAt != "" {
			if w, err2 := time.Parse(time.DateOnly, c.WithdrawnAt); err2 != nil {
				add(f("consent", k, "withdrawn_at"), "not a date YYYY-MM-DD")
			} else if err == nil && w.Before(rec) {
				add(f("consent", k, "withdrawn_at"), "must not be before recorded_at")
			}
		} else if c.WithdrawnReason != "" {
			add(f("consent", k, "withdrawn_reason"), "set only with withdrawn_at")
		}
	}
	if len(t.Criteria) == 0 {
		add(f("criteria"), "missing: success criteria must be agreed before the trial starts")
	}
	ids := map[string]bool{}
	for k := range t.Criteria {
		c := &t.Criteria[k]
		cf := func(name string) string { return f("criteria", k, name) }
		if c.ID == "" {
			c.ID = fmt.Sprintf("c%d", k+1)
		} else if ids[c.ID] {
			add(cf("id"), "duplicate criterion %q", c.ID)
		}
		ids[c.ID] = true
		if !KnownMetric(c.Metric) {
			add(cf("metric"), "unknown metric %q; known: %s", c.Metric, strings.Join(Metrics, ", "))
		}
		if !arms[c.Arm] {
			add(cf("arm"), "no arm %q in this trial", c.Arm)
		}
		switch c.Op {
		case OpAtMost, OpAtLeast:
			if c.Baseline != "" {
				add(cf("baseline"), "only reduced_by_pct and no_rise compare with a baseline arm")
			}
		case OpReducedByPct, OpNoRise:
			if c.Baseline == BaselineBefore {
				if t.BaselineStart == "" {
					add(cf("baseline"), "\"before\" needs the trial's baseline_start (a baseline period)")
				}
			} else if !arms[c.Baseline] {
				add(cf("baseline"), "missing or no arm %q in this trial", c.Baseline)
			} else if c.Baseline == c.Arm {
				add(cf("baseline"), "must be another arm than %q", c.Arm)
			}
			if c.Value < 0 || (c.Op == OpReducedByPct && c.Value > 100) {
				add(cf("value"), "must be a percentage 0–100")
			}
		default:
			add(cf("op"), "must be at_most, at_least, reduced_by_pct or no_rise")
		}
		if c.MinSamples == 0 {
			c.MinSamples = DefaultMinSamples
		} else if c.MinSamples < 1 {
			add(cf("min_samples"), "must be at least 1")
		}
	}
	return errs
}

func sitePair(s string) bool {
	site, id, ok := strings.Cut(s, "/")
	return ok && event.ValidName(site) == nil && event.ValidName(id) == nil
}

// Period is the trial's period in loc: from the start date's midnight to
// the end date's. The config must have been checked.
func (t *Trial) Period(loc *time.Location) (from, to time.Time) {
	s, _ := time.ParseInLocation(time.DateOnly, t.Start, loc)
	e, _ := time.ParseInLocation(time.DateOnly, t.End, loc)
	return s, e
}

// ArmOf returns the arm that site/unit or site/resident belongs to.
func (t *Trial) ArmOf(site, unit, resident string) (string, bool) {
	for _, a := range t.Arms {
		for _, r := range a.Residents {
			if resident != "" && r == site+"/"+resident {
				return a.ID, true
			}
		}
	}
	for _, a := range t.Arms {
		for _, u := range a.Units {
			if unit != "" && u == site+"/"+unit {
				return a.ID, true
			}
		}
	}
	return "", false
}

// Arm returns the arm with id.
func (t *Trial) Arm(id string) (Arm, bool) {
	for _, a := range t.Arms {
		if a.ID == id {
			return a, true
		}
	}
	return Arm{}, false
}

// Trial returns the trial with id.
func (c *Config) Trial(id string) (*Trial, bool) {
	for i := range c.Trials {
		if c.Trials[i].ID == id {
			return &c.Trials[i], true
		}
	}
	return nil, false
}

// Assign names the trial and arm that an alarm or event at (site, unit,
// resident) at time at belongs to, or "" outside every trial.
func (c *Config) Assign(site, unit, resident string, at time.Time, loc *time.Location) (trial, arm string) {
	for i := range c.Trials {
		t := &c.Trials[i]
		from, to := t.Recorded(loc)
		if at.Before(from) || !at.Before(to) {
			continue
		}
		if a, ok := t.ArmOf(site, unit, resident); ok {
			return t.ID, a
		}
	}
	return "", ""
}

func (w Window) parse() (start, end int, err error) {
	p := func(s string) (int, error) {
		t, err := time.Parse("15:04", s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a time HH:MM", s)
		}
		return t.Hour()*60 + t.Minute(), nil
	}
	if start, err = p(w.Start); err != nil {
		return
	}
	end, err = p(w.End)
	return
}

// Contains reports whether at's wall clock in loc falls in the window.
func (w Window) Contains(at time.Time, loc *time.Location) bool {
	s, e, err := w.parse()
	if err != nil {
		return false
	}
	l := at.In(loc)
	m := l.Hour()*60 + l.Minute()
	if s <= e {
		return m >= s && m < e
	}
	return m >= s || m < e
}
