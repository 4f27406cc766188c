package pilot

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.5f, want %.5f (±%g)", what, got, want, tol)
	}
}

// Newcombe R.G. (1998) "Two-sided confidence intervals for the single
// proportion: comparison of seven methods", Stat Med 17:857–872, Table II,
// method 3 (Wilson score, no continuity correction), 95 %.
func TestWilsonNewcombe1998(t *testing.T) {
	for _, c := range []struct{ k, n, lo, hi float64 }{
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
	} {
		iv := Wilson(c.k, c.n, 0.95)
		near(t, "lo", iv.Lo, c.lo, 5e-5)
		near(t, "hi", iv.Hi, c.hi, 5e-5)
	}
}

// Newcombe R.G. (1998) "Interval estimation for the difference between
// independent proportions: comparison of eleven methods", Stat Med
// 17:873–890, Table II, method 10 (hybrid score), 95 %.
func TestNewcombeDifference1998(t *testing.T) {
	for _, c := range []struct{ k1, n1, k2, n2, lo, hi float64 }{
		{56, 70, 48, 80, 0.0524, 0.3339},
		{9, 10, 3, 10, 0.1705, 0.8090},
	} {
		iv := NewcombeDiff(c.k1, c.n1, c.k2, c.n2, 0.95)
		near(t, "lo", iv.Lo, c.lo, 5e-5)
		near(t, "hi", iv.Hi, c.hi, 5e-5)
	}
}

// Garwood (1936) exact Poisson limits as tabulated (e.g. Ulm 1990, Am J
// Epidemiol 131:373; Sahai & Khurshid 1993): k=0 → 0–3.689, k=1 →
// 0.0253–5.572, k=10 → 4.795–18.39, 95 %.
func TestPoissonExactGarwood(t *testing.T) {
	for _, c := range []struct{ k, lo, hi float64 }{{0, 0, 3.689}, {1, 0.0253, 5.572}, {10, 4.795, 18.39}} {
		iv := PoissonExact(c.k, 1, 0.95)
		near(t, "lo", iv.Lo, c.lo, 5e-4)
		near(t, "hi", iv.Hi, c.hi, 5e-3)
	}
	// As a rate: per resident-night.
	iv := PoissonExact(10, 100, 0.95)
	near(t, "rate hi", iv.Hi, 0.1839, 5e-4)
}

// Rothman K.J., Epidemiology: An Introduction (2nd ed., 2012), ch. 9,
// Table 9-2: cancer among the totally blind, 136 cases in 22,050
// person-years, against the severely visually impaired, 1,709 in 127,650:
// incidence rate ratio 0.46, 90 % CI 0.40–0.53.
func TestRateRatioRothman(t *testing.T) {
	r, iv := RateRatio(136, 22050, 1709, 127650, 0.90)
	near(t, "ratio", r, 0.46, 0.005)
	near(t, "lo", iv.Lo, 0.40, 0.005)
	near(t, "hi", iv.Hi, 0.53, 0.005)
}

// The distribution-free interval for a median from n = 20 is
// (x(6), x(15)) with confidence 1 − 2·P(B ≤ 5) = 95.86 % (Conover,
// Practical Nonparametric Statistics, 3rd ed. 1999, §3.2, and Hahn &
// Meeker, Statistical Intervals 1991, ch. 5). A p90 from 8 values
// has no upper bound at 95 % (P(all 8 below q0.9) = 0.9⁸ = 0.43).
func TestQuantileRanksConoverHahnMeeker(t *testing.T) {
	l, u := QuantileRanks(20, 0.5, 0.95)
	if l != 6 || u != 15 {
		t.Errorf("median n=20: ranks %d–%d, want 6–15", l, u)
	}
	// n = 11: (x(2), x(10)), confidence 98.8 % (P(B ≤ 1) = 0.0059; with
	// x(3), x(9) it would be only 93.5 %).
	if l, u := QuantileRanks(11, 0.5, 0.95); l != 2 || u != 10 {
		t.Errorf("median n=11: ranks %d–%d, want 2–10", l, u)
	}
	if _, u := QuantileRanks(8, 0.9, 0.95); u <= 8 {
		t.Errorf("p90 n=8: upper rank %d, want none (> 8)", u)
	}
	xs := make([]float64, 20)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	iv := QuantileCI(xs, 0.5, 0.95)
	if iv.Lo != 6 || iv.Hi != 15 {
		t.Errorf("median CI %v", iv)
	}
	iv = QuantileCI(xs[:8], 0.9, 0.95)
	if !math.IsInf(iv.Hi, 1) {
		t.Errorf("p90 of 8 has an upper bound %v", iv.Hi)
	}
}

func TestHeadline(t *testing.T) {
	r := func(id string, v Verdict) Result { return Result{Criterion: Criterion{ID: id}, Verdict: v} }
	for _, c := range []struct {
		rs   []Result
		want Verdict
		by   string
	}{
		{[]Result{r("a", Met), r("b", Met)}, Met, ""},
		{[]Result{r("a", Met), r("b", NotEnoughData), r("c", NotMet)}, NotMet, "c"},
		{[]Result{r("a", Met), r("b", NotEnoughData), r("c", NotEnoughData)}, NotEnoughData, "b"},
		{nil, NotEnoughData, ""},
	} {
		h := HeadlineOf(c.rs)
		if h.Verdict != c.want || h.Deciding != c.by || h.Met+h.NotMet+h.Undecided != len(c.rs) {
			t.Errorf("%v: %+v", c.rs, h)
		}
	}
}

