package pilot

import (
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/tillsyn"
)

// Supervision records become pseudonymous pilot evidence, and "night
// visits replaced" is counted from them: each all-right look-in that
// stands in for a planned visit, nothing estimated.
func TestSupervisionFromRecords(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Stockholm")
	trial := Trial{ID: "t1", Start: "2026-11-01", End: "2026-11-08", Baseline: "button",
		Arms: []Arm{{ID: "sensors", Units: []string{"s/u"}, ResidentCount: 1, PlannedNightVisits: 2},
			{ID: "button", Units: []string{"s/v"}, ResidentCount: 1, PlannedNightVisits: 2}}}
	m := NewModel(&Config{Trials: []Trial{trial}}, loc, []byte("key"))
	var ls []LookIn
	var vs []Visit
	night := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	mk := func(wall string, o tillsyn.Outcome, c tillsyn.Cause, led string) {
		h, _ := tillsyn.ParseClock(wall)
		d := 2
		if h < 12*60 {
			d = 3
		}
		at := time.Date(2026, 11, d, h/60, h%60, 0, 0, loc)
		ls = append(ls, m.LookIn(tillsyn.Record{LookIn: tillsyn.LookIn{Site: "s", Unit: "u", Resident: "r-secret", Night: night.Format("2006-01-02"),
			Wall: wall, Planned: at, Replaces: true}, At: at, Result: tillsyn.Result{Outcome: o, Cause: c}, LedTo: led}))
	}
	mk("23:00", tillsyn.AllRight, "", "")
	mk("02:00", tillsyn.CannotTell, tillsyn.CauseSilent, "visit")
	mk("05:00", tillsyn.NotAllRight, "", "alarm")
	mk("06:00", tillsyn.AllRight, "", "")
	vs = append(vs, m.Visit(tillsyn.Visit{Site: "s", Resident: "r-secret", Night: "2026-11-02", Wall: "02:00", By: "natt1",
		At: time.Date(2026, 11, 3, 2, 20, 0, 0, loc)}, "u"))
	for _, l := range ls {
		if strings.Contains(l.ID+l.Resident, "r-secret") || l.Trial != "t1" || l.Arm != "sensors" {
			t.Fatalf("look-in evidence %+v", l)
		}
	}
	if strings.Contains(vs[0].ID+vs[0].Resident, "r-secret") || vs[0].Arm != "sensors" || !vs[0].Asked {
		t.Fatalf("visit evidence %+v", vs[0])
	}
	from, to := trial.Period(loc)
	s := ComputeSupervision(ls, vs, from, to, "sensors")
	if s.LookIns != 4 || s.AllRight != 2 || s.NotAllRight != 1 || s.CannotTell != 1 || s.VisitsPlanned != 4 || s.VisitsReplaced != 2 ||
		s.VisitsMade != 1 || s.VisitsAsked != 1 || s.LedTo["alarm"] != 1 || s.LedTo["visit"] != 1 ||
		s.CannotTellByCause["silent_sensor"] != 1 || s.CannotTellRate != 0.25 || s.CannotTellRateCause["silent_sensor"] != 0.25 {
		t.Errorf("supervision %+v", s)
	}
	rep := BuildReport(&trial, Data{LookIns: ls, Visits: vs}, from, to, loc)
	sm := rep.Arms["sensors"]
	if sm.Supervision == nil || sm.VisitsReplaced != 2 || sm.VisitsReplacedFrom != "supervision_records" {
		t.Fatalf("sensor arm: replaced %v from %q, supervision %+v", sm.VisitsReplaced, sm.VisitsReplacedFrom, sm.Supervision)
	}
	// 7 nights × 2 planned visits, 2 of them replaced.
	if sm.NightVisits != 12 || sm.VisitsReplacedShare != 2.0/14 {
		t.Errorf("night visits %v, share %v", sm.NightVisits, sm.VisitsReplacedShare)
	}
	if b := rep.Arms["button"]; b.Supervision != nil || b.VisitsReplaced != 0 {
		t.Errorf("button arm %+v", b)
	}
}

// The demo's simulated trial takes "night visits replaced" from its
// simulated supervision records, not from the baseline's rate.
func TestSimulatedTrialReplacesFromRecords(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Stockholm")
	trial := Trial{ID: "t1", Start: "2026-11-01", End: "2026-11-29", Baseline: "button",
		Arms: []Arm{{ID: "sensors", Units: []string{"s/u"}, ResidentCount: 8, PlannedNightVisits: 2},
			{ID: "button", Units: []string{"s/v"}, ResidentCount: 8, PlannedNightVisits: 2}}}
	from, to := trial.Period(loc)
	d := SimulateData(&trial, from, to, loc, 7, nil)
	rep := BuildReport(&trial, d, from, to, loc)
	sm := rep.Arms["sensors"]
	if sm.Supervision == nil || sm.VisitsReplacedFrom != "supervision_records" || sm.VisitsReplaced != float64(sm.Supervision.VisitsReplaced) {
		t.Fatalf("sensor arm %+v", sm.Supervision)
	}
	s := sm.Supervision
	if s.LookIns != 28*8*2-8 /* the last night's 03:00 is after the period */ || s.VisitsReplaced < s.LookIns*85/100 || s.CannotTell == 0 || s.VisitsMade == 0 {
		t.Errorf("simulated supervision %+v", s)
	}
}
