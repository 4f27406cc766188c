package roster

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
)

const rosterCSV = `# exported from the scheduling system
user,site,unit,date,start,end
natt1,solrosen,avd-a,daily,22:00,07:00
dag1,solrosen,,daily,07:00,22:00
natt2,solrosen,avd-b,2026-03-28,22:00,07:00
natt3,,,2026-10-24,21:30,06:45
`

func stockholm(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func open(t *testing.T) *Roster {
	t.Helper()
	shifts, err := ParseCSV("roster.csv", strings.NewReader(rosterCSV))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(stockholm(t), "")
	if err != nil {
		t.Fatal(err)
	}
	r.SetFile(shifts)
	return r
}

// Who is on duty, read on the wall clock of Europe/Stockholm: a night
// shift across midnight, and the two nights the clocks change (the spring
// night is an hour shorter, the autumn night an hour longer). An
// implementation that adds nine hours to 22:00 fails both DST rows.
func TestOnDutyAcrossMidnightAndDST(t *testing.T) {
	r := open(t)
	for _, c := range []struct {
		site, unit, at string
		want           []string
	}{
		// An ordinary night (no clock change): across midnight.
		{"solrosen", "avd-a", "2026-01-14T21:59:00+01:00", []string{"dag1"}},
		{"solrosen", "avd-a", "2026-01-14T22:00:00+01:00", []string{"natt1"}},
		{"solrosen", "avd-a", "2026-01-15T00:30:00+01:00", []string{"natt1"}},
		{"solrosen", "avd-a", "2026-01-15T06:59:00+01:00", []string{"natt1"}},
		{"solrosen", "avd-a", "2026-01-15T07:00:00+01:00", []string{"dag1"}},
		// A unit's night staff are not another unit's.
		{"solrosen", "avd-b", "2026-01-15T00:30:00+01:00", nil},
		{"annan", "avd-a", "2026-01-15T00:30:00+01:00", []string{}},
		// Spring: 2026-03-29 02:00 CET → 03:00 CEST. 02:30+02:00 is 01:30 CET.
		{"solrosen", "avd-a", "2026-03-29T02:30:00+02:00", []string{"natt1"}},
		{"solrosen", "avd-b", "2026-03-29T02:30:00+02:00", []string{"natt2"}},
		{"solrosen", "avd-a", "2026-03-29T06:59:00+02:00", []string{"natt1"}},
		{"solrosen", "avd-a", "2026-03-29T07:00:00+02:00", []string{"dag1"}}, // 05:00Z, eight hours after 22:00 CET
		{"solrosen", "avd-b", "2026-03-29T07:30:00+02:00", []string{"dag1"}},
		// natt2's dated shift was one night only.
		{"solrosen", "avd-b", "2026-03-29T23:00:00+02:00", nil},
		// Autumn: 2026-10-25 03:00 CEST → 02:00 CET; the night is ten hours.
		{"solrosen", "avd-a", "2026-10-25T06:30:00+01:00", []string{"natt1", "natt3"}}, // 05:30Z
		{"solrosen", "avd-a", "2026-10-25T06:50:00+01:00", []string{"natt1"}},
		{"solrosen", "avd-a", "2026-10-25T07:00:00+01:00", []string{"dag1"}},
		// Both 02:30s of the repeated hour are inside the night.
		{"solrosen", "avd-a", "2026-10-25T02:30:00+02:00", []string{"natt1", "natt3"}},
		{"solrosen", "avd-a", "2026-10-25T02:30:00+01:00", []string{"natt1", "natt3"}},
		{"solrosen", "avd-a", "2026-10-24T21:29:00+02:00", []string{"dag1"}},
		{"solrosen", "avd-a", "2026-10-24T21:30:00+02:00", []string{"dag1", "natt3"}},
	} {
		at, err := time.Parse(time.RFC3339, c.at)
		if err != nil {
			t.Fatal(err)
		}
		got := r.OnDuty(c.site, c.unit, at)
		if len(got) != len(c.want) || (len(got) > 0 && !slices.Equal(got, c.want)) {
			t.Errorf("OnDuty(%s, %s, %s) = %v, want %v", c.site, c.unit, c.at, got, c.want)
		}
	}
}

// A broken roster row names the file, its line and the column.
func TestParseCSVErrorsNameFileLineField(t *testing.T) {
	_, err := ParseCSV("/etc/vaka/roster.csv", strings.NewReader("user,site,unit,date,start,end\n"+
		"natt1,solrosen,avd-a,daily,22:00,07:00\n"+
		"natt2,solrosen,avd-a,2026-02-30,22:00,07:00\n"+
		"natt3,solrosen,avd-a,daily,25:00,07:00\n"+
		",solrosen,avd-a,daily,22:00,07:00\n"))
	var want = []struct {
		line  int
		field string
	}{{3, "date"}, {4, "start"}, {5, "user"}}
	var got []*config.Error
	for _, e := range flatten(err) {
		var ce *config.Error
		if !errors.As(e, &ce) {
			t.Fatalf("not a config.Error: %v", e)
		}
		got = append(got, ce)
	}
	if len(got) != len(want) {
		t.Fatalf("errors: %v", err)
	}
	for i, w := range want {
		if got[i].File != "/etc/vaka/roster.csv" || got[i].Line != w.line || got[i].Field != w.field {
			t.Errorf("error %d = %v, want line %d field %s", i, got[i], w.line, w.field)
		}
	}
	if !strings.Contains(got[0].Error(), "/etc/vaka/roster.csv:3: field date") {
		t.Errorf("message %q", got[0].Error())
	}
	_, err = ParseCSV("r.csv", strings.NewReader("user,shift\n"))
	if err == nil || !strings.Contains(err.Error(), "r.csv:1: field shift: unknown column") || !strings.Contains(err.Error(), "field date: missing column") {
		t.Errorf("header error: %v", err)
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// Shifts set through the API are persisted and read back after a restart;
// a bad shift is refused and changes nothing.
func TestAPIShiftsPersist(t *testing.T) {
	loc := stockholm(t)
	path := filepath.Join(t.TempDir(), "roster.json")
	r, err := Open(loc, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetAPI([]Shift{{User: "natt2", Site: "solrosen", Date: "2026-03-28", Start: "22:00", End: "07:00"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetAPI([]Shift{{User: "x", Date: "daily", Start: "22:00", End: "22:00"}}); err == nil {
		t.Error("an empty shift was accepted")
	}
	r2, err := Open(loc, path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, loc)
	if got := r2.OnDuty("solrosen", "avd-a", at); !slices.Equal(got, []string{"natt2"}) {
		t.Errorf("after reopening: %v", got)
	}
	// Through the HTTP handler: a shift for an unknown account is refused.
	routes := Routes(r2, func(u string) bool { return u == "natt2" }, nil)
	rec := httptest.NewRecorder()
	routes[1].Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/api/v1/roster",
		strings.NewReader(`{"shifts":[{"user":"ghost","date":"daily","start":"22:00","end":"07:00"}]}`)))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "shifts[0].user") {
		t.Errorf("unknown user: %d %s", rec.Code, rec.Body)
	}
	if got := r2.OnDuty("solrosen", "avd-a", at); !slices.Equal(got, []string{"natt2"}) {
		t.Errorf("a refused PUT changed the roster: %v", got)
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add(rosterCSV)
	f.Add("user,date,start,end\n\"a,daily,1\n")
	f.Fuzz(func(t *testing.T, s string) {
		shifts, err := ParseCSV("f.csv", strings.NewReader(s))
		if err != nil {
			return
		}
		loc := time.UTC
		for _, sh := range shifts {
			if f, _ := sh.Check(); f != "" {
				t.Fatalf("accepted a bad shift %+v", sh)
			}
			sh.Covers(time.Unix(0, 0), loc)
		}
	})
}

// The PUT body is outside input: any bytes give 200 or 400, never a
// panic, and a refused body changes nothing.
func FuzzRosterPUT(f *testing.F) {
	f.Add(`{"shifts":[{"user":"natt1","site":"solrosen","date":"daily","start":"22:00","end":"07:00"}]}`)
	f.Add(`{"shifts":[{"user":"natt1","date":"2026-02-30","start":"22:00","end":"07:00"}]}`)
	f.Add(`{"shifts":null}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, body string) {
		r, _ := Open(time.UTC, "")
		before := []Shift{{User: "natt1", Date: Daily, Start: "22:00", End: "07:00"}}
		if err := r.SetAPI(before); err != nil {
			t.Fatal(err)
		}
		put := Routes(r, func(u string) bool { return u == "natt1" }, nil)[1].Handler
		rec := httptest.NewRecorder()
		put.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/api/v1/roster", strings.NewReader(body)))
		_, api := r.Shifts()
		switch rec.Code {
		case http.StatusOK:
			for _, s := range api {
				if f, _ := s.Check(); f != "" || s.User != "natt1" {
					t.Fatalf("stored a bad shift %+v", s)
				}
			}
		case http.StatusBadRequest:
			if !slices.Equal(api, before) {
				t.Fatalf("a refused body changed the roster: %+v", api)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
