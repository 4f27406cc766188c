package pilot

import (
	"time"

	"github.com/vaka-care/vaka/tillsyn"
)

// LookIn is a digital night look-in (a supervision record of package
// tillsyn) as pilot evidence: pseudonymous, no sensor evidence, only what
// the measures need.
type LookIn struct {
	// ID is the look-in's key with the resident pseudonymised
	// (site/resident/night/wall): a resent record is the same point.
	ID       string    `json:"lookin"`
	Trial    string    `json:"trial,omitempty"`
	Arm      string    `json:"arm,omitempty"`
	Site     string    `json:"site"`
	Unit     string    `json:"unit,omitempty"`
	Resident string    `json:"resident"`
	Night    string    `json:"night"`
	Planned  time.Time `json:"planned"`
	Outcome  string    `json:"outcome"`
	Cause    string    `json:"cause,omitempty"`
	LedTo    string    `json:"led_to,omitempty"`
	// Replaces: a physical visit in the care plan that this look-in
	// replaces when all right.
	Replaces bool `json:"replaces,omitempty"`
}

// Visit is a physical night visit staff recorded, pseudonymous.
type Visit struct {
	ID       string    `json:"visit"` // site/resident/at, resident pseudonymised
	Trial    string    `json:"trial,omitempty"`
	Arm      string    `json:"arm,omitempty"`
	Site     string    `json:"site"`
	Resident string    `json:"resident"`
	Night    string    `json:"night"`
	At       time.Time `json:"at"`
	// Asked: the visit answered a look-in that asked for one.
	Asked bool `json:"asked,omitempty"`
}

// LookIn builds the pilot evidence of a supervision record.
func (m *Model) LookIn(r tillsyn.Record) LookIn {
	trial, arm := m.Config.Assign(r.Site, r.Unit, r.Resident, r.Planned, m.Loc)
	res := m.Pseud.ID(r.Site, r.Resident)
	return LookIn{ID: r.Site + "/" + res + "/" + r.Night + "/" + r.Wall, Trial: trial, Arm: arm, Site: r.Site, Unit: r.Unit,
		Resident: res, Night: r.Night, Planned: r.Planned, Outcome: string(r.Outcome), Cause: string(r.Cause),
		LedTo: r.LedTo, Replaces: r.Replaces}
}

// Visit builds the pilot evidence of a recorded visit. unit is the
// resident's unit (for the trial arm).
func (m *Model) Visit(v tillsyn.Visit, unit string) Visit {
	trial, arm := m.Config.Assign(v.Site, unit, v.Resident, v.At, m.Loc)
	res := m.Pseud.ID(v.Site, v.Resident)
	return Visit{ID: v.Site + "/" + res + "/" + v.At.UTC().Format(time.RFC3339Nano), Trial: trial, Arm: arm, Site: v.Site,
		Resident: res, Night: v.Night, At: v.At, Asked: v.Wall != ""}
}

// Supervision is the digital night supervision measures of an arm over a
// period, computed from supervision records and recorded visits.
type Supervision struct {
	LookIns     int `json:"lookins"`
	AllRight    int `json:"all_right"`
	NotAllRight int `json:"not_all_right"`
	CannotTell  int `json:"cannot_tell"`
	// VisitsPlanned are the physical visits of the care plans that
	// look-ins stand in for; VisitsReplaced those whose look-in was all
	// right (no one had to go); VisitsMade the physical visits staff
	// recorded, VisitsAsked those answering a look-in that asked.
	VisitsPlanned  int `json:"visits_planned"`
	VisitsReplaced int `json:"visits_replaced"`
	VisitsMade     int `json:"visits_made"`
	VisitsAsked    int `json:"visits_asked"`
	// LedTo counts what look-ins that were not all right led to: alarm,
	// open_alarm, visit.
	LedTo map[string]int `json:"led_to"`
	// CannotTellByCause and its rate (share of all look-ins) by cause:
	// silent_sensor, no_consent, not_fitted, unsupervised, no_state, late.
	CannotTellByCause   map[string]int     `json:"cannot_tell_by_cause"`
	CannotTellRate      float64            `json:"cannot_tell_rate"`
	CannotTellRateCause map[string]float64 `json:"cannot_tell_rate_by_cause"`
}

// ComputeSupervision computes the measures of look-ins planned in
// [from, to) and visits made then, in arm ("" = all given).
func ComputeSupervision(ls []LookIn, vs []Visit, from, to time.Time, arm string) Supervision {
	s := Supervision{LedTo: map[string]int{}, CannotTellByCause: map[string]int{}, CannotTellRateCause: map[string]float64{}}
	for _, l := range ls {
		if l.Planned.Before(from) || !l.Planned.Before(to) || (arm != "" && l.Arm != arm) {
			continue
		}
		s.LookIns++
		if l.Replaces {
			s.VisitsPlanned++
		}
		switch tillsyn.Outcome(l.Outcome) {
		case tillsyn.AllRight:
			s.AllRight++
			if l.Replaces {
				s.VisitsReplaced++
			}
		case tillsyn.NotAllRight:
			s.NotAllRight++
			s.LedTo[l.LedTo]++
		default:
			s.CannotTell++
			s.CannotTellByCause[l.Cause]++
			s.LedTo[l.LedTo]++
		}
	}
	for _, v := range vs {
		if v.At.Before(from) || !v.At.Before(to) || (arm != "" && v.Arm != arm) {
			continue
		}
		s.VisitsMade++
		if v.Asked {
			s.VisitsAsked++
		}
	}
	if s.LookIns > 0 {
		s.CannotTellRate = float64(s.CannotTell) / float64(s.LookIns)
		for c, n := range s.CannotTellByCause {
			s.CannotTellRateCause[c] = float64(n) / float64(s.LookIns)
		}
	}
	return s
}
