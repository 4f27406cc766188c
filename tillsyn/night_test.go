package tillsyn

import (
	"strings"
	"testing"
	"time"
)

var stockholm = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		panic(err)
	}
	return loc
}()

// change is one sensor report at a local wall time of the night's second
// day (hour < 12) or first day (hour ≥ 12).
type change struct {
	at     string // "02:10" local; DST-ambiguous times are not used here
	device string
	state  string
}

// world is a fake of the hub's sensor state over one night: sensors
// report state changes and a heartbeat every 10 minutes, unless silenced.
type world struct {
	night    time.Time // local date the night begins
	changes  []change
	silentAt map[string]string // device → local time it went silent
	alarms   [][2]string       // open from, to (local)
	consent  bool
}

func (w *world) at(clock string) time.Time {
	m, err := ParseClock(clock)
	if err != nil {
		panic(err)
	}
	y, mo, d := w.night.Date()
	if m < 12*60 {
		d++
	}
	t, _ := Resolve(y, mo, d, m, stockholm)
	return t
}

var devices = []SensorRef{{"bed-1", RoleBed}, {"door-1", RoleDoor}}

func (w *world) snapshot(now time.Time) Snapshot {
	start := w.at("21:00")
	s := Snapshot{At: now, Consent: w.consent}
	state := map[string]string{"bed-1": "occupied", "door-1": "closed"}
	changedAt := map[string]time.Time{}
	for _, c := range w.changes {
		if t := w.at(c.at); !t.After(now) {
			state[c.device] = c.state
			changedAt[c.device] = t
		}
	}
	for _, ref := range devices {
		last := start
		stop := now
		if sa, ok := w.silentAt[ref.Device]; ok && w.at(sa).Before(now) {
			stop = w.at(sa)
		}
		for t := start; !t.After(stop); t = t.Add(10 * time.Minute) {
			last = t
		}
		if t, ok := changedAt[ref.Device]; ok && t.After(last) && !t.After(stop) {
			last = t
		}
		s.Sensors = append(s.Sensors, Sensor{Device: ref.Device, Role: ref.Role, Heard: true, LastSeen: last,
			Period: 2 * time.Hour, State: state[ref.Device]})
	}
	s.BedEmpty = state["bed-1"] == "empty"
	if t, ok := changedAt["bed-1"]; ok && state["bed-1"] == "occupied" {
		s.InBedSince = t
	} else if !s.BedEmpty {
		s.InBedSince = start
	}
	for _, a := range w.alarms {
		if !w.at(a[0]).After(now) && w.at(a[1]).After(now) {
			s.OpenAlarms = append(s.OpenAlarms, "A000001 bed_exit")
		}
	}
	return s
}

func basePlan() *Plan {
	return &Plan{Site: "s", Resident: "r-1", NightStart: 22 * 60, NightEnd: 6*60 + 30,
		Times: []int{23 * 60, 2 * 60, 5 * 60}, Tolerance: 15 * time.Minute,
		Criteria: Criteria{InBed: true, DoorClosed: true, NoAlarmOpen: true},
		Sensors:  devices, Action: Action{Kind: DoVisit, VisitWithin: 20 * time.Minute}, Consent: true}
}

// runNight drives a whole night at 5 s steps with an injected clock, as
// the hub's tick would, and returns the records in order.
func runNight(t *testing.T, p *Plan, w *world) []Record {
	t.Helper()
	var q Queue
	for _, l := range p.Schedule(w.night, stockholm) {
		q.Add(l)
	}
	var out []Record
	from, to := w.at("21:30"), w.at("07:30")
	for now, i := from, 0; !now.After(to) && i < 20000; now, i = now.Add(5*time.Second), i+1 {
		out = append(out, q.Settle(now, 100, func(LookIn) *Plan { return p }, func(LookIn, *Plan) Snapshot { return w.snapshot(now) })...)
	}
	if q.Len() != 0 {
		t.Fatalf("%d look-ins never settled", q.Len())
	}
	return out
}

