package pilot

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
)

var sthlm, _ = time.LoadLocation("Europe/Stockholm")

const trialYAML = `night: {start: "22:00", end: "07:00"}
trials:
  - id: natt-sensorer
    title: Sensorer mot larmknapp
    need: Färre störande nattliga tillsynsbesök
    hypothesis: Sensorer ersätter fysiska nattbesök utan fler missade larm
    start: "2026-03-02"
    end: "2026-05-25"
    arms:
      - {id: sensors, name: Sensorer, units: [solrosen/avd-a], resident_count: 8, planned_night_visits: 0}
      - {id: button, name: Bara larmknapp, units: [solrosen/avd-b], resident_count: 8, planned_night_visits: 2}
    consent:
      - {resident: solrosen/r-91cc, recorded_by: sjukskoterska, recorded_at: "2026-02-20"}
    criteria:
      - {id: visits, text: "≥ 30 % färre fysiska nattbesök", metric: night_visits_per_resident_night, arm: sensors, op: reduced_by_pct, value: 30, baseline: button}
      - {id: unaccepted, text: "ingen ökning av ej kvitterade larm", metric: unaccepted_share, arm: sensors, op: no_rise, value: 0, baseline: button}
      - {id: p90, text: "p90 tid till kvittens ≤ 60 s", metric: p90_to_accept_s, arm: sensors, op: at_most, value: 60}
`