// A report that ends before the trial does is preliminary, and its last
// week is partial.
func TestReportPreliminaryAndPartialWeek(t *testing.T) {
	c := loadTrial(t)
	tr := &c.Trials[0]
	from, end := tr.Period(sthlm)
	to := from.AddDate(0, 0, 10)
	rep := BuildReport(tr, Data{}, from, to, sthlm)
	if !rep.Preliminary || !rep.End.Equal(end) || len(rep.Weeks) != 2 || rep.Weeks[0].Partial || !rep.Weeks[1].Partial || rep.Weeks[1].Days != 3 {
		t.Fatalf("preliminary %v end %v weeks %+v", rep.Preliminary, rep.End, rep.Weeks)
	}
	if rep := BuildReport(tr, Data{}, from, end, sthlm); rep.Preliminary {
		t.Error("a report over the whole period is preliminary")
	}
}

// The benefit calculation: hours released are visits replaced × minutes
// per visit, call-outs avoided are the baseline's alarm visit rate less
// the arm's, the guarantee share is Wilson's, and costs are the sum.
func TestBenefits(t *testing.T) {
	tr := &Trial{ID: "t", Baseline: "b", Arms: []Arm{{ID: "a"}, {ID: "b"}}}
	xs := make([]float64, 50)
	for i := range xs {
		xs[i] = float64(60 * (i + 1)) // 1 … 50 min
	}
	rep := &Report{Trial: tr, Arms: map[string]Measures{
		"a": {Nights: 73, ResidentNights: 1000, NightVisits: 500, VisitsReplaced: 1500, VisitsReplacedFrom: "baseline", AlarmNightVisits: 100, ToPresence: dist(xs)},
		"b": {Nights: 73, ResidentNights: 1000, NightVisits: 2000, AlarmNightVisits: 200},
	}}
	bs := Benefits(rep, Assumptions{MinutesPerVisit: 12, HourlyCost: 500, CalloutCost: 100})
	a := bs[0]
	if a.HoursReleased != 300 || a.CalloutsAvoided != 100 || a.CostAvoided != 300*500+100*100 || a.PerYear != 5 {
		t.Errorf("benefit %+v", a)
	}
	// Guarantee default 30 min: 30 of 50, Wilson 0.4618–0.7239.
	near(t, "guarantee", a.GuaranteeShare, 0.6, 1e-12)
	want := Wilson(30, 50, 0.95)
	if a.GuaranteeKept != 30 || a.GuaranteeCI != want {
		t.Errorf("guarantee %d/%d %v", a.GuaranteeKept, a.GuaranteeN, a.GuaranteeCI)
	}
	// 1500 fewer visits: the interval from the rate ratio 0.25 (500 vs 2000).
	_, rr := RateRatio(500, 1000, 2000, 1000, Level)
	near(t, "visits lo", a.VisitsReplacedCI.Lo, (1-rr.Hi)*2000, 1e-9)
	near(t, "hours hi", a.HoursReleasedCI.Hi, (1-rr.Lo)*2000*12/60, 1e-9)
	if a.VisitsReplacedCI.Lo >= 1500 || a.VisitsReplacedCI.Hi <= 1500 {
		t.Errorf("interval %v does not hold the estimate", a.VisitsReplacedCI)
	}
	if bs[1].Baseline != "" || bs[1].HoursReleased != 0 {
		t.Errorf("the baseline arm releases hours: %+v", bs[1])
	}
}

func FuzzParseAssumption(f *testing.F) {
	for _, s := range []string{"10", "12,5", "1 000", "-1", "NaN", "1e9", "", "0x10", "∞"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := ParseAssumption(s)
		if err == nil && (x < 0 || x > 1e6 || math.IsNaN(x)) {
			t.Fatalf("%q → %v", s, x)
		}
	})
}

// A report without data still encodes as JSON: no NaN, open interval
// sides as null, and decodes back to the same intervals.
func TestReportJSONWithoutData(t *testing.T) {
	c := loadTrial(t)
	tr := &c.Trials[0]
	from, _ := tr.Period(sthlm)
	rep := BuildReport(tr, Data{}, from, from.AddDate(0, 0, 7), sthlm)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	iv := QuantileCI([]float64{1, 2, 3}, 0.9, 0.95)
	b2, _ := json.Marshal(iv)
	var back Interval
	if err := json.Unmarshal(b2, &back); err != nil || !math.IsInf(back.Hi, 1) || back.Lo != iv.Lo || back.Method != MethodOrderStat {
		t.Errorf("interval %s → %+v (%v)", b2, back, err)
	}
	if len(b) == 0 || !strings.Contains(string(b2), `"hi":null`) {
		t.Errorf("json %s", b2)
	}
}