type want struct {
	wall    string
	outcome Outcome
	cause   Cause
	at      string // local time the result became final (to the 15 s re-check)
	reason  string // a substring of the reasons
}

func TestWholeNights(t *testing.T) {
	normal := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		plan  func(*Plan)
		world world
		want  []want
	}{
		{name: "bed occupied all night", world: world{night: normal, consent: true},
			want: []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", AllRight, "", "02:00", ""}, {"05:00", AllRight, "", "05:00", ""}}},
		{name: "bed empty at 02:00, back 02:10, within tolerance",
			world: world{night: normal, consent: true, changes: []change{{"01:58", "bed-1", "empty"}, {"02:10", "bed-1", "occupied"}}},
			want:  []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", AllRight, "", "02:10", ""}, {"05:00", AllRight, "", "05:00", ""}}},
		{name: "bed empty at 02:00, back 02:10, tolerance 5m", plan: func(p *Plan) { p.Tolerance = 5 * time.Minute },
			world: world{night: normal, consent: true, changes: []change{{"01:58", "bed-1", "empty"}, {"02:10", "bed-1", "occupied"}}},
			want:  []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", NotAllRight, "", "02:05", "not in bed"}, {"05:00", AllRight, "", "05:00", ""}}},
		{name: "bed back but not still long enough", plan: func(p *Plan) { p.Criteria.InBedFor = 10 * time.Minute },
			world: world{night: normal, consent: true, changes: []change{{"01:58", "bed-1", "empty"}, {"02:10", "bed-1", "occupied"}}},
			want:  []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", NotAllRight, "", "02:15", "in bed only 5m"}, {"05:00", AllRight, "", "05:00", ""}}},
		{name: "bed sensor silent since 01:00 (supervision 2h)",
			world: world{night: normal, consent: true, silentAt: map[string]string{"bed-1": "01:00"}},
			want:  []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", AllRight, "", "02:00", ""}, {"05:00", CannotTell, CauseSilent, "05:15", "silent sensor"}}},
		{name: "bed sensor silent since 01:00, heard within 30m", plan: func(p *Plan) { p.Limits.HeardWithin = 30 * time.Minute },
			world: world{night: normal, consent: true, silentAt: map[string]string{"bed-1": "01:00"}},
			want:  []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", CannotTell, CauseSilent, "02:15", "silent sensor"}, {"05:00", CannotTell, CauseSilent, "05:15", ""}}},
		{name: "silent door and empty bed: not all right wins",
			world: world{night: normal, consent: true, silentAt: map[string]string{"door-1": "21:30"}, changes: []change{{"04:30", "bed-1", "empty"}}},
			want:  []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", CannotTell, CauseSilent, "02:15", "door"}, {"05:00", NotAllRight, "", "05:15", "not in bed"}}},
		{name: "alarm open at the planned time",
			world: world{night: normal, consent: true, alarms: [][2]string{{"01:50", "02:30"}}},
			want:  []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", NotAllRight, "", "02:15", "A000001"}, {"05:00", AllRight, "", "05:00", ""}}},
		{name: "door open", world: world{night: normal, consent: true, changes: []change{{"22:50", "door-1", "open"}, {"23:05", "door-1", "closed"}}},
			want: []want{{"23:00", AllRight, "", "23:05", ""}, {"02:00", AllRight, "", "02:00", ""}, {"05:00", AllRight, "", "05:00", ""}}},
		{name: "no consent", world: world{night: normal},
			want: []want{{"23:00", CannotTell, CauseNoConsent, "23:15", "consent"}, {"02:00", CannotTell, CauseNoConsent, "02:15", ""}, {"05:00", CannotTell, CauseNoConsent, "05:15", ""}}},
		{name: "March night: 02:00 does not exist, look-in at 03:00",
			world: world{night: time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC), consent: true},
			want:  []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", AllRight, "", "03:00", ""}, {"05:00", AllRight, "", "05:00", ""}}},
		{name: "October night: 02:00 twice, one look-in at the first",
			world: world{night: time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC), consent: true},
			want:  []want{{"23:00", AllRight, "", "23:00", ""}, {"02:00", AllRight, "", "02:00", ""}, {"05:00", AllRight, "", "05:00", ""}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := basePlan()
			if c.plan != nil {
				c.plan(p)
			}
			p.Consent = c.world.consent
			recs := runNight(t, p, &c.world)
			if len(recs) != len(c.want) {
				t.Fatalf("%d records, want %d: %+v", len(recs), len(c.want), recs)
			}
			for i, w := range c.want {
				r := recs[i]
				if r.Wall != w.wall || r.Outcome != w.outcome || r.Cause != w.cause {
					t.Errorf("look-in %d: %s %s %s, want %s %s %s (%v)", i, r.Wall, r.Outcome, r.Cause, w.wall, w.outcome, w.cause, r.Reasons)
				}
				final := c.world.at(w.at)
				if r.At.Before(final) || r.At.Sub(final) > Recheck {
					t.Errorf("look-in %s final at %s, want %s (+%s)", r.Wall, r.At.In(stockholm).Format("15:04:05"), w.at, Recheck)
				}
				if w.reason != "" && !strings.Contains(strings.Join(r.Reasons, "; "), w.reason) {
					t.Errorf("look-in %s reasons %q lack %q", r.Wall, r.Reasons, w.reason)
				}
				if (r.Outcome == AllRight) != r.VisitBy.IsZero() {
					t.Errorf("look-in %s %s: visit by %v", r.Wall, r.Outcome, r.VisitBy)
				}
				if r.Outcome == AllRight {
					for _, ev := range r.Evidence {
						if !ev.Usable {
							t.Errorf("all right with unusable evidence %+v", ev)
						}
					}
				}
				if len(r.Evidence) == 0 && r.Cause != CauseNoConsent {
					t.Errorf("look-in %s without evidence", r.Wall)
				}
			}
		})
	}
}

func TestScheduleDST(t *testing.T) {
	p := basePlan()
	utc := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	cases := []struct {
		name  string
		night time.Time
		every time.Duration
		want  []string // planned instants, UTC
		notes []bool
	}{
		{"ordinary night", time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), 0,
			[]string{"2026-11-10T22:00:00Z", "2026-11-11T01:00:00Z", "2026-11-11T04:00:00Z"}, []bool{false, false, false}},
		// 02:00 CET does not exist: 03:00 CEST is 01:00 UTC.
		{"March", time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC), 0,
			[]string{"2026-03-28T22:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T03:00:00Z"}, []bool{false, true, false}},
		// 02:00 CEST (00:00 UTC) first; 02:00 CET (01:00 UTC) not again.
		{"October", time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC), 0,
			[]string{"2026-10-24T21:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T04:00:00Z"}, []bool{false, true, false}},
		{"March every 2h", time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC), 2 * time.Hour,
			[]string{"2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", "2026-03-29T04:00:00Z"}, []bool{false, true, false, false}},
		{"October every 2h", time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC), 2 * time.Hour,
			[]string{"2026-10-24T22:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T03:00:00Z", "2026-10-25T05:00:00Z"}, []bool{false, true, false, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pp := *p
			if c.every > 0 {
				pp.Times, pp.Every = nil, c.every
			}
			got := pp.Schedule(c.night, stockholm)
			if len(got) != len(c.want) {
				t.Fatalf("%d look-ins, want %d: %+v", len(got), len(c.want), got)
			}
			for i, w := range c.want {
				if !got[i].Planned.Equal(utc(w)) {
					t.Errorf("look-in %s at %s, want %s", got[i].Wall, got[i].Planned.UTC().Format(time.RFC3339), w)
				}
				if (got[i].Note != "") != c.notes[i] {
					t.Errorf("look-in %s note %q", got[i].Wall, got[i].Note)
				}
				if !got[i].Deadline.Equal(got[i].Planned.Add(pp.Tolerance)) {
					t.Errorf("deadline %s", got[i].Deadline)
				}
			}
		})
	}
}

func TestNightOf(t *testing.T) {
	for _, c := range []struct{ at, want string }{
		{"2026-03-29T01:30:00Z", "2026-03-28"}, // 03:30 CEST, the March night
		{"2026-10-25T00:30:00Z", "2026-10-24"}, // 02:30 CEST, first pass
		{"2026-10-25T01:30:00Z", "2026-10-24"}, // 02:30 CET, second pass
		{"2026-11-10T21:00:00Z", "2026-11-10"}, // 22:00 CET: the night begins
		{"2026-11-10T20:59:00Z", "2026-11-09"}, // 21:59: still yesterday's
	} {
		at, _ := time.Parse(time.RFC3339, c.at)
		if got := NightOf(at, stockholm, 22*60).Format("2006-01-02"); got != c.want {
			t.Errorf("NightOf(%s) = %s, want %s", c.at, got, c.want)
		}
	}
}

func TestPlanCheck(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Plan)
		want string
	}{
		{"outside the night", func(p *Plan) { p.Times = []int{23 * 60, 12 * 60} }, "times.1: 12:00 is outside the night window 22:00–06:30"},
		{"overlap", func(p *Plan) { p.Times = []int{23 * 60, 23*60 + 10} }, "tolerance: the look-ins at 23:00 and 23:10 overlap"},
		{"both", func(p *Plan) { p.Every = 2 * time.Hour }, "every: set times or every, not both"},
		{"neither", func(p *Plan) { p.Times = nil }, "times: missing"},
		{"replaces a visit with no look-in", func(p *Plan) { p.Replaces = []int{3 * 60} }, "replaces.0: no look-in at 03:00"},
		{"no criterion", func(p *Plan) { p.Criteria = Criteria{} }, "all_right: no criterion"},
		{"all-day window", func(p *Plan) { p.NightEnd = p.NightStart }, "night: tillsyn needs a night window"},
	}
	if errs := basePlan().Check(); len(errs) != 0 {
		t.Fatalf("good plan refused: %v", errs)
	}
	for _, c := range cases {
		p := basePlan()
		c.mod(p)
		var got []string
		for _, e := range p.Check() {
			got = append(got, e.Error())
		}
		if !strings.Contains(strings.Join(got, "\n"), c.want) {
			t.Errorf("%s: errors %q lack %q", c.name, got, c.want)
		}
	}
}