func loadTrial(t *testing.T) *Config {
	t.Helper()
	var c Config
	if err := config.Decode("pilot.yaml", []byte(trialYAML), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestConfigChecksWithFullPaths(t *testing.T) {
	c := loadTrial(t)
	if c.SpoolMaxMB != DefaultSpoolMB || c.Trials[0].Criteria[0].MinSamples != DefaultMinSamples {
		t.Fatalf("defaults not filled: %+v", c)
	}
	bad := Config{Influx: &InfluxConfig{URL: "127.0.0.1:8086"}, Trials: []Trial{{ID: "t", Start: "2026-05-01", End: "2026-04-01",
		Arms:     []Arm{{ID: "a", Units: []string{"nounit"}}, {ID: "b", Units: []string{"s/u"}}},
		Criteria: []Criterion{{Metric: "speed", Arm: "x", Op: "about"}, {Metric: "unaccepted_share", Arm: "a", Op: OpNoRise, Baseline: "a"}},
		Baseline: "zz", Benefits: Assumptions{MinutesPerVisit: -5, HourlyCost: 2e6}, AssumedOutageHours: -1,
		Consent: []Consent{{Resident: "s/r1", RecordedBy: "ssk", RecordedAt: "2026-04-10", Arm: "nope", WithdrawnAt: "2026-04-01"},
			{Resident: "s/r2", RecordedBy: "ssk", RecordedAt: "2026-04-10", WithdrawnReason: "flyttade"}}}}}
	errs := bad.Check("pilot")
	var fields []string
	for _, e := range errs {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		fields = append(fields, fe.Field)
	}
	for _, want := range []string{"pilot.influx.url", "pilot.influx.bucket", "pilot.trials.0.need", "pilot.trials.0.hypothesis",
		"pilot.trials.0.end", "pilot.trials.0.arms.0.units.0", "pilot.trials.0.criteria.0.metric", "pilot.trials.0.criteria.0.arm",
		"pilot.trials.0.criteria.0.op", "pilot.trials.0.criteria.1.baseline", "pilot.trials.0.baseline",
		"pilot.trials.0.consent.0.arm", "pilot.trials.0.consent.0.withdrawn_at", "pilot.trials.0.consent.1.withdrawn_reason",
		"pilot.trials.0.benefits.minutes_per_visit", "pilot.trials.0.benefits.hourly_cost", "pilot.trials.0.assumed_outage_hours"} {
		if !slices.Contains(fields, want) {
			t.Errorf("no error at %s; got %v", want, fields)
		}
	}
}

func TestWindowAndNightsAcrossDST(t *testing.T) {
	w := DefaultNight
	for _, c := range []struct {
		at   string
		want bool
	}{{"2026-03-29T01:30:00+01:00", true}, {"2026-03-29T03:30:00+02:00", true}, {"2026-03-29T07:00:00+02:00", false},
		{"2026-10-25T02:30:00+01:00", true}, {"2026-10-25T21:59:00+01:00", false}, {"2026-10-25T22:00:00+01:00", true}} {
		at, _ := time.Parse(time.RFC3339, c.at)
		if got := w.Contains(at, sthlm); got != c.want {
			t.Errorf("%s: night=%v, want %v", c.at, got, c.want)
		}
	}
	// A week across each change is still 7 nights.
	for _, d := range []string{"2026-03-26", "2026-10-22"} {
		from, _ := time.ParseInLocation(time.DateOnly, d, sthlm)
		if n := Nights(from, from.AddDate(0, 0, 7), sthlm); n != 7 {
			t.Errorf("week from %s: %d nights", d, n)
		}
	}
}

func rec(id, arm, res string, src Source, at time.Time, accept float64, outcome string) Record {
	return Record{Alarm: id, Trial: "t", Arm: arm, Site: "s", Resident: res, Source: src, RaisedAt: at,
		Night: true, ToPhone: 1, ToAccept: accept, ToPresence: Missing, ToResolve: accept + 100, Outcome: outcome}
}

func TestComputeMeasures(t *testing.T) {
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 10)
	at := func(h int) time.Time { return from.Add(time.Duration(h) * time.Hour) }
	rs := []Record{
		rec("1", "a", "r1", SrcButton, at(1), 10, "real_need"),
		rec("2", "a", "r1", SrcBed, at(1).Add(5*time.Minute), 20, "real_need"), // same incident: both
		rec("3", "a", "r2", SrcBed, at(30), 30, "real_need"),                   // only sensor
		rec("4", "a", "r2", SrcButton, at(60), 70, "real_need"),                // only button
		rec("5", "a", "r3", SrcDoor, at(80), 200, "false"),                     // not a real need
		rec("6", "a", "r3", SrcTechnical, at(90), Missing, "technical"),        // never accepted
		rec("7", "b", "r9", SrcButton, at(2), 5, "information"),                // other arm
		rec("8", "a", "r1", SrcButton, to.Add(time.Hour), 1, "real_need"),      // outside the period
		rec("9", "a", "r1", SrcButton, from.Add(-time.Second), 1, "real_need"), // outside the period
	}
	rs[3].Escalated = true
	rs[1].ToPresence = 200
	m := Compute(rs, Params{From: from, To: to, Arm: "a", Residents: 4, PlannedNightVisits: 0.5})
	if m.Alarms != 6 || m.Nights != 10 || m.ResidentNights != 40 {
		t.Fatalf("alarms %d nights %d rn %v", m.Alarms, m.Nights, m.ResidentNights)
	}
	if m.BySource[SrcButton] != 2 || m.BySource[SrcBed] != 2 || m.BySource[SrcDoor] != 1 {
		t.Errorf("by source %v", m.BySource)
	}
	if got := m.PerResidentNight[""]; math.Abs(got-6.0/40) > 1e-12 {
		t.Errorf("per resident-night %v", got)
	}
	if m.OnlySensor != 1 || m.OnlyButton != 1 || m.Both != 1 {
		t.Errorf("incidents sensor %d button %d both %d", m.OnlySensor, m.OnlyButton, m.Both)
	}
	// Times to accept: 10 20 30 70 200 → nearest rank p50 30, p90 200.
	if m.ToAccept.N != 5 || m.ToAccept.P50 != 30 || m.ToAccept.P90 != 200 || m.ToAccept.Within60 != 0.6 || m.ToAccept.Within180 != 0.8 {
		t.Errorf("to accept %+v", m.ToAccept)
	}
	if want := []int{1, 1, 1, 1, 0, 1, 0}; !slices.Equal(m.AcceptHistogram, want) {
		t.Errorf("histogram %v, want %v", m.AcceptHistogram, want)
	}
	// Unaccepted: #4 escalated; the technical one does not count (not care).
	if m.Unaccepted != 1 || m.UnacceptedShare != 0.2 {
		t.Errorf("unaccepted %d %v", m.Unaccepted, m.UnacceptedShare)
	}
	if m.OutcomeShare["real_need"] != 4.0/6 {
		t.Errorf("outcome share %v", m.OutcomeShare)
	}
	if m.AlarmNightVisits != 1 || m.NightVisits != 0.5*40+1 {
		t.Errorf("visits %d %v", m.AlarmNightVisits, m.NightVisits)
	}
	// Order does not matter.
	slices.Reverse(rs)
	m2 := Compute(rs, Params{From: from, To: to, Arm: "a", Residents: 4, PlannedNightVisits: 0.5})
	if !reflect.DeepEqual(m2.ToAccept, m.ToAccept) || m2.OnlySensor != m.OnlySensor || m2.Both != m.Both {
		t.Error("result depends on record order")
	}
	if v, n := m.Metric("p90_to_accept_s"); v != 200 || n != 5 {
		t.Errorf("metric p90: %v %d", v, n)
	}
	if v, _ := m.Metric("alarms_per_resident_night.bed"); v != 2.0/40 {
		t.Errorf("metric by source: %v", v)
	}
	// No devices or participants given: those metrics have no data.
	for _, name := range []string{"device_uptime", "continuation_rate"} {
		if v, n := m.Metric(name); !math.IsNaN(v) || n != 0 {
			t.Errorf("metric %s without data: %v %d", name, v, n)
		}
	}
	p := Params{From: from, To: to, Arm: "a", Residents: 4, Devices: 10, Outages: testOutages(from), Participants: testParticipants(from, to)}
	m = Compute(rs, p)
	m.VisitsBaseline = "b" // BuildReport sets it from the trial's baseline arm
	for _, name := range Metrics {
		if v, _ := m.Metric(name); math.IsNaN(v) {
			t.Errorf("metric %s is not computed", name)
		}
	}
}

func testOutages(from time.Time) []Outage {
	at := func(h float64) time.Time { return from.Add(time.Duration(h * float64(time.Hour))) }
	return []Outage{
		// 2 h down, found 150 s after its last radio test.
		{ID: "A1", Arm: "a", SilentFrom: at(10), DetectedAt: at(10).Add(150 * time.Second), RestoredAt: at(12)},
		// Unknown last sign of life: down from detection, 1 h.
		{ID: "A2", Arm: "a", DetectedAt: at(20), RestoredAt: at(21)},
		// Began before the period: only the 3 h inside count; detected outside.
		{ID: "A3", Arm: "a", SilentFrom: at(-2), DetectedAt: at(-1.5), RestoredAt: at(3)},
		// Still down at the end of the period: 4 h inside.
		{ID: "A4", Arm: "a", SilentFrom: at(236), DetectedAt: at(236).Add(600 * time.Second)},
		// Another arm.
		{ID: "A5", Arm: "b", SilentFrom: at(30), DetectedAt: at(31), RestoredAt: at(40)},
	}
}

func testParticipants(from, to time.Time) []Participation {
	return []Participation{
		{Arm: "a", Resident: "r1", Started: from.AddDate(0, 0, -5)},
		{Arm: "a", Resident: "r2", Started: from.AddDate(0, 0, -5), Ended: from.AddDate(0, 0, 4)}, // stopped
		{Arm: "a", Resident: "r3", Started: from.AddDate(0, 0, 2)},                                // joined later
		{Arm: "a", Resident: "r4", Started: from, Ended: to.AddDate(0, 0, 3)},                     // stopped after the period
		{Arm: "a", Resident: "r5", Started: to.AddDate(0, 0, 1)},                                  // not yet started
		{Arm: "b", Resident: "r9", Started: from, Ended: from.AddDate(0, 0, 1)},
	}
}

// Device uptime, time to detect an offline device and the continuation
// rate, by hand.
func TestDeviceUptimeDetectionAndContinuation(t *testing.T) {
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 10) // 240 h
	m := Compute(nil, Params{From: from, To: to, Arm: "a", Residents: 4, Devices: 10,
		Outages: testOutages(from), Participants: testParticipants(from, to)})
	// Down: 2 + 1 + 3 + 4 = 10 h of 10 devices × 240 h.
	if m.DownHours != 10 || m.DeviceHours != 2400 || math.Abs(m.DeviceUptime-(1-10.0/2400)) > 1e-12 {
		t.Errorf("uptime: down %v of %v: %v", m.DownHours, m.DeviceHours, m.DeviceUptime)
	}
	if v, n := m.Metric("device_uptime"); v != m.DeviceUptime || n != 100 {
		t.Errorf("device_uptime metric %v with %d device-days", v, n)
	}
	// Detected in the period: A1, A2, A4; known detection times 150 s and 600 s.
	if m.Outages != 3 || m.TimeToDetect.N != 2 || m.TimeToDetect.P50 != 150 || m.TimeToDetect.P90 != 600 {
		t.Errorf("outages %d, time to detect %+v", m.Outages, m.TimeToDetect)
	}
	if v, n := m.Metric("p90_to_detect_offline_s"); v != 600 || n != 2 {
		t.Errorf("p90 to detect metric %v %d", v, n)
	}
	// Started by the end: r1–r4; r2 stopped inside the period.
	if m.Participants != 4 || m.Continued != 3 || m.ContinuationRate != 0.75 {
		t.Errorf("continuation %d/%d = %v", m.Continued, m.Participants, m.ContinuationRate)
	}
	// Open outages end at Until (now, in a running trial), not at To.
	m = Compute(nil, Params{From: from, To: to, Arm: "a", Devices: 10, Outages: testOutages(from), Until: from.Add(237 * time.Hour)})
	if m.DownHours != 7 || m.DeviceHours != 2370 {
		t.Errorf("until now: down %v of %v", m.DownHours, m.DeviceHours)
	}
	// The latest record of each outage wins, whatever the order.
	o := Outage{ID: "X", SilentFrom: from, DetectedAt: from.Add(time.Minute)}
	r := o
	r.RestoredAt, r.SilentFrom = from.Add(time.Hour), time.Time{}
	if got := Latest([]Outage{r, o}); len(got) != 1 || got[0].RestoredAt.IsZero() || got[0].SilentFrom.IsZero() {
		t.Errorf("latest %+v", got)
	}
}

