package tillsyn

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ActionKind is what a look-in that is not all right leads to.
type ActionKind string

// Action kinds.
const (
	// DoAlarm raises an alarm (rule "tillsyn") of the plan's kind and
	// priority, routed to phones like any other.
	DoAlarm ActionKind = "alarm"
	// DoVisit asks for a physical visit by a deadline, on the round view.
	DoVisit ActionKind = "visit"
)

// Action is what to do when a look-in is not all right. A look-in that
// cannot tell always asks for a visit (VisitWithin), whatever Kind says,
// and raises the alarm too when Kind is DoAlarm.
type Action struct {
	Kind        ActionKind
	AlarmKind   string // call, wander, fall (alarm.Kind); default call
	Priority    int    // 1 (most urgent) … 3; default 2
	VisitWithin time.Duration
}

// Plan is one resident's supervision plan, resolved from config.
type Plan struct {
	Site, Unit, Resident string
	// NightStart and NightEnd are the resident's night window, minutes
	// after local midnight (it may wrap midnight).
	NightStart, NightEnd int
	// Times are fixed look-ins (minutes after local midnight); Every
	// spaces look-ins through the night from NightStart+Every instead.
	Times []int
	Every time.Duration
	// Tolerance is how long after the planned time the look-in may still
	// come out all right (back in bed at 02:10 for a 02:00 look-in with
	// 15 min). Until then a result that is not all right is not final.
	Tolerance time.Duration
	Criteria  Criteria
	Limits    Limits
	// Sensors are the devices the look-in reads, by role.
	Sensors []SensorRef
	Action  Action
	// Replaces are the wall times (minutes) of physical visits in the care
	// plan that a look-in at the same time replaces when all right.
	Replaces []int
	Consent  bool
}

// SensorRef names a device and its role.
type SensorRef struct {
	Device string
	Role   Role
}

// ParseClock reads "HH:MM" as minutes after midnight.
func ParseClock(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not HH:MM", s)
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if h > 23 || m > 59 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return h*60 + m, nil
}

// Clock formats minutes after midnight as "HH:MM".
func Clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// offset is how far into the night (minutes from its start) wall minute m
// lies.
func (p *Plan) offset(m int) int { return ((m-p.NightStart)%1440 + 1440) % 1440 }

// length is the night window's length in wall minutes.
func (p *Plan) length() int {
	if p.NightStart == p.NightEnd {
		return 0
	}
	return p.offset(p.NightEnd)
}

// Walls returns the look-ins' wall times in night order.
func (p *Plan) Walls() []int {
	var out []int
	if len(p.Times) > 0 {
		out = slices.Clone(p.Times)
	} else if step := int(p.Every / time.Minute); step > 0 {
		for o := step; o < p.length(); o += step {
			out = append(out, (p.NightStart+o)%1440)
		}
	}
	slices.SortFunc(out, func(a, b int) int { return p.offset(a) - p.offset(b) })
	return out
}

// Check validates the plan's times against its night window: every
// look-in inside the window, no two look-ins whose tolerance windows
// overlap, every replaced visit matched by a look-in. Errors name the
// field (times, every, tolerance, replaces) as their prefix.
func (p *Plan) Check() []error {
	var errs []error
	n := p.length()
	if n == 0 {
		return []error{errors.New("night: tillsyn needs a night window (start ≠ end)")}
	}
	if len(p.Times) > 0 && p.Every > 0 {
		errs = append(errs, errors.New("every: set times or every, not both"))
	}
	if len(p.Times) == 0 && p.Every <= 0 {
		errs = append(errs, errors.New("times: missing: fixed look-ins (\"23:00\") or every (2h)"))
	}
	if p.Every > 0 && (p.Every < 15*time.Minute || p.Every%time.Minute != 0) {
		errs = append(errs, errors.New("every: must be whole minutes, at least 15m"))
	}
	night := Clock(p.NightStart) + "–" + Clock(p.NightEnd)
	for i, m := range p.Times {
		if p.offset(m) >= n {
			errs = append(errs, fmt.Errorf("times.%d: %s is outside the night window %s", i, Clock(m), night))
		}
	}
	if p.Tolerance < 0 {
		errs = append(errs, errors.New("tolerance: must not be negative"))
	}
	w := p.Walls()
	for i := 1; i < len(w); i++ {
		gap := p.offset(w[i]) - p.offset(w[i-1])
		if gap == 0 {
			errs = append(errs, fmt.Errorf("times: %s twice", Clock(w[i])))
		} else if time.Duration(gap)*time.Minute <= p.Tolerance {
			errs = append(errs, fmt.Errorf("tolerance: the look-ins at %s and %s overlap (%s apart, tolerance %s)",
				Clock(w[i-1]), Clock(w[i]), time.Duration(gap)*time.Minute, p.Tolerance))
		}
	}
	for i, m := range p.Replaces {
		if !slices.Contains(w, m) {
			errs = append(errs, fmt.Errorf("replaces.%d: no look-in at %s to replace that visit", i, Clock(m)))
		}
	}
	if len(p.Criteria.Roles()) == 0 && !p.Criteria.NoAlarmOpen {
		errs = append(errs, errors.New("all_right: no criterion set (in_bed, presence_within, door_closed, no_alarm_open)"))
	}
	return errs
}

