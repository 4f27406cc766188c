package pilot

import (
	"encoding/json"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Level is the confidence level of every interval the report shows.
const Level = 0.95

// Interval methods, named on the page so a reader can look them up.
const (
	MethodWilson        = "wilson"          // Wilson (1927) score interval for a share
	MethodOrderStat     = "order_statistic" // exact binomial order-statistic interval for a quantile
	MethodPoissonExact  = "poisson_exact"   // Garwood (1936) exact interval for a count or rate
	MethodRateRatio     = "rate_ratio_log"  // log-normal interval for a ratio of two Poisson rates
	MethodNewcombe      = "newcombe_hybrid" // Newcombe (1998) hybrid score interval for a difference of shares
	MethodUptimePoisson = "uptime_poisson"  // exact Poisson interval on outages, times the mean outage length
	MethodUptimeAssumed = "uptime_assumed"  // no outage seen: Garwood's upper limit for 0 outages × the trial's assumed outage length
	MethodNone          = ""
)

// Interval is a two-sided confidence interval. Lo may be -Inf and Hi +Inf
// where the sample cannot bound the measure (e.g. a p90 from 8 values
// has no upper bound at 95 %): such an interval decides nothing on that
// side.
type Interval struct {
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	Level  float64 `json:"level"`
	Method string  `json:"method"`
}

// MarshalJSON sends an open or unknown side as null: JSON has no infinity.
func (iv Interval) MarshalJSON() ([]byte, error) {
	num := func(x float64) any {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	}
	return json.Marshal(map[string]any{"lo": num(iv.Lo), "hi": num(iv.Hi), "level": iv.Level, "method": iv.Method})
}

// UnmarshalJSON reads null as an open side.
func (iv *Interval) UnmarshalJSON(b []byte) error {
	var x struct {
		Lo, Hi *float64
		Level  float64
		Method string
	}
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*iv = Interval{Lo: math.Inf(-1), Hi: math.Inf(1), Level: x.Level, Method: x.Method}
	if x.Lo != nil {
		iv.Lo = *x.Lo
	}
	if x.Hi != nil {
		iv.Hi = *x.Hi
	}
	return nil
}

func z(level float64) float64 {
	return distuv.Normal{Mu: 0, Sigma: 1}.Quantile(1 - (1-level)/2)
}

// Wilson is the Wilson score interval for k successes in n trials. k may
// be fractional (a scaled sample when asking how much data a verdict
// needs).
func Wilson(k, n, level float64) Interval {
	iv := Interval{Lo: math.NaN(), Hi: math.NaN(), Level: level, Method: MethodWilson}
	if n <= 0 {
		return iv
	}
	zz := z(level)
	p := k / n
	den := 1 + zz*zz/n
	mid := (p + zz*zz/(2*n)) / den
	half := zz * math.Sqrt(p*(1-p)/n+zz*zz/(4*n*n)) / den
	iv.Lo, iv.Hi = max(0, mid-half), min(1, mid+half)
	return iv
}

// NewcombeDiff is Newcombe's (1998) hybrid score interval ("method 10")
// for the difference of two independent shares k1/n1 − k2/n2, built from
// the two Wilson intervals; it stays inside [−1, 1] and behaves at 0 and
// n, where the simple Wald interval does not.
func NewcombeDiff(k1, n1, k2, n2, level float64) Interval {
	iv := Interval{Lo: math.NaN(), Hi: math.NaN(), Level: level, Method: MethodNewcombe}
	if n1 <= 0 || n2 <= 0 {
		return iv
	}
	p1, p2 := k1/n1, k2/n2
	a, b := Wilson(k1, n1, level), Wilson(k2, n2, level)
	d := p1 - p2
	iv.Lo = d - math.Sqrt((p1-a.Lo)*(p1-a.Lo)+(b.Hi-p2)*(b.Hi-p2))
	iv.Hi = d + math.Sqrt((a.Hi-p1)*(a.Hi-p1)+(p2-b.Lo)*(p2-b.Lo))
	return iv
}

// PoissonExact is Garwood's exact interval for the mean of a Poisson
// count k (through the chi-square distribution), divided by exposure t
// (resident-nights, device-hours; 1 for the count itself).
func PoissonExact(k, t, level float64) Interval {
	iv := Interval{Lo: math.NaN(), Hi: math.NaN(), Level: level, Method: MethodPoissonExact}
	if t <= 0 || k < 0 {
		return iv
	}
	a := 1 - level
	iv.Lo = 0
	if k > 0 {
		iv.Lo = distuv.ChiSquared{K: 2 * k}.Quantile(a/2) / 2 / t
	}
	iv.Hi = distuv.ChiSquared{K: 2*k + 2}.Quantile(1-a/2) / 2 / t
	return iv
}

// RateRatio is the interval for the ratio of two Poisson rates
// (a events over time ta) / (b over tb) on the log scale:
// exp(ln RR ± z·√(1/a + 1/b)). A zero count has no log: 0.5 is added to
// both counts then (the usual continuity correction), which widens the
// interval rather than pretending to know.
func RateRatio(a, ta, b, tb, level float64) (ratio float64, iv Interval) {
	iv = Interval{Lo: math.NaN(), Hi: math.NaN(), Level: level, Method: MethodRateRatio}
	if ta <= 0 || tb <= 0 {
		return math.NaN(), iv
	}
	if b == 0 && a == 0 {
		return math.NaN(), iv
	}
	ratio = (a / ta) / (b / tb)
	if a == 0 || b == 0 {
		a, b = a+0.5, b+0.5
	}
	r := (a / ta) / (b / tb)
	se := math.Sqrt(1/a + 1/b)
	zz := z(level)
	iv.Lo, iv.Hi = r*math.Exp(-zz*se), r*math.Exp(zz*se)
	return ratio, iv
}

// QuantileRanks are the 1-based ranks [l, u] of the sorted sample whose
// values bound the q-quantile with at least the given confidence, from
// the binomial distribution of how many of n values fall below it
// (distribution-free; Conover 1999 §3.2, Hahn & Meeker 1991 ch. 5). l < 1
// means no lower bound, u > n no upper bound.
func QuantileRanks(n int, q, level float64) (l, u int) {
	if n <= 0 {
		return 0, 1
	}
	a := (1 - level) / 2
	bin := distuv.Binomial{N: float64(n), P: q}
	// l−1 is the largest j with P(B ≤ j) ≤ α/2 (so l = 0 when even
	// P(B ≤ 0) is above it).
	l = sortSearch(n+1, func(j int) bool { return bin.CDF(float64(j)) > a }) // first j with CDF > a
	// u−1 is the smallest j with P(B ≤ j) ≥ 1 − α/2.
	u = sortSearch(n+1, func(j int) bool { return bin.CDF(float64(j)) >= 1-a }) + 1
	return l, u
}

func sortSearch(n int, f func(int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !f(m) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// QuantileCI is the order-statistic interval for the q-quantile of a
// sorted sample.
func QuantileCI(sorted []float64, q, level float64) Interval {
	n := len(sorted)
	iv := Interval{Lo: math.NaN(), Hi: math.NaN(), Level: level, Method: MethodOrderStat}
	if n == 0 {
		return iv
	}
	l, u := QuantileRanks(n, q, level)
	iv.Lo, iv.Hi = math.Inf(-1), math.Inf(1)
	if l >= 1 {
		iv.Lo = sorted[l-1]
	}
	if u <= n {
		iv.Hi = sorted[u-1]
	}
	return iv
}

// scaledQuantileCI is QuantileCI for a sample s times larger with the same
// distribution (the ranks at n·s mapped back onto this sample).
func scaledQuantileCI(sorted []float64, q, level, s float64) Interval {
	n := len(sorted)
	ns := int(math.Round(float64(n) * s))
	iv := Interval{Lo: math.Inf(-1), Hi: math.Inf(1), Level: level, Method: MethodOrderStat}
	if n == 0 || ns == 0 {
		return iv
	}
	l, u := QuantileRanks(ns, q, level)
	at := func(r int) float64 {
		return sorted[min(max(int(math.Ceil(float64(r)/float64(ns)*float64(n)))-1, 0), n-1)]
	}
	if l >= 1 {
		iv.Lo = at(l)
	}
	if u <= ns {
		iv.Hi = at(u)
	}
	return iv
}
