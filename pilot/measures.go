package pilot

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Dist is a response-time distribution in seconds against the 60 s and
// 180 s targets (TSA: 97.5 % within 60 s, 99 % within 180 s).
type Dist struct {
	N         int     `json:"n"`
	P50       float64 `json:"p50"`
	P90       float64 `json:"p90"`
	P99       float64 `json:"p99"`
	Within60  float64 `json:"within_60s"`  // share 0–1
	Within180 float64 `json:"within_180s"` // share 0–1
	// sorted are the samples, for the quantiles' confidence intervals.
	sorted []float64
}

// Buckets are the edges (seconds) of the response-time histogram.
var Buckets = []float64{15, 30, 60, 120, 180, 300}

// Measures are the pilot report's figures for one arm (or all) over a period.
type Measures struct {
	From           time.Time `json:"from"`
	To             time.Time `json:"to"`
	Arm            string    `json:"arm,omitempty"`
	Residents      int       `json:"residents"`
	Nights         int       `json:"nights"`
	ResidentNights float64   `json:"resident_nights"`
	// Alarms counts care and technical alarms raised in the period.
	Alarms   int            `json:"alarms"`
	BySource map[Source]int `json:"by_source"`
	// PerResidentNight is alarms per resident-night by source ("" = all).
	PerResidentNight map[Source]float64 `json:"per_resident_night"`
	Outcomes         map[string]int     `json:"outcomes"`
	OutcomeShare     map[string]float64 `json:"outcome_share"`
	ToPhone          Dist               `json:"to_phone"`
	ToAccept         Dist               `json:"to_accept"`
	ToPresence       Dist               `json:"to_presence"`
	ToResolve        Dist               `json:"to_resolve"`
	// AcceptHistogram counts times to accept per Buckets (last: above).
	AcceptHistogram []int `json:"accept_histogram"`
	// Unaccepted counts care alarms not accepted before escalation.
	Unaccepted      int     `json:"unaccepted"`
	UnacceptedShare float64 `json:"unaccepted_share"`
	// Incidents with a real need, by what caught them.
	OnlySensor int `json:"only_sensor"`
	OnlyButton int `json:"only_button"`
	Both       int `json:"both"`
	// Physical night visits: planned rounds plus alarm-driven presence.
	NightVisits      float64 `json:"night_visits"`
	AlarmNightVisits int     `json:"alarm_night_visits"`
	VisitsPerResNt   float64 `json:"night_visits_per_resident_night"`
	// Physical night visits replaced against the trial's baseline arm
	// (set by BuildReport; 0 for the baseline itself): how many fewer
	// visits this arm made than it would have at the baseline's rate.
	VisitsReplaced      float64 `json:"night_visits_replaced"`
	VisitsReplacedShare float64 `json:"night_visits_replaced_share"`
	VisitsBaseline      string  `json:"night_visits_baseline,omitempty"` // "" : no baseline arm, no figure
	// VisitsReplacedFrom says where VisitsReplaced comes from:
	// "supervision_records" (the arm's digital look-ins that were all
	// right, each standing in for a planned visit) or "baseline" (fewer
	// visits than the baseline arm's rate).
	VisitsReplacedFrom string `json:"night_visits_replaced_from,omitempty"`
	// Supervision is the arm's digital night supervision (tillsyn), when
	// it has supervision records in the period.
	Supervision *Supervision `json:"supervision,omitempty"`
	// PhoneVia counts alarms by the channel of their first receipt
	// (push, app, webhook).
	PhoneVia map[string]int `json:"phone_via"`
	// Devices: supervised devices, their uptime over the period (share of
	// device-time not in an outage) and the time from a device's last sign
	// of life to its offline alarm.
	Devices      int     `json:"devices"`
	DeviceHours  float64 `json:"device_hours"`
	DownHours    float64 `json:"down_hours"`
	Outages      int     `json:"outages"` // detected in the period
	DeviceUptime float64 `json:"device_uptime"`
	// AssumedOutageHours is the trial's assumed outage length, used for
	// the uptime interval while no outage has been seen (Trial).
	AssumedOutageHours float64 `json:"assumed_outage_hours,omitempty"`
	TimeToDetect       Dist    `json:"time_to_detect"`
	// Participants who started by the period's end, and how many of them
	// had not stopped by then (the continuation rate).
	Participants     int     `json:"participants"`
	Continued        int     `json:"continued"`
	ContinuationRate float64 `json:"continuation_rate"`
}

