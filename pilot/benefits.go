package pilot

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Assumptions are what a benefit calculation (nyttokalkyl, as the SKR/
// Inera benefit calculation for digital night supervision sets it out)
// assumes beyond the measures; shown beside every figure and editable on
// the page, so a lead can put in the municipality's own.
type Assumptions struct {
	// MinutesPerVisit is the staff time one physical night visit takes,
	// travel included (default 10).
	MinutesPerVisit float64 `yaml:"minutes_per_visit" json:"minutes_per_visit"`
	// HourlyCost is a staff hour's cost in SEK, overheads included
	// (0: no cost figures).
	HourlyCost float64 `yaml:"hourly_cost" json:"hourly_cost"`
	// CalloutCost is one night call-out's cost in SEK beyond the staff
	// time (car, fuel; 0: none).
	CalloutCost float64 `yaml:"callout_cost" json:"callout_cost"`
	// GuaranteeMin is the response-time guarantee: staff with the
	// resident within this many minutes of the alarm (default 30).
	GuaranteeMin float64 `yaml:"guarantee_min" json:"guarantee_min"`
}

// DefaultAssumptions are used where a trial sets none.
var DefaultAssumptions = Assumptions{MinutesPerVisit: 10, GuaranteeMin: 30}

// WithDefaults fills unset assumptions.
func (a Assumptions) WithDefaults() Assumptions {
	if a.MinutesPerVisit == 0 {
		a.MinutesPerVisit = DefaultAssumptions.MinutesPerVisit
	}
	if a.GuaranteeMin == 0 {
		a.GuaranteeMin = DefaultAssumptions.GuaranteeMin
	}
	return a
}

// ParseAssumption reads one assumption as typed by a person: a decimal
// point or comma, no more than 1e6, not negative.
func ParseAssumption(s string) (float64, error) {
	s = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, "\u202f", ""), " ", ""))
	x, err := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if x < 0 || x > 1e6 {
		return 0, fmt.Errorf("%q must be between 0 and 1000000", s)
	}
	return x, nil
}

// Benefit is one arm's benefits over the report's period, in the
// Norwegian national welfare-technology programme's categories: time
// saved (staff hours released), costs avoided (hours and call-outs) and
// quality (response-time guarantee kept). Each with a 95 % interval.
type Benefit struct {
	Arm            string  `json:"arm"`
	Nights         int     `json:"nights"`
	ResidentNights float64 `json:"resident_nights"`
	// PerYear scales the period's figures to a year (365 / nights).
	PerYear float64 `json:"per_year"`
	// Time saved: physical night visits replaced and the staff hours
	// they released (visits × minutes per visit).
	VisitsReplaced   float64  `json:"visits_replaced"`
	VisitsReplacedCI Interval `json:"visits_replaced_ci"`
	HoursReleased    float64  `json:"hours_released"`
	HoursReleasedCI  Interval `json:"hours_released_ci"`
	// Costs avoided: alarm-driven night call-outs fewer than at the
	// baseline arm's rate, and the cost of hours and call-outs.
	CalloutsAvoided   float64  `json:"callouts_avoided"`
	CalloutsAvoidedCI Interval `json:"callouts_avoided_ci"`
	CostAvoided       float64  `json:"cost_avoided"`
	CostAvoidedCI     Interval `json:"cost_avoided_ci"`
	// Quality: alarms with staff at the resident within the guarantee.
	GuaranteeKept  int      `json:"guarantee_kept"`
	GuaranteeN     int      `json:"guarantee_n"`
	GuaranteeShare float64  `json:"guarantee_share"`
	GuaranteeCI    Interval `json:"guarantee_ci"`
	// Baseline is the arm compared with ("" for the baseline itself, which
	// has only the quality figures).
	Baseline string `json:"baseline,omitempty"`
}

// Within counts the samples at most sec.
func (d Dist) Within(sec float64) int {
	return sort.Search(len(d.sorted), func(i int) bool { return d.sorted[i] > sec })
}