func TestEvaluateNeverAllRightWithoutLiveEvidence(t *testing.T) {
	now := time.Date(2026, 11, 11, 1, 0, 0, 0, time.UTC)
	c := Criteria{InBed: true}
	for _, c2 := range []struct {
		s     Sensor
		cause Cause
	}{
		{Sensor{Device: "b", Role: RoleBed, Heard: false, State: "occupied"}, CauseNotFitted},
		{Sensor{Device: "b", Role: RoleBed, Heard: true, LastSeen: now, Period: 0, State: "occupied"}, CauseUnsupervised},
		{Sensor{Device: "b", Role: RoleBed, Heard: true, LastSeen: now, Period: time.Hour, Silent: true, State: "occupied"}, CauseSilent},
		{Sensor{Device: "b", Role: RoleBed, Heard: true, LastSeen: now.Add(-2 * time.Hour), Period: time.Hour, State: "occupied"}, CauseSilent},
		{Sensor{Device: "b", Role: RoleBed, Heard: true, LastSeen: now, Period: time.Hour}, CauseNoState},
	} {
		r := Evaluate(c, Limits{}, Snapshot{At: now, Consent: true, Sensors: []Sensor{c2.s}})
		if r.Outcome != CannotTell || r.Cause != c2.cause {
			t.Errorf("%+v: %s %s, want cannot tell %s", c2.s, r.Outcome, r.Cause, c2.cause)
		}
	}
	if r := Evaluate(c, Limits{}, Snapshot{At: now, Consent: true}); r.Outcome != CannotTell || r.Cause != CauseNotFitted {
		t.Errorf("no sensor at all: %s %s", r.Outcome, r.Cause)
	}
}