// IncidentWindow groups alarms of one resident into one incident.
const IncidentWindow = 30 * time.Minute

// Params are what Compute needs beyond the records.
type Params struct {
	From, To           time.Time
	Loc                *time.Location
	Arm                string  // "" = every record given
	Residents          int     // 0: distinct residents seen (at least 1)
	PlannedNightVisits float64 // per resident-night
	// Devices the arm supervises (0: device uptime has no data).
	Devices int
	// Outages and Participants are the device outages and trial
	// participants to measure (filtered by period and arm like records).
	Outages      []Outage
	Participants []Participation
	// Until: open outages count as down until here (zero: To).
	Until time.Time
	// AssumedOutageHours: see Trial.AssumedOutageHours.
	AssumedOutageHours float64
	// LookIns and Visits are supervision records and recorded visits
	// (filtered by period and arm like records).
	LookIns []LookIn
	Visits  []Visit
}

// Compute computes the measures of records raised in [p.From, p.To) (and
// in p.Arm, if set). Records outside are ignored, so a caller may pass a
// superset; the result does not depend on the records' order.
func Compute(records []Record, p Params) Measures {
	if p.Loc == nil {
		p.Loc = time.UTC
	}
	m := Measures{From: p.From, To: p.To, Arm: p.Arm, BySource: map[Source]int{},
		PerResidentNight: map[Source]float64{}, Outcomes: map[string]int{}, OutcomeShare: map[string]float64{},
		AcceptHistogram: make([]int, len(Buckets)+1), PhoneVia: map[string]int{}}
	var in []Record
	residents := map[string]bool{}
	for _, r := range records {
		if r.RaisedAt.Before(p.From) || !r.RaisedAt.Before(p.To) || (p.Arm != "" && r.Arm != p.Arm) {
			continue
		}
		in = append(in, r)
		if r.Resident != "" {
			residents[r.Site+"/"+r.Resident] = true
		}
	}
	m.Nights = Nights(p.From, p.To, p.Loc)
	m.Residents = p.Residents
	if m.Residents == 0 {
		m.Residents = max(1, len(residents))
	}
	m.ResidentNights = float64(m.Residents * m.Nights)
	var phone, accept, presence, resolve []float64
	care, coded := 0, 0
	for _, r := range in {
		m.Alarms++
		m.BySource[r.Source]++
		if r.Outcome != "" {
			m.Outcomes[r.Outcome]++
			coded++
		}
		phone = appendIf(phone, r.ToPhone)
		if r.ToPhone >= 0 && r.PhoneVia != "" {
			m.PhoneVia[r.PhoneVia]++
		}
		accept = appendIf(accept, r.ToAccept)
		presence = appendIf(presence, r.ToPresence)
		resolve = appendIf(resolve, r.ToResolve)
		if r.ToAccept >= 0 {
			m.AcceptHistogram[bucket(r.ToAccept)]++
		}
		if r.Source != SrcTechnical {
			care++
			if r.Escalated || r.ToAccept < 0 {
				m.Unaccepted++
			}
		}
		if r.Night && r.ToPresence >= 0 && r.Source != SrcTechnical {
			m.AlarmNightVisits++
		}
	}
	if m.ResidentNights > 0 {
		for s, n := range m.BySource {
			m.PerResidentNight[s] = float64(n) / m.ResidentNights
		}
		m.PerResidentNight[""] = float64(m.Alarms) / m.ResidentNights
	}
	for o, n := range m.Outcomes {
		m.OutcomeShare[o] = float64(n) / float64(coded)
	}
	if care > 0 {
		m.UnacceptedShare = float64(m.Unaccepted) / float64(care)
	}
	m.ToPhone, m.ToAccept, m.ToPresence, m.ToResolve = dist(phone), dist(accept), dist(presence), dist(resolve)
	m.OnlySensor, m.OnlyButton, m.Both = incidents(in)
	m.NightVisits = p.PlannedNightVisits*m.ResidentNights + float64(m.AlarmNightVisits)
	if sup := ComputeSupervision(p.LookIns, p.Visits, p.From, p.To, p.Arm); sup.LookIns > 0 {
		// Visits replaced are counted from the look-ins that were all
		// right, not estimated: the planned visits (the care plan's, or
		// those the look-ins stand in for if more) less those, plus the
		// visits alarms caused.
		m.Supervision = &sup
		planned := max(p.PlannedNightVisits*m.ResidentNights, float64(sup.VisitsPlanned))
		m.NightVisits = planned - float64(sup.VisitsReplaced) + float64(m.AlarmNightVisits)
		m.VisitsReplaced = float64(sup.VisitsReplaced)
		if planned > 0 {
			m.VisitsReplacedShare = float64(sup.VisitsReplaced) / planned
		}
		m.VisitsReplacedFrom = "supervision_records"
	}
	if m.ResidentNights > 0 {
		m.VisitsPerResNt = m.NightVisits / m.ResidentNights
	}
	m.devices(p)
	m.participants(p)
	return m
}