// Visits replaced: against the baseline arm's rate.
func TestNightVisitsReplaced(t *testing.T) {
	c := loadTrial(t)
	tr := &c.Trials[0]
	if tr.BaselineArm() != "button" {
		t.Fatalf("baseline %q", tr.BaselineArm())
	}
	from, _ := tr.Period(sthlm)
	to := from.AddDate(0, 0, 14)
	rep := BuildReport(tr, Data{}, from, to, sthlm)
	s := rep.Arms["sensors"]
	// No alarms: the sensor arm plans 0 visits, the button arm 2 per
	// resident-night: 8 residents × 14 nights × 2 = 224 replaced.
	if s.VisitsReplaced != 224 || s.VisitsReplacedShare != 1 || rep.Arms["button"].VisitsReplaced != 0 {
		t.Errorf("replaced %v (%v), baseline %v", s.VisitsReplaced, s.VisitsReplacedShare, rep.Arms["button"].VisitsReplaced)
	}
}

// Verdicts follow the 95 % intervals, not the point estimates: a
// criterion is met only when its interval clears the threshold.
func TestEvaluateVerdicts(t *testing.T) {
	c := loadTrial(t)
	tr := &c.Trials[0]
	// mk: an arm with nights resident-nights, visits physical visits,
	// unacc of n care alarms unaccepted, and times to accept: fast at 30 s,
	// the rest at 90 s.
	mk := func(nights, visits float64, n, unacc, fast int) Measures {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = 90
			if i < fast {
				xs[i] = 30
			}
		}
		return Measures{Alarms: n, BySource: map[Source]int{}, ResidentNights: nights, NightVisits: visits, VisitsPerResNt: visits / nights,
			Unaccepted: unacc, UnacceptedShare: float64(unacc) / float64(n), ToAccept: dist(xs)}
	}
	for _, c := range []struct {
		name string
		arms map[string]Measures
		want []Verdict
	}{
		{"all clearly met", map[string]Measures{"sensors": mk(100, 10, 200, 0, 200), "button": mk(100, 200, 200, 20, 0)}, []Verdict{Met, Met, Met}},
		// 1,500 against 2,000 visits over 1,000 nights: −25 %, rate ratio
		// 0.75 (0.701–0.802), clearly short of 0.70. 30/200 against 5/200
		// unaccepted: +12.5 points (Newcombe 0.07–0.18). p90 of 200 at 90 s.
		{"clearly not met", map[string]Measures{"sensors": mk(1000, 1500, 200, 30, 0), "button": mk(1000, 2000, 200, 5, 0)}, []Verdict{NotMet, NotMet, NotMet}},
		// 150 against 200 over 100 nights: −25 % as well, but the interval
		// (0.65–0.87) straddles 0.70; 3/100 against 3/100; p90 of 100 values
		// with 93 fast has its point estimate under 60 s, yet the interval
		// reaches the slow ones.
		{"undecided", map[string]Measures{"sensors": mk(100, 150, 100, 3, 93), "button": mk(100, 200, 100, 3, 0)}, []Verdict{NotEnoughData, NotEnoughData, NotEnoughData}},
		{"too few alarms", map[string]Measures{"sensors": mk(100, 10, 5, 0, 5), "button": mk(100, 200, 5, 1, 0)}, []Verdict{Met, NotEnoughData, NotEnoughData}},
		{"no baseline arm data", map[string]Measures{"sensors": mk(100, 10, 50, 0, 50)}, []Verdict{NotEnoughData, NotEnoughData, Met}},
	} {
		rs := Evaluate(tr, c.arms)
		var got []Verdict
		for _, r := range rs {
			got = append(got, r.Verdict)
			if r.Verdict == NotEnoughData && r.Needed == 0 {
				t.Errorf("%s %s: undecided without the sample it needs", c.name, r.Criterion.ID)
			}
			if r.Verdict != NotEnoughData && r.Needed != 0 {
				t.Errorf("%s %s: decided but needs %d", c.name, r.Criterion.ID, r.Needed)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if c.name == "clearly not met" {
			near(t, "rate ratio", rs[0].Change, 0.75, 1e-9)
			near(t, "rate ratio lo", rs[0].ChangeInterval.Lo, 0.7014, 5e-4) // exp(ln .75 − 1.96·√(1/1500+1/2000)), by hand
			near(t, "rate ratio hi", rs[0].ChangeInterval.Hi, 0.8019, 5e-4)
		}
		if c.name == "undecided" {
			// The visits criterion would decide with more nights at the
			// same rates: the interval must shrink to (≤ 0.70, …) or
			// (> 0.70, …); with the estimate 0.75 it shrinks above.
			if n := rs[0].Needed; n <= 100 || n > 100*MaxScale {
				t.Errorf("visits: needs %d resident-nights", n)
			}
			// Equal shares: no sample size will show "no rise" for sure.
			if rs[1].Needed != -1 {
				t.Errorf("unaccepted equal in both arms: needs %d", rs[1].Needed)
			}
		}
	}
	// Needed is where the interval starts to decide: at that sample the
	// rate ratio's interval clears 0.70, a little before it does not.
	n := float64(Evaluate(tr, map[string]Measures{"sensors": mk(100, 150, 100, 3, 93), "button": mk(100, 200, 100, 3, 0)})[0].Needed)
	s := n / 100
	if _, iv := RateRatio(150*s, 100*s, 200*s, 100*s, Level); iv.Lo <= 0.70 {
		t.Errorf("at %v nights the interval %v still straddles 0.70", n, iv)
	}
	s = n * 0.9 / 100
	if _, iv := RateRatio(150*s, 100*s, 200*s, 100*s, Level); iv.Lo > 0.70 {
		t.Errorf("already decided at 90 %% of %v nights: %v", n, iv)
	}
}

func TestRecordFromAlarmIsPseudonymous(t *testing.T) {
	c := loadTrial(t)
	m := NewModel(c, sthlm, []byte("key"))
	raised := time.Date(2026, 3, 10, 23, 0, 0, 0, sthlm)
	a := alarm.New("A000007", raised)
	a.Kind, a.Rule, a.Site, a.Unit, a.Resident, a.Device, a.DeviceType = alarm.KindWander, "bed_exit", "solrosen", "avd-a", "r-91cc", "sang-1", event.BedMonitor
	acc, pres, res := raised.Add(40*time.Second), raised.Add(5*time.Minute), raised.Add(20*time.Minute)
	a.State = alarm.Resolved
	a.SetAcceptedAt(&acc)
	a.SetPresenceAt(&pres)
	a.SetResolvedAt(&res)
	a.SetOutcome(alarm.OutcomeRealNeed)
	a.Deliveries = []alarm.Delivery{{User: "natt1", At: raised.Add(800 * time.Millisecond)}}
	r := m.Record(StepOf(a, alarm.Transition{Action: alarm.ActResolve, At: res}))
	if r.Trial != "natt-sensorer" || r.Arm != "sensors" || r.Source != SrcBed || !r.Night {
		t.Fatalf("record %+v", r)
	}
	if r.ToPhone != 0.8 || r.ToAccept != 40 || r.ToPresence != 300 || r.ToResolve != 1200 || r.PhoneVia != "push" {
		t.Errorf("durations %+v", r)
	}
	// A phone without push: the app's receipt (channel app) came first.
	a.Deliveries = append(a.Deliveries, alarm.Delivery{User: "natt2", Phone: "app:1a2b", At: raised.Add(500 * time.Millisecond), Channel: alarm.ChannelApp})
	if r := m.Record(StepOf(a, alarm.Transition{Action: alarm.ActResolve, At: res})); r.ToPhone != 0.5 || r.PhoneVia != "app" {
		t.Errorf("app receipt: to phone %v via %q", r.ToPhone, r.PhoneVia)
	}
	if strings.Contains(r.Resident, "91cc") || strings.Contains(r.Device, "sang") || r.Resident == m.Pseud.ID("other", "r-91cc") {
		t.Errorf("not pseudonymous: %q %q", r.Resident, r.Device)
	}
	if r.Resident != NewPseudonymizer([]byte("key")).ID("solrosen", "r-91cc") || r.Resident == NewPseudonymizer([]byte("other")).ID("solrosen", "r-91cc") {
		t.Error("pseudonym is not stable per key")
	}
	// Outside the trial period: no trial.
	if tr, _ := c.Assign("solrosen", "avd-a", "", time.Date(2026, 6, 1, 0, 0, 0, 0, sthlm), sthlm); tr != "" {
		t.Errorf("assigned outside the period: %q", tr)
	}
}

func TestSimulateIsDeterministicAndPlausible(t *testing.T) {
	c := loadTrial(t)
	tr := &c.Trials[0]
	from, to := tr.Period(sthlm)
	tr.Consent = SimConsent(tr, sthlm, to, 7)
	for i := range tr.Arms {
		tr.Arms[i].DeviceCount = SimDevices(tr.Arms[i], tr.Arms[i].ResidentCount)
	}
	d := SimulateData(tr, from, to, sthlm, 7, nil)
	a := d.Alarms
	b := Simulate(tr, from, to, sthlm, 7, nil)
	if !slices.Equal(a, b) || len(a) < 100 || !slices.Equal(SimConsent(tr, sthlm, to, 7), tr.Consent) {
		t.Fatalf("not deterministic or too few: %d", len(a))
	}
	rep := BuildReport(tr, d, from, to, sthlm)
	s, btn := rep.Arms["sensors"], rep.Arms["button"]
	if s.OnlySensor == 0 || s.Both == 0 || btn.OnlySensor != 0 {
		t.Errorf("incidents: sensors %d/%d, button arm only-sensor %d", s.OnlySensor, s.Both, btn.OnlySensor)
	}
	if r := s.PerResidentNight[""]; r < 0.2 || r > 2 {
		t.Errorf("implausible alarms per resident-night %v", r)
	}
	if len(rep.Weeks) != 12 {
		t.Errorf("weeks %d", len(rep.Weeks))
	}
	// Every measure of the domain notes has data in every arm.
	for _, arm := range []string{"sensors", "button"} {
		m := rep.Arms[arm]
		if m.DeviceUptime < 0.9 || m.DeviceUptime >= 1 || m.TimeToDetect.N < 5 || m.Participants == 0 || m.PhoneVia["app"] == 0 {
			t.Errorf("%s: uptime %v, detect %+v, participants %d, via %v", arm, m.DeviceUptime, m.TimeToDetect, m.Participants, m.PhoneVia)
		}
		for _, name := range Metrics {
			if v, _ := m.Metric(name); math.IsNaN(v) {
				t.Errorf("%s: metric %s has no data", arm, name)
			}
		}
	}
	if s.TimeToDetect.P50 > btn.TimeToDetect.P50*10 || btn.TimeToDetect.P90 > 180 {
		t.Errorf("time to detect: sensors %+v, button %+v", s.TimeToDetect, btn.TimeToDetect)
	}
	if s.ContinuationRate == 0 || s.ContinuationRate > 1 || s.VisitsReplaced <= 0 {
		t.Errorf("continuation %v, visits replaced %v", s.ContinuationRate, s.VisitsReplaced)
	}
	// Every criterion has its interval; one left undecided after 12
	// weeks says how much data it would need.
	for _, r := range rep.Results {
		if r.Interval.Method == "" || math.IsNaN(r.Interval.Lo) || r.Samples == 0 {
			t.Errorf("%s: no interval %+v", r.Criterion.ID, r)
		}
		if r.Verdict == NotEnoughData && r.Needed == 0 {
			t.Errorf("%s: undecided without the sample it needs: %+v", r.Criterion.ID, r)
		}
	}
}

// FuzzConfig: the pilot section's loader never panics, and its errors are
// located in the file.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(trialYAML))
	f.Add([]byte("influx: {url: x}\n"))
	f.Add([]byte("trials: [{id: a, arms: [{id: b, units: [c]}], criteria: [{metric: p90_to_accept_s, arm: b, op: at_most}]}]\n"))
	f.Add([]byte("night: {start: '25:00'}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Config
		err := config.Decode("pilot.yaml", data, &c)
		if err == nil {
			for i := range c.Trials {
				from, to := c.Trials[i].Period(time.UTC)
				if to.Sub(from) > 400*24*time.Hour {
					to = from.AddDate(0, 0, 400)
				}
				_ = BuildReport(&c.Trials[i], Data{}, from, to, time.UTC)
			}
			return
		}
		var es config.Errors
		if !errors.As(err, &es) {
			t.Fatalf("error is not config.Errors: %T %v", err, err)
		}
	})
}
