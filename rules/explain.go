package rules

import (
	"errors"
	"time"
)

// RuleStatus says whether and how one rule applies to a resident now.
type RuleStatus struct {
	Rule      string        `json:"rule"`
	SV        string        `json:"sv"`
	EN        string        `json:"en"`
	Runs      bool          `json:"runs"`
	Why       string        `json:"why"`
	Enabled   bool          `json:"enabled"`
	Consent   bool          `json:"needs_consent"`
	Consented bool          `json:"consented"`
	Hold      time.Duration `json:"hold_ns"`
	HoldText  string        `json:"hold"`
	Window    string        `json:"window,omitempty"`
	Source    string        `json:"source"`
	State     string        `json:"state"` // inactive, pending, firing
}

// Explanation is the answer to "which rules watch this resident, now?".
type Explanation struct {
	Site     string       `json:"site"`
	Resident string       `json:"resident"`
	Unit     string       `json:"unit,omitempty"`
	At       time.Time    `json:"at"`
	Night    string       `json:"night_window"`
	NightNow bool         `json:"night_now"`
	Fences   []string     `json:"geofences,omitempty"`
	Rules    []RuleStatus `json:"rules"`
}

// ErrUnknownResident is returned by Explain for a resident not in the plan.
var ErrUnknownResident = errors.New("rules: no such resident in this site's plans")

// Explain tells which rules apply to a resident at now and why.
func (e *Engine) Explain(site, resident string, now time.Time) (Explanation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ss := e.sites[site]
	if ss == nil {
		return Explanation{}, ErrUnknownResident
	}
	rs := ss.res[resident]
	if rs == nil {
		return Explanation{}, ErrUnknownResident
	}
	w := ss.cfg.Night
	if uw, ok := ss.cfg.Units[rs.res.Unit]; ok {
		w = uw
	}
	if rs.res.Night != nil {
		w = *rs.res.Night
	}
	x := Explanation{Site: site, Resident: resident, Unit: rs.res.Unit, At: now, Night: w.String(),
		NightNow: w.Contains(now, e.cfg.Location)}
	for _, f := range rs.res.Fences {
		x.Fences = append(x.Fences, f.ID)
	}
	for _, name := range RuleNames() {
		info := Rules[name]
		set, ok := rs.res.Plan[name]
		if !ok {
			set = info.Default
		}
		st := RuleStatus{Rule: name, SV: info.SV, EN: info.EN, Enabled: set.Enabled, Consent: info.Consent,
			Consented: rs.res.Consent[name], Hold: set.Hold, HoldText: set.Hold.String(), Source: set.Source, State: "inactive"}
		if set.HasWindow {
			st.Window = set.Window.String()
		}
		switch {
		case !set.Enabled:
			st.Why = "avstängd i planen / off in the plan (" + set.Source + ")"
		case info.Consent && !st.Consented:
			st.Why = "samtycke saknas / no recorded consent"
		case name == RuleGeofenceExit && len(rs.res.Fences) == 0:
			st.Why = "inget område i planen / no geofence in the plan"
		default:
			st.Runs = true
			st.Why = "gäller / applies (" + set.Source + ")"
		}
		switch name {
		case RuleBedExit:
			st.State = phase(rs.bedEmpty, rs.bedRaised)
		case RuleGeofenceExit:
			st.State = phase(rs.outside, rs.geoRaised)
		case RuleInactivity:
			st.State = phase(false, rs.inactRaised)
		}
		x.Rules = append(x.Rules, st)
	}
	return x, nil
}

func phase(pending, firing bool) string {
	switch {
	case firing:
		return "firing"
	case pending:
		return "pending"
	}
	return "inactive"
}