// devices computes device uptime and time to detect from outages.
func (m *Measures) devices(p Params) {
	until := p.To
	if !p.Until.IsZero() && p.Until.Before(p.To) {
		until = later(p.Until, p.From)
	}
	m.Devices = p.Devices
	m.AssumedOutageHours = p.AssumedOutageHours
	m.DeviceHours = float64(p.Devices) * until.Sub(p.From).Hours()
	var detect []float64
	var down time.Duration
	for _, o := range p.Outages {
		if p.Arm != "" && o.Arm != p.Arm {
			continue
		}
		down += o.down(p.From, until, until)
		if !o.DetectedAt.Before(p.From) && o.DetectedAt.Before(until) {
			m.Outages++
			detect = appendIf(detect, o.Detect())
		}
	}
	m.DownHours = down.Hours()
	m.TimeToDetect = dist(detect)
	if m.DeviceHours > 0 {
		m.DeviceUptime = min(1, max(0, 1-m.DownHours/m.DeviceHours))
	}
}

// participants computes the continuation rate: of the participants who
// had started by the period's end, the share who had not stopped by then.
func (m *Measures) participants(p Params) {
	for _, x := range p.Participants {
		if (p.Arm != "" && x.Arm != p.Arm) || x.Started.IsZero() || !x.Started.Before(p.To) {
			continue
		}
		m.Participants++
		if x.Ended.IsZero() || !x.Ended.Before(p.To) {
			m.Continued++
		}
	}
	if m.Participants > 0 {
		m.ContinuationRate = float64(m.Continued) / float64(m.Participants)
	}
}

func appendIf(xs []float64, x float64) []float64 {
	if x >= 0 && !math.IsNaN(x) && !math.IsInf(x, 0) {
		return append(xs, x)
	}
	return xs
}

func bucket(x float64) int {
	for i, e := range Buckets {
		if x < e {
			return i
		}
	}
	return len(Buckets)
}

// Nights counts the nights in [from, to): calendar days in loc, so a
// period across a DST change still counts whole nights.
func Nights(from, to time.Time, loc *time.Location) int {
	if !to.After(from) {
		return 0
	}
	if loc == nil {
		loc = time.UTC
	}
	a, b := from.In(loc), to.In(loc)
	da := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, time.UTC)
	db := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	n := int(db.Sub(da).Hours() / 24)
	return max(n, 1)
}