// Benefits computes the benefit calculation of a report per arm.
func Benefits(rep *Report, a Assumptions) []Benefit {
	a = a.WithDefaults()
	base := rep.Trial.BaselineArm()
	bm, hasBase := rep.Arms[base]
	var out []Benefit
	for _, arm := range rep.Trial.Arms {
		m := rep.Arms[arm.ID]
		b := Benefit{Arm: arm.ID, Nights: m.Nights, ResidentNights: m.ResidentNights}
		if m.Nights > 0 {
			b.PerYear = 365 / float64(m.Nights)
		}
		b.GuaranteeN = m.ToPresence.N
		b.GuaranteeKept = m.ToPresence.Within(60 * a.GuaranteeMin)
		b.GuaranteeCI = Wilson(float64(b.GuaranteeKept), float64(b.GuaranteeN), Level)
		if b.GuaranteeN > 0 {
			b.GuaranteeShare = float64(b.GuaranteeKept) / float64(b.GuaranteeN)
		} else {
			b.GuaranteeShare = math.NaN()
		}
		nan := Interval{Lo: math.NaN(), Hi: math.NaN(), Level: Level}
		b.VisitsReplacedCI, b.CalloutsAvoidedCI = nan, nan
		if hasBase && arm.ID != base {
			b.Baseline = base
			b.VisitsReplaced = m.VisitsReplaced
			if m.VisitsReplacedFrom == "supervision_records" {
				// Counted look-ins, each one visit not made.
				b.VisitsReplacedCI = PoissonExact(math.Round(m.VisitsReplaced), 1, Level)
			} else {
				b.VisitsReplacedCI = avoided(m.NightVisits, m.ResidentNights, bm.NightVisits, bm.ResidentNights)
			}
			armCO, baseCO := float64(m.AlarmNightVisits), float64(bm.AlarmNightVisits)
			if bm.ResidentNights > 0 {
				b.CalloutsAvoided = (baseCO/bm.ResidentNights - armCO/max(m.ResidentNights, 1)) * m.ResidentNights
			}
			b.CalloutsAvoidedCI = avoided(armCO, m.ResidentNights, baseCO, bm.ResidentNights)
		}
		h := a.MinutesPerVisit / 60
		b.HoursReleased = b.VisitsReplaced * h
		b.HoursReleasedCI = Interval{Lo: b.VisitsReplacedCI.Lo * h, Hi: b.VisitsReplacedCI.Hi * h, Level: Level, Method: b.VisitsReplacedCI.Method}
		cost := func(hours, callouts float64) float64 { return hours*a.HourlyCost + callouts*a.CalloutCost }
		b.CostAvoided = cost(b.HoursReleased, b.CalloutsAvoided)
		b.CostAvoidedCI = Interval{Lo: cost(b.HoursReleasedCI.Lo, b.CalloutsAvoidedCI.Lo), Hi: cost(b.HoursReleasedCI.Hi, b.CalloutsAvoidedCI.Hi),
			Level: Level, Method: "sum of the bounds"}
		out = append(out, b)
	}
	return out
}

// avoided is the interval for the events an arm (a over ta) avoided
// against a baseline's rate (b over tb), (1 − rate ratio) × the baseline's
// rate × ta, from the rate ratio's interval (the baseline rate taken as
// known).
func avoided(a, ta, b, tb float64) Interval {
	_, iv := RateRatio(math.Round(a), ta, math.Round(b), tb, Level)
	if math.IsNaN(iv.Lo) {
		return Interval{Lo: math.NaN(), Hi: math.NaN(), Level: Level, Method: MethodRateRatio}
	}
	expected := b / tb * ta
	return Interval{Lo: (1 - iv.Hi) * expected, Hi: (1 - iv.Lo) * expected, Level: Level, Method: MethodRateRatio}
}
