package rules

import (
	"fmt"
	"time"
)

// Window is a daily window of local wall-clock time, such as the night
// shift 22:00–06:30. It is evaluated on the wall clock of the site's time
// zone, so it holds across daylight-saving changes: on the night clocks go
// forward the window is an hour shorter, on the night they go back an hour
// longer, exactly as the staff on duty experience it.
type Window struct {
	Start, End int // minutes after local midnight; Start == End means all day
}

// ParseWindow parses "HH:MM" start and end.
func ParseWindow(start, end string) (Window, error) {
	s, err := parseClock(start)
	if err != nil {
		return Window{}, fmt.Errorf("start: %w", err)
	}
	e, err := parseClock(end)
	if err != nil {
		return Window{}, fmt.Errorf("end: %w", err)
	}
	return Window{Start: s, End: e}, nil
}

func parseClock(s string) (int, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not HH:MM", s)
		}
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 23 || m > 59 || h < 0 || m < 0 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return h*60 + m, nil
}

// Contains reports whether t, read on the wall clock in loc, is inside the
// window. The start is inclusive and the end exclusive.
func (w Window) Contains(t time.Time, loc *time.Location) bool {
	if w.Start == w.End {
		return true
	}
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	if w.Start < w.End {
		return m >= w.Start && m < w.End
	}
	return m >= w.Start || m < w.End
}

func (w Window) String() string {
	return fmt.Sprintf("%02d:%02d–%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
}