// dist uses the nearest-rank percentile, so a reported p90 is a time that
// really occurred and the same records give the same figure everywhere.
func dist(xs []float64) Dist {
	d := Dist{N: len(xs)}
	if len(xs) == 0 {
		return d
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	d.sorted = s
	d.P50, d.P90, d.P99 = rank(s, 0.50), rank(s, 0.90), rank(s, 0.99)
	w60, w180 := 0, 0
	for _, x := range s {
		if x <= 60 {
			w60++
		}
		if x <= 180 {
			w180++
		}
	}
	d.Within60 = float64(w60) / float64(len(s))
	d.Within180 = float64(w180) / float64(len(s))
	return d
}

func rank(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// incidents groups each resident's alarms within IncidentWindow of the
// previous one, and classifies incidents with a real need by what caught
// them: only a sensor, only the button, or both.
func incidents(rs []Record) (onlySensor, onlyButton, both int) {
	by := map[string][]Record{}
	for _, r := range rs {
		if r.Resident == "" || r.Source == SrcTechnical {
			continue
		}
		k := r.Site + "/" + r.Resident
		by[k] = append(by[k], r)
	}
	for _, list := range by {
		slices.SortFunc(list, func(a, b Record) int {
			if c := a.RaisedAt.Compare(b.RaisedAt); c != 0 {
				return c
			}
			return strings.Compare(a.Alarm, b.Alarm)
		})
		var sensor, button, real bool
		flush := func() {
			if real {
				switch {
				case sensor && button:
					both++
				case sensor:
					onlySensor++
				case button:
					onlyButton++
				}
			}
			sensor, button, real = false, false, false
		}
		var last time.Time
		for i, r := range list {
			if i > 0 && r.RaisedAt.Sub(last) > IncidentWindow {
				flush()
			}
			last = r.RaisedAt
			if r.Source == SrcButton {
				button = true
			} else if r.Source.Sensor() {
				sensor = true
			}
			if r.Outcome == "real_need" {
				real = true
			}
		}
		flush()
	}
	return
}

// Metrics are the names a criterion can use. alarms_per_resident_night
// also takes a source: alarms_per_resident_night.button.
var Metrics = []string{
	"alarms_per_resident_night", "night_visits_per_resident_night", "unaccepted_share",
	"p50_to_accept_s", "p90_to_accept_s", "p99_to_accept_s",
	"p50_to_presence_s", "p90_to_presence_s", "p99_to_presence_s",
	"p50_to_phone_s", "p90_to_phone_s", "p99_to_phone_s",
	"p90_to_resolve_s", "accepted_within_60s_share", "accepted_within_180s_share",
	"real_need_share", "false_share", "technical_share", "information_share",
	"only_sensor_caught", "only_button_caught",
	"night_visits_replaced", "night_visits_replaced_share",
	"device_uptime", "p50_to_detect_offline_s", "p90_to_detect_offline_s", "p99_to_detect_offline_s",
	"continuation_rate",
}

// KnownMetric reports whether name is a metric.
func KnownMetric(name string) bool {
	if base, src, ok := strings.Cut(name, "."); ok && base == "alarms_per_resident_night" {
		return slices.Contains(Sources, Source(src))
	}
	return slices.Contains(Metrics, name)
}

// Metric returns a metric's value and the number of samples behind it.
func (m *Measures) Metric(name string) (value float64, samples int) {
	pct := func(d Dist, q string) (float64, int) {
		switch q {
		case "p50":
			return d.P50, d.N
		case "p90":
			return d.P90, d.N
		}
		return d.P99, d.N
	}
	if base, src, ok := strings.Cut(name, "."); ok && base == "alarms_per_resident_night" {
		return m.PerResidentNight[Source(src)], int(m.ResidentNights)
	}
	switch name {
	case "alarms_per_resident_night":
		return m.PerResidentNight[""], int(m.ResidentNights)
	case "night_visits_per_resident_night":
		return m.VisitsPerResNt, int(m.ResidentNights)
	case "unaccepted_share":
		return m.UnacceptedShare, m.Alarms - m.BySource[SrcTechnical]
	case "accepted_within_60s_share":
		return m.ToAccept.Within60, m.ToAccept.N
	case "accepted_within_180s_share":
		return m.ToAccept.Within180, m.ToAccept.N
	case "only_sensor_caught":
		return float64(m.OnlySensor), m.OnlySensor + m.OnlyButton + m.Both
	case "only_button_caught":
		return float64(m.OnlyButton), m.OnlySensor + m.OnlyButton + m.Both
	case "night_visits_replaced", "night_visits_replaced_share":
		if m.VisitsBaseline == "" && m.Supervision == nil {
			return math.NaN(), 0
		}
		if name == "night_visits_replaced" {
			return m.VisitsReplaced, int(m.ResidentNights)
		}
		return m.VisitsReplacedShare, int(m.ResidentNights)
	case "device_uptime":
		// Samples: device-days observed.
		if m.DeviceHours <= 0 {
			return math.NaN(), 0
		}
		return m.DeviceUptime, int(m.DeviceHours / 24)
	case "continuation_rate":
		if m.Participants == 0 {
			return math.NaN(), 0
		}
		return m.ContinuationRate, m.Participants
	}
	if strings.HasSuffix(name, "_share") {
		n := 0
		for _, c := range m.Outcomes {
			n += c
		}
		return m.OutcomeShare[strings.TrimSuffix(name, "_share")], n
	}
	q, rest, _ := strings.Cut(name, "_to_")
	switch strings.TrimSuffix(rest, "_s") {
	case "accept":
		return pct(m.ToAccept, q)
	case "presence":
		return pct(m.ToPresence, q)
	case "phone":
		return pct(m.ToPhone, q)
	case "resolve":
		return pct(m.ToResolve, q)
	case "detect_offline":
		return pct(m.TimeToDetect, q)
	}
	return math.NaN(), 0
}

// Verdict is a criterion's outcome.
type Verdict string

// Verdicts.
const (
	Met           Verdict = "met"
	NotMet        Verdict = "not_met"
	NotEnoughData Verdict = "not_enough_data"
)

// Result is one criterion judged against the measures, with the
// confidence interval that decided it.
type Result struct {
	Criterion Criterion `json:"criterion"`
	Verdict   Verdict   `json:"verdict"`
	Value     float64   `json:"value"`
	Baseline  *float64  `json:"baseline,omitempty"` // the baseline arm's value
	Samples   int       `json:"samples"`
	Kind      Kind      `json:"kind"`
	// Interval is the value's confidence interval.
	Interval Interval `json:"interval"`
	// Against a baseline arm: Compared is "ratio" (rates: arm ÷ baseline)
	// or "difference" (shares: arm − baseline, in share points; quantiles:
	// arm − baseline, in seconds, from the two arms' intervals), Change
	// its point value and ChangeInterval its interval.
	Compared       string    `json:"compared,omitempty"`
	Change         float64   `json:"change,omitempty"`
	ChangeInterval *Interval `json:"change_interval,omitempty"`
	// Threshold is the bound the decisive interval is held against, in
	// its own terms (the criterion's value, or a ratio or difference).
	Threshold float64 `json:"threshold"`
	// Needed is the sample (in Samples' unit) at which, with the estimate
	// unchanged, the interval would decide; 0 once decided, -1 when not
	// within MaxScale times the data so far (the estimate is too close
	// to the threshold to promise a verdict).
	Needed int `json:"needed"`
}

// Evaluate judges each criterion of t against measures per arm. A
// criterion is met only when its 95 % interval lies wholly on the agreed
// side of the threshold, not met when wholly on the other side, and
// otherwise there is not enough data (as when fewer samples than its
// min_samples): a point estimate alone never decides.
func Evaluate(t *Trial, byArm map[string]Measures) []Result {
	out := make([]Result, 0, len(t.Criteria))
	for _, c := range t.Criteria {
		out = append(out, evaluate(c, byArm))
	}
	return out
}

func evaluate(c Criterion, byArm map[string]Measures) Result {
	minN := c.MinSamples
	if minN == 0 {
		minN = DefaultMinSamples
	}
	r := Result{Criterion: c, Verdict: NotEnoughData, Kind: MetricKind(c.Metric), Needed: -1,
		Interval: Interval{Lo: math.NaN(), Hi: math.NaN(), Level: Level}}
	m, ok := byArm[c.Arm]
	if !ok {
		return r
	}
	e := m.Estimate(c.Metric, Level)
	r.Value, r.Samples, r.Interval = e.Value, e.Samples, e.Interval
	if math.IsNaN(e.Value) {
		r.Value, r.Samples = 0, 0 // no data (JSON has no NaN)
		return r
	}
	var thr float64
	var decisive Interval
	var scaled func(float64) Interval
	switch c.Op {
	case OpAtMost, OpAtLeast:
		thr, decisive, scaled = c.Value, e.Interval, e.scaled
	case OpReducedByPct, OpNoRise:
		key := c.Baseline
		if key == BaselineBefore {
			key = BaselineBefore + ":" + c.Arm
		}
		bm, ok := byArm[key]
		if !ok {
			return r
		}
		b := bm.Estimate(c.Metric, Level)
		if math.IsNaN(b.Value) {
			return r
		}
		r.Baseline = &b.Value
		rel := 1 + c.Value/100
		if c.Op == OpReducedByPct {
			rel = 1 - c.Value/100
		}
		switch e.Kind {
		case KindRate:
			r.Compared = "ratio"
			ratio, iv := RateRatio(e.k, e.n, b.k, b.n, Level)
			if math.IsNaN(ratio) {
				return r
			}
			r.Change, r.ChangeInterval = ratio, &iv
			thr, decisive = rel, iv
			scaled = func(s float64) Interval { _, iv := RateRatio(e.k*s, e.n*s, b.k*s, b.n*s, Level); return iv }
		case KindShare:
			// The margin is taken at the baseline's estimate: "no rise"
			// (0 %) is exactly arm − baseline ≤ 0.
			r.Compared = "difference"
			iv := NewcombeDiff(e.k, e.n, b.k, b.n, Level)
			r.Change, r.ChangeInterval = e.Value-b.Value, &iv
			thr, decisive = b.Value*(rel-1), iv
			scaled = func(s float64) Interval { return NewcombeDiff(e.k*s, e.n*s, b.k*s, b.n*s, Level) }
		default:
			// Quantiles, counts, uptime: the arm's interval against the
			// baseline's whole interval scaled by the margin, which is
			// conservative (two intervals, not one of the difference).
			r.Compared = "difference"
			d := func(a, b Interval) Interval {
				return Interval{Lo: a.Lo - b.Hi*rel, Hi: a.Hi - b.Lo*rel, Level: Level, Method: a.Method}
			}
			iv := d(e.Interval, b.Interval)
			r.Change, r.ChangeInterval = e.Value-b.Value, &iv
			thr, decisive = 0, iv
			if e.scaled != nil && b.scaled != nil {
				scaled = func(s float64) Interval { return d(e.scaled(s), b.scaled(s)) }
			}
		}
		if b.Samples < minN {
			minN = max(minN, (minN*r.Samples+b.Samples-1)/max(b.Samples, 1)) // until the baseline has enough too
		}
	}
	r.Threshold = thr
	atMost := c.Op != OpAtLeast
	v := decide(decisive, thr, atMost)
	if v != NotEnoughData && r.Samples >= minN {
		r.Verdict, r.Needed = v, 0
		return r
	}
	r.Needed = needed(r.Samples, thr, atMost, scaled)
	if r.Needed >= 0 {
		r.Needed = max(r.Needed, minN)
	}
	return r
}

// Report is a trial's measures per arm and the verdict per criterion.
type Report struct {
	Trial   *Trial              `json:"trial"`
	From    time.Time           `json:"from"`
	To      time.Time           `json:"to"`
	Arms    map[string]Measures `json:"arms"`
	Results []Result            `json:"results"`
	Weeks   []Week              `json:"weeks"`
	// Before are the arms' measures in the baseline period (nil without
	// one).
	Before map[string]Measures `json:"before,omitempty"`
	// Headline is the trial's verdict as a whole.
	Headline Headline `json:"headline"`
	// Preliminary: the report ends before the trial does (it still runs),
	// so every verdict may change until End.
	Preliminary bool      `json:"preliminary"`
	End         time.Time `json:"end"`
}

// Headline is a trial's verdict in one word: met when every criterion is
// met, not met when any is clearly not met, otherwise not yet decidable;
// with the counts behind it.
type Headline struct {
	Verdict   Verdict `json:"verdict"`
	Met       int     `json:"met"`
	NotMet    int     `json:"not_met"`
	Undecided int     `json:"undecided"`
	// Deciding is the first criterion that decides the headline: the
	// first not met, else the first undecided ("" when all are met).
	Deciding string `json:"deciding,omitempty"`
}

// HeadlineOf sums up results.
func HeadlineOf(rs []Result) Headline {
	var h Headline
	firstUndecided := ""
	for _, r := range rs {
		switch r.Verdict {
		case Met:
			h.Met++
		case NotMet:
			h.NotMet++
			if h.Deciding == "" {
				h.Deciding = r.Criterion.ID
			}
		default:
			h.Undecided++
			if firstUndecided == "" {
				firstUndecided = r.Criterion.ID
			}
		}
	}
	switch {
	case h.NotMet > 0:
		h.Verdict = NotMet
	case h.Undecided > 0 || len(rs) == 0:
		h.Verdict, h.Deciding = NotEnoughData, firstUndecided
	default:
		h.Verdict = Met
	}
	return h
}

// Week is one week's measures per arm, for charts over time.
type Week struct {
	From time.Time           `json:"from"`
	Arms map[string]Measures `json:"arms"`
	// Days in the week that the report covers; Partial when fewer than 7
	// (the week the report ends in, or the trial's last).
	Days    int  `json:"days"`
	Partial bool `json:"partial,omitempty"`
}

// BuildReport computes a trial's report from its data over [from, to)
// (usually the trial's period, or up to now while it runs). Data from
// other trials is ignored.
func BuildReport(t *Trial, d Data, from, to time.Time, loc *time.Location) Report {
	rep := Report{Trial: t, From: from, To: to, Arms: map[string]Measures{}}
	var mine []Record
	for _, r := range d.Alarms {
		if r.Trial == t.ID {
			mine = append(mine, r)
		}
	}
	var outages []Outage
	for _, o := range Latest(d.Outages) {
		if o.Trial == t.ID {
			outages = append(outages, o)
		}
	}
	var lookins []LookIn
	for _, l := range d.LookIns {
		if l.Trial == t.ID {
			lookins = append(lookins, l)
		}
	}
	var visits []Visit
	for _, v := range d.Visits {
		if v.Trial == t.ID {
			visits = append(visits, v)
		}
	}
	var parts []Participation
	for _, x := range d.Participants {
		if x.Trial == t.ID {
			parts = append(parts, x)
		}
	}
	params := func(a Arm, f, u time.Time) Params {
		n := a.ResidentCount
		if n == 0 {
			n = len(a.Residents)
		}
		return Params{From: f, To: u, Loc: loc, Arm: a.ID, Residents: n, PlannedNightVisits: a.PlannedNightVisits,
			Devices: a.DeviceCount, Outages: outages, Participants: parts, Until: d.Until, LookIns: lookins, Visits: visits,
			AssumedOutageHours: t.AssumedOutageHours}
	}
	replaced := func(arms map[string]Measures) {
		base, ok := arms[t.BaselineArm()]
		if !ok {
			return
		}
		for id, m := range arms {
			m.VisitsBaseline = t.BaselineArm()
			if id == t.BaselineArm() || m.Supervision != nil {
				arms[id] = m // an arm with look-ins counts its own
				continue
			}
			m.VisitsReplacedFrom = "baseline"
			m.VisitsReplaced = (base.VisitsPerResNt - m.VisitsPerResNt) * m.ResidentNights
			if base.VisitsPerResNt > 0 {
				m.VisitsReplacedShare = 1 - m.VisitsPerResNt/base.VisitsPerResNt
			}
			arms[id] = m
		}
	}
	for _, a := range t.Arms {
		rep.Arms[a.ID] = Compute(mine, params(a, from, to))
	}
	replaced(rep.Arms)
	judged := rep.Arms
	if bf, bt, ok := t.BaselinePeriod(loc); ok {
		// The same arms before the trial, for criteria against "before".
		rep.Before = map[string]Measures{}
		judged = maps.Clone(rep.Arms)
		for _, a := range t.Arms {
			m := Compute(mine, params(a, bf, bt))
			rep.Before[a.ID] = m
			judged[BaselineBefore+":"+a.ID] = m
		}
	}
	rep.Results = Evaluate(t, judged)
	rep.Headline = HeadlineOf(rep.Results)
	_, rep.End = t.Period(loc)
	rep.Preliminary = to.Before(rep.End)
	for w := from; w.Before(to); {
		next := w.AddDate(0, 0, 7)
		if next.After(to) {
			next = to
		}
		wk := Week{From: w, Arms: map[string]Measures{}, Days: Nights(w, next, loc)}
		wk.Partial = wk.Days < 7
		for _, a := range t.Arms {
			wk.Arms[a.ID] = Compute(mine, params(a, w, next))
		}
		replaced(wk.Arms)
		rep.Weeks = append(rep.Weeks, wk)
		w = next
	}
	return rep
}