// LookIn is one planned look-in of one night.
type LookIn struct {
	Site     string    `json:"site"`
	Unit     string    `json:"unit,omitempty"`
	Resident string    `json:"resident"`
	Night    string    `json:"night"` // the local date the night began, YYYY-MM-DD
	Wall     string    `json:"wall"`  // planned wall time, "02:00"
	Planned  time.Time `json:"planned"`
	Deadline time.Time `json:"deadline"` // Planned + tolerance: the result is final then
	Replaces bool      `json:"replaces,omitempty"`
	// Note explains a daylight-saving adjustment of this night.
	Note string `json:"note,omitempty"`
}

// Key identifies a look-in across restarts: site/resident/night/wall.
func (l LookIn) Key() string { return l.Site + "/" + l.Resident + "/" + l.Night + "/" + l.Wall }

// NightOf returns the local date (at midnight) of the most recent night
// window to have started at or before t.
func NightOf(t time.Time, loc *time.Location, start int) time.Time {
	lt := t.In(loc)
	d := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
	if lt.Hour()*60+lt.Minute() < start {
		d = d.AddDate(0, 0, -1)
	}
	return d
}

// Schedule returns the look-ins of the night that begins on the local date
// of night (year, month, day are used) in loc, in time order.
//
// Daylight saving (Europe/Stockholm and any zone): a wall time that occurs
// twice (02:00–02:59 on the last Sunday of October) is looked in on once,
// at its first occurrence; a wall time that does not exist (02:00–02:59 on
// the last Sunday of March) moves to the next valid minute (03:00). Both
// carry a Note saying so.
func (p *Plan) Schedule(night time.Time, loc *time.Location) []LookIn {
	y, mo, d := night.Date()
	var out []LookIn
	replaced := map[int]bool{}
	for _, m := range p.Replaces {
		replaced[m] = true
	}
	for _, m := range p.Walls() {
		dd := d
		if p.NightStart > p.NightEnd && m < p.NightStart {
			dd++ // after midnight: the next day (time.Date normalises)
		}
		at, note := Resolve(y, mo, dd, m, loc)
		out = append(out, LookIn{Site: p.Site, Unit: p.Unit, Resident: p.Resident,
			Night: fmt.Sprintf("%04d-%02d-%02d", y, mo, d), Wall: Clock(m), Planned: at,
			Deadline: at.Add(p.Tolerance), Replaces: replaced[m], Note: note})
	}
	slices.SortStableFunc(out, func(a, b LookIn) int { return a.Planned.Compare(b.Planned) })
	return out
}

// End returns when the night that begins on the local date of night ends.
func (p *Plan) End(night time.Time, loc *time.Location) time.Time {
	y, mo, d := night.Date()
	if p.NightStart > p.NightEnd {
		d++
	}
	t, _ := Resolve(y, mo, d, p.NightEnd, loc)
	return t
}

// Resolve turns a local date and wall minute into an instant: a wall time
// that occurs twice gives its first occurrence, one that does not exist
// the next valid minute.
func Resolve(y int, mo time.Month, d, minute int, loc *time.Location) (time.Time, string) {
	want := time.Date(y, mo, d, 0, minute, 0, 0, time.UTC) // normalised wall fields
	same := func(t time.Time) bool {
		lt := t.In(loc)
		return lt.Year() == want.Year() && lt.Month() == want.Month() && lt.Day() == want.Day() &&
			lt.Hour() == want.Hour() && lt.Minute() == want.Minute()
	}
	t := time.Date(y, mo, d, 0, minute, 0, 0, loc)
	if !same(t) {
		// In a gap: the first minute after it that exists.
		for k := 1; k <= 24*60; k++ {
			c := time.Date(y, mo, d, 0, minute+k, 0, 0, loc)
			w := time.Date(y, mo, d, 0, minute+k, 0, 0, time.UTC)
			if lt := c.In(loc); lt.Hour() == w.Hour() && lt.Minute() == w.Minute() && lt.Day() == w.Day() {
				return c, fmt.Sprintf("%s finns inte i natt (sommartid), tillsyn %s / %s does not exist tonight (DST), look-in at %s",
					Clock(minute%1440), Clock(w.Hour()*60+w.Minute()), Clock(minute%1440), Clock(w.Hour()*60+w.Minute()))
			}
		}
		return t, ""
	}
	// Twice: the earliest instant that shows the same wall time.
	for _, back := range []time.Duration{3 * time.Hour, 2 * time.Hour, 90 * time.Minute, time.Hour, 30 * time.Minute} {
		if u := t.Add(-back); same(u) {
			return u, fmt.Sprintf("%s inträffar två gånger i natt (vintertid), tillsyn vid den första / %s occurs twice tonight (DST), look-in at the first",
				Clock(minute%1440), Clock(minute%1440))
		}
	}
	if u := t.Add(time.Hour); same(u) {
		// t is already the first occurrence; say so all the same.
		return t, fmt.Sprintf("%s inträffar två gånger i natt (vintertid), tillsyn vid den första / %s occurs twice tonight (DST), look-in at the first",
			Clock(minute%1440), Clock(minute%1440))
	}
	return t, ""
}