// A baseline period: the same unit measured before the trial. Alarms on
// the unit then belong to the trial; a criterion against "before"
// compares the arm with itself before, by the rate ratio.
func TestBaselinePeriod(t *testing.T) {
	c := &Config{Trials: []Trial{{ID: "t", Need: "n", Hypothesis: "h", Start: "2026-10-05", End: "2026-12-28", BaselineStart: "2026-08-10",
		Arms:     []Arm{{ID: "sensors", Units: []string{"s/a"}, ResidentCount: 10}},
		Criteria: []Criterion{{ID: "fewer", Metric: "alarms_per_resident_night", Arm: "sensors", Op: OpReducedByPct, Value: 30, Baseline: BaselineBefore}}}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tr := &c.Trials[0]
	if tr.BaselineArm() != "" {
		t.Errorf("baseline arm %q", tr.BaselineArm())
	}
	bf, bt, ok := tr.BaselinePeriod(sthlm)
	if !ok || Nights(bf, bt, sthlm) != 56 {
		t.Fatalf("baseline period %v – %v", bf, bt)
	}
	if trial, arm := c.Assign("s", "a", "", bf.Add(time.Hour), sthlm); trial != "t" || arm != "sensors" {
		t.Errorf("an alarm in the baseline period: %q %q", trial, arm)
	}
	if trial, _ := c.Assign("s", "a", "", bf.Add(-time.Hour), sthlm); trial != "" {
		t.Error("an alarm before the baseline period belongs to the trial")
	}
	// 560 resident-nights before with 280 alarms (0.5 a night), 560
	// during with 112 (0.2): a fall of 60 %, rate ratio 0.40.
	var recs []Record
	add := func(from time.Time, n int) {
		for i := range n {
			recs = append(recs, Record{Trial: "t", Arm: "sensors", Alarm: strconv.Itoa(len(recs)), Resident: "r" + strconv.Itoa(i%10), Source: SrcButton,
				RaisedAt: from.Add(time.Duration(i) * 56 * 24 * time.Hour / time.Duration(n)), ToAccept: 20})
		}
	}
	from, _ := tr.Period(sthlm)
	add(bf, 280)
	add(from, 112)
	rep := BuildReport(tr, Data{Alarms: recs}, from, from.AddDate(0, 0, 56), sthlm)
	r := rep.Results[0]
	if rep.Before["sensors"].Alarms != 280 || rep.Arms["sensors"].Alarms != 112 || r.Compared != "ratio" {
		t.Fatalf("before %d, during %d, %+v", rep.Before["sensors"].Alarms, rep.Arms["sensors"].Alarms, r)
	}
	near(t, "ratio", r.Change, 0.4, 1e-9)
	_, want := RateRatio(112, 560, 280, 560, Level)
	if *r.ChangeInterval != want || r.Verdict != Met || *r.Baseline != 0.5 {
		t.Errorf("%+v, want interval %+v, met", r, want)
	}
	// "before" without a baseline period is a config error at its path.
	c.Trials[0].BaselineStart = ""
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "trials.0.criteria.0.baseline") {
		t.Errorf("error %v", err)
	}
}

// With no outage seen, device uptime has a lower bound only under the
// trial's stated outage length: Garwood's 3.689 outages (upper 95 % limit
// for 0) of 4 h in 100 devices × 720 h is 1 − 14.756/72,000 = 0.999795,
// which meets "at least 99.5 %"; without the assumption the interval has
// no lower bound and the criterion stays undecided however long it runs.
func TestUptimeLowerBoundWithoutOutages(t *testing.T) {
	m := Measures{Devices: 100, DeviceHours: 72000, DeviceUptime: 1}
	e := m.Estimate("device_uptime", Level)
	if !math.IsInf(e.Interval.Lo, -1) || e.Interval.Method != MethodUptimePoisson {
		t.Fatalf("no assumption: interval %+v, want no lower bound", e.Interval)
	}
	if v := decide(e.Interval, 0.995, false); v != NotEnoughData {
		t.Errorf("no assumption: verdict %v", v)
	}
	m.AssumedOutageHours = 4
	e = m.Estimate("device_uptime", Level)
	near(t, "lo", e.Interval.Lo, 1-3.689*4/72000, 1e-6)
	if e.Interval.Hi != 1 || e.Interval.Method != MethodUptimeAssumed {
		t.Errorf("assumed: interval %+v", e.Interval)
	}
	if v := decide(e.Interval, 0.995, false); v != Met {
		t.Errorf("assumed 4 h, 0 outages in 72,000 device-hours: verdict %v, want met", v)
	}
	// A short trial with a long assumed outage cannot decide yet: 10
	// devices × 24 h, outages of 24 h: 1 − 3.689·24/240 < 0.995.
	short := Measures{Devices: 10, DeviceHours: 240, DeviceUptime: 1, AssumedOutageHours: 24}
	if v := decide(short.Estimate("device_uptime", Level).Interval, 0.995, false); v != NotEnoughData {
		t.Errorf("short trial: verdict %v, want not enough data", v)
	}
}
