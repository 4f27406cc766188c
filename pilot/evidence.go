package pilot

import (
	"math"
	"strings"
)

// Kind is what sort of figure a metric is; it decides its interval, how
// it compares with a baseline arm and how the page writes it.
type Kind string

// Kinds of metric.
const (
	KindShare    Kind = "share"    // 0–1, Wilson; against a baseline: Newcombe difference
	KindQuantile Kind = "quantile" // seconds, order-statistic interval
	KindRate     Kind = "rate"     // per resident-night, exact Poisson; against a baseline: rate ratio
	KindCount    Kind = "count"    // events, exact Poisson
	KindUptime   Kind = "uptime"   // 0–1, Poisson on outages × mean outage length
)

// MetricKind returns the kind of a metric name.
func MetricKind(name string) Kind {
	switch {
	case strings.HasPrefix(name, "alarms_per_resident_night"), name == "night_visits_per_resident_night":
		return KindRate
	case name == "device_uptime":
		return KindUptime
	case name == "only_sensor_caught", name == "only_button_caught", name == "night_visits_replaced":
		return KindCount
	case strings.HasSuffix(name, "_share"), name == "continuation_rate":
		return KindShare
	case strings.HasPrefix(name, "p50_"), strings.HasPrefix(name, "p90_"), strings.HasPrefix(name, "p99_"):
		return KindQuantile
	}
	return ""
}

// Estimate is a metric's value with its confidence interval and the
// counts behind it; scaled gives the interval the same estimate would
// have from s times as much data (how much more a verdict needs).
type Estimate struct {
	Value    float64
	Interval Interval
	Samples  int
	Kind     Kind
	// k of n for shares, count over exposure for rates and counts.
	k, n   float64
	scaled func(s float64) Interval
}

// Estimate computes a metric's value and its interval at level.
func (m *Measures) Estimate(name string, level float64) Estimate {
	v, n := m.Metric(name)
	e := Estimate{Value: v, Samples: n, Kind: MetricKind(name), Interval: Interval{Lo: math.NaN(), Hi: math.NaN(), Level: level}}
	if math.IsNaN(v) {
		return e
	}
	switch e.Kind {
	case KindShare:
		k, tot := m.shareCounts(name)
		e.k, e.n = k, tot
		if tot > 0 {
			e.scaled = func(s float64) Interval { return Wilson(k*s, tot*s, level) }
		}
	case KindRate:
		t := m.ResidentNights
		k := math.Round(v * t)
		e.k, e.n = k, t
		if t > 0 {
			e.scaled = func(s float64) Interval { return PoissonExact(k*s, t*s, level) }
		}
	case KindCount:
		e.k, e.n = v, 1
		e.scaled = func(s float64) Interval {
			iv := PoissonExact(v*s, s, level)
			return iv
		}
	case KindQuantile:
		d, q := m.dist(name)
		if d.N > 0 {
			e.scaled = func(s float64) Interval { return scaledQuantileCI(d.sorted, q, level, s) }
		}
	case KindUptime:
		k, down, hours := float64(m.Outages), m.DownHours, m.DeviceHours
		e.k, e.n = k, hours
		e.scaled = func(s float64) Interval {
			iv := Interval{Lo: math.Inf(-1), Hi: 1, Level: level, Method: MethodUptimePoisson}
			if hours <= 0 {
				return iv
			}
			if k == 0 {
				// No outage seen: nothing says how long one lasts. With
				// the trial's stated assumption, the most outages the
				// data allow (Garwood's upper limit for 0) of that
				// length bound uptime from below; without it, no bound.
				if a := m.AssumedOutageHours; a > 0 {
					c := PoissonExact(0, 1, level)
					iv.Lo, iv.Method = max(0, 1-c.Hi*a/(hours*s)), MethodUptimeAssumed
				}
				return iv
			}
			c := PoissonExact(k*s, 1, level)
			mean := down / k
			iv.Lo = max(0, 1-c.Hi*mean/(hours*s))
			iv.Hi = min(1, 1-c.Lo*mean/(hours*s))
			return iv
		}
	}
	if e.scaled != nil {
		e.Interval = e.scaled(1)
	}
	return e
}

// shareCounts are the k of n behind a share metric.
func (m *Measures) shareCounts(name string) (k, n float64) {
	switch name {
	case "unaccepted_share":
		return float64(m.Unaccepted), float64(m.Alarms - m.BySource[SrcTechnical])
	case "accepted_within_60s_share":
		return math.Round(m.ToAccept.Within60 * float64(m.ToAccept.N)), float64(m.ToAccept.N)
	case "accepted_within_180s_share":
		return math.Round(m.ToAccept.Within180 * float64(m.ToAccept.N)), float64(m.ToAccept.N)
	case "continuation_rate":
		return float64(m.Continued), float64(m.Participants)
	case "night_visits_replaced_share":
		if m.VisitsReplacedShare <= 0 {
			return 0, math.Max(1, m.NightVisits)
		}
		tot := m.VisitsReplaced / m.VisitsReplacedShare
		return math.Round(m.VisitsReplaced), math.Round(tot)
	}
	tot := 0
	for _, c := range m.Outcomes {
		tot += c
	}
	return float64(m.Outcomes[strings.TrimSuffix(name, "_share")]), float64(tot)
}

// dist returns the distribution and quantile a quantile metric reads.
func (m *Measures) dist(name string) (Dist, float64) {
	q, rest, _ := strings.Cut(name, "_to_")
	var d Dist
	switch strings.TrimSuffix(rest, "_s") {
	case "accept":
		d = m.ToAccept
	case "presence":
		d = m.ToPresence
	case "phone":
		d = m.ToPhone
	case "resolve":
		d = m.ToResolve
	case "detect_offline":
		d = m.TimeToDetect
	}
	switch q {
	case "p50":
		return d, 0.5
	case "p90":
		return d, 0.9
	}
	return d, 0.99
}

// decide says what an interval shows against a threshold: met when it
// lies wholly on the wanted side, not met when wholly on the other,
// otherwise not enough data. atMost: the wanted side is ≤ thr.
func decide(iv Interval, thr float64, atMost bool) Verdict {
	if math.IsNaN(iv.Lo) || math.IsNaN(iv.Hi) {
		return NotEnoughData
	}
	if atMost {
		switch {
		case iv.Hi <= thr:
			return Met
		case iv.Lo > thr:
			return NotMet
		}
		return NotEnoughData
	}
	switch {
	case iv.Lo >= thr:
		return Met
	case iv.Hi < thr:
		return NotMet
	}
	return NotEnoughData
}

// MaxScale bounds the search for the sample a verdict needs: beyond 100
// times the data so far, the estimate sits too close to the threshold to
// promise anything.
const MaxScale = 100

// needed is the least sample (in the unit of samples) at which the
// interval, with the estimate unchanged, would decide; -1 when not within
// MaxScale times the data so far.
func needed(samples int, thr float64, atMost bool, scaled func(float64) Interval) int {
	if scaled == nil {
		return -1
	}
	lo, hi := 1.0, 0.0
	for s := 1.0; s <= MaxScale; s *= 1.25 {
		if decide(scaled(s), thr, atMost) != NotEnoughData {
			hi = s
			break
		}
		lo = s
	}
	if hi == 0 {
		return -1
	}
	for range 20 { // bisect to within a few per cent
		mid := (lo + hi) / 2
		if decide(scaled(mid), thr, atMost) != NotEnoughData {
			hi = mid
		} else {
			lo = mid
		}
	}
	return int(math.Ceil(float64(max(samples, 1)) * hi))
}
