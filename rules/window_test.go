package rules

import (
	"strings"
	"testing"
	"time"
)

func mustWindow(t testing.TB, start, end string) Window {
	t.Helper()
	w, err := ParseWindow(start, end)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func utc(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
}

// The DST changes of 2026 in Europe/Stockholm, by the instant: spring
// forward at 01:00 UTC on 29 March (02:00 CET → 03:00 CEST), fall back at
// 01:00 UTC on 25 October (03:00 CEST → 02:00 CET).
func TestStockholmDSTDates(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{utc(2026, 3, 29, 0, 59), "01:59 CET"},
		{utc(2026, 3, 29, 1, 0), "03:00 CEST"},
		{utc(2026, 10, 25, 0, 59), "02:59 CEST"},
		{utc(2026, 10, 25, 1, 0), "02:00 CET"},
	} {
		if got := tc.at.In(stockholm).Format("15:04 MST"); got != tc.want {
			t.Fatalf("%v is %s in Stockholm, want %s: the tz database disagrees with this test", tc.at, got, tc.want)
		}
	}
}

func TestWindowContains(t *testing.T) {
	night := mustWindow(t, "22:00", "06:30")
	always := mustWindow(t, "00:00", "00:00")
	day := mustWindow(t, "08:00", "17:00")
	for _, tc := range []struct {
		name string
		w    Window
		at   time.Time
		want bool
	}{
		// Night 22:00–06:30 on an ordinary night.
		{"night 21:59", night, local(2026, 11, 22, 21, 59), false},
		{"night 22:00 start inclusive", night, local(2026, 11, 22, 22, 0), true},
		{"night 23:59", night, local(2026, 11, 22, 23, 59), true},
		{"night 00:00", night, local(2026, 11, 23, 0, 0), true},
		{"night 06:29", night, local(2026, 11, 23, 6, 29), true},
		{"night 06:30 end exclusive", night, local(2026, 11, 23, 6, 30), false},
		{"night 12:00", night, local(2026, 11, 23, 12, 0), false},

		// Spring forward, 2026-03-29: 02:00 CET becomes 03:00 CEST.
		{"spring 21:59 the evening before", night, local(2026, 3, 28, 21, 59), false},
		{"spring 22:00 the evening before", night, local(2026, 3, 28, 22, 0), true},
		{"spring 01:59 CET", night, utc(2026, 3, 29, 0, 59), true},
		{"spring 03:00 CEST, the instant of the change", night, utc(2026, 3, 29, 1, 0), true},
		{"spring 02:30 does not exist (normalised to 03:30 CEST)", night, local(2026, 3, 29, 2, 30), true},
		{"spring 06:29 CEST", night, utc(2026, 3, 29, 4, 29), true},
		{"spring 06:30 CEST", night, utc(2026, 3, 29, 4, 30), false},
		{"spring 05:30 UTC is 07:30 CEST, day", night, utc(2026, 3, 29, 5, 30), false},
		{"spring 22:00 CEST the next evening", night, utc(2026, 3, 29, 20, 0), true},
		{"spring 21:59 CEST the next evening", night, utc(2026, 3, 29, 19, 59), false},

		// Fall back, 2026-10-25: 03:00 CEST becomes 02:00 CET.
		{"fall 22:00 CEST the evening before", night, utc(2026, 10, 24, 20, 0), true},
		{"fall 21:59 CEST the evening before", night, utc(2026, 10, 24, 19, 59), false},
		{"fall first 02:30 (CEST)", night, utc(2026, 10, 25, 0, 30), true},
		{"fall second 02:30 (CET)", night, utc(2026, 10, 25, 1, 30), true},
		{"fall 06:29 CET", night, utc(2026, 10, 25, 5, 29), true},
		{"fall 06:30 CET", night, utc(2026, 10, 25, 5, 30), false},
		{"fall 05:30 UTC would be 07:30 CEST but is 06:30 CET, day", night, utc(2026, 10, 25, 5, 30), false},
		{"fall 04:30 UTC would be 06:30 CEST but is 05:30 CET, night", night, utc(2026, 10, 25, 4, 30), true},

		// Start == End means always, including across both changes.
		{"always 12:00", always, local(2026, 11, 23, 12, 0), true},
		{"always midnight", always, local(2026, 11, 23, 0, 0), true},
		{"always spring 01:59 CET", always, utc(2026, 3, 29, 0, 59), true},
		{"always spring 03:00 CEST", always, utc(2026, 3, 29, 1, 0), true},
		{"always fall first 02:30", always, utc(2026, 10, 25, 0, 30), true},
		{"always fall second 02:30", always, utc(2026, 10, 25, 1, 30), true},

		// A day window within one calendar day.
		{"day 07:59", day, local(2026, 11, 23, 7, 59), false},
		{"day 08:00", day, local(2026, 11, 23, 8, 0), true},
		{"day 12:00", day, local(2026, 11, 23, 12, 0), true},
		{"day 16:59", day, local(2026, 11, 23, 16, 59), true},
		{"day 17:00", day, local(2026, 11, 23, 17, 0), false},
		{"day 23:00", day, local(2026, 11, 23, 23, 0), false},
		{"day 03:00", day, local(2026, 11, 23, 3, 0), false},
		{"day spring 08:00 CEST", day, utc(2026, 3, 29, 6, 0), true},
		{"day spring 07:00 UTC is 09:00 CEST", day, utc(2026, 3, 29, 7, 0), true},
		{"day spring 15:00 UTC is 17:00 CEST", day, utc(2026, 3, 29, 15, 0), false},
		{"day fall 07:00 UTC is 08:00 CET", day, utc(2026, 10, 25, 7, 0), true},
		{"day fall 06:59 UTC is 07:59 CET", day, utc(2026, 10, 25, 6, 59), false},
		{"day fall 16:00 UTC is 17:00 CET", day, utc(2026, 10, 25, 16, 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.w.Contains(tc.at, stockholm); got != tc.want {
				t.Errorf("%s.Contains(%s) = %v, want %v", tc.w, tc.at.In(stockholm).Format("2006-01-02 15:04 MST"), got, tc.want)
			}
		})
	}
}

// Walking a whole night minute by minute: the night shift is 8 h 30 min of
// real time on an ordinary night, 7 h 30 min when clocks go forward and
// 9 h 30 min when they go back, as the staff on duty live it. A day window
// is not touched by either change; "always" is always.
func TestWindowMinutesAcrossDST(t *testing.T) {
	night := mustWindow(t, "22:00", "06:30")
	always := mustWindow(t, "00:00", "00:00")
	day := mustWindow(t, "08:00", "17:00")
	for _, tc := range []struct {
		name string
		w    Window
		from time.Time // 24 h of real time from here
		want int       // minutes inside
	}{
		{"ordinary night", night, local(2026, 11, 22, 12, 0), 510},
		{"spring-forward night", night, local(2026, 3, 28, 12, 0), 450},
		{"fall-back night", night, local(2026, 10, 24, 12, 0), 570},
		{"always, spring", always, local(2026, 3, 28, 12, 0), 24 * 60},
		{"always, fall", always, local(2026, 10, 24, 12, 0), 24 * 60},
		{"day, spring", day, local(2026, 3, 29, 0, 0), 540},
		{"day, fall", day, local(2026, 10, 25, 0, 0), 540},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, wasIn, changes := 0, false, 0
			for i := 0; i < 24*60; i++ {
				at := tc.from.Add(time.Duration(i) * time.Minute)
				c := tc.w.Contains(at, stockholm)
				if c {
					in++
				}
				if i > 0 && c != wasIn {
					changes++
				}
				wasIn = c
			}
			if in != tc.want {
				t.Errorf("%d minutes inside %s, want %d", in, tc.w, tc.want)
			}
			// One contiguous stretch: at most one entry and one exit.
			if changes > 2 {
				t.Errorf("%s flickered %d times in 24 h", tc.w, changes)
			}
		})
	}
}

func TestWindowUsesTheGivenZone(t *testing.T) {
	night := mustWindow(t, "22:00", "06:30")
	at := utc(2026, 11, 23, 21, 30) // 22:30 in Stockholm, 21:30 UTC
	if !night.Contains(at, stockholm) || night.Contains(at, time.UTC) {
		t.Error("the window is not read on the given zone's wall clock")
	}
}

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct {
		start, end string
		want       Window
		str        string
	}{
		{"22:00", "06:30", Window{22 * 60, 6*60 + 30}, "22:00–06:30"},
		{"00:00", "00:00", Window{0, 0}, "00:00–00:00"},
		{"08:00", "17:00", Window{8 * 60, 17 * 60}, "08:00–17:00"},
		{"23:59", "00:01", Window{23*60 + 59, 1}, "23:59–00:01"},
	} {
		w, err := ParseWindow(tc.start, tc.end)
		if err != nil || w != tc.want || w.String() != tc.str {
			t.Errorf("ParseWindow(%q, %q) = %+v %q, %v; want %+v %q", tc.start, tc.end, w, w.String(), err, tc.want, tc.str)
		}
	}
	for _, tc := range []struct{ start, end, errPrefix string }{
		{"24:00", "06:00", "start: "},
		{"22:00", "06:60", "end: "},
		{"7:00", "08:00", "start: "},
		{"07:00:00", "08:00", "start: "},
		{"07-00", "08:00", "start: "},
		{"ab:cd", "08:00", "start: "},
		{"", "08:00", "start: "},
		{"22:00", "", "end: "},
		{"22:00", "6:30", "end: "},
	} {
		_, err := ParseWindow(tc.start, tc.end)
		if err == nil || !strings.HasPrefix(err.Error(), tc.errPrefix) {
			t.Errorf("ParseWindow(%q, %q) = %v, want an error starting %q", tc.start, tc.end, err, tc.errPrefix)
		}
	}
}
