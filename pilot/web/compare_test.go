package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vaka-care/vaka/pilot"
)

// simSource serves simulated trial data (test data, not a stand-in for a
// store: the stores have their own cross-check in pilot/influx).
type simSource struct{ d pilot.Data }

func (s simSource) Records(_ context.Context, trial string, from, to time.Time) ([]pilot.Record, error) {
	var out []pilot.Record
	for _, r := range s.d.Alarms {
		if r.Trial == trial {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s simSource) Outages(_ context.Context, trial string, from, to time.Time) ([]pilot.Outage, error) {
	var out []pilot.Outage
	for _, o := range s.d.Outages {
		if o.Trial == trial {
			out = append(out, o)
		}
	}
	return out, nil
}

// Two units run the same design, each with its own baseline arm: the
// comparison page puts each criterion on one row, a column per unit, each
// with its own value, interval and verdict.
func TestCompareUnitsSideBySide(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Stockholm")
	mk := func(id, site string) pilot.Trial {
		return pilot.Trial{ID: id, Title: "Natt " + site, Need: "n", Hypothesis: "h", Start: "2026-10-05", End: "2026-12-28",
			Arms: []pilot.Arm{{ID: "sensors", Name: "Sensorer", Units: []string{site + "/a"}, ResidentCount: 8, PlannedNightVisits: 2, DeviceCount: 24},
				{ID: "button", Name: "Larmknapp", Units: []string{site + "/b"}, ResidentCount: 8, PlannedNightVisits: 2, DeviceCount: 8}},
			Criteria: []pilot.Criterion{
				{ID: "visits", Text: "Minst 30 % färre nattbesök", Metric: "night_visits_per_resident_night", Arm: "sensors", Op: pilot.OpReducedByPct, Value: 30, Baseline: "button"},
				{ID: "tsa60", Text: "97,5 % inom 60 s", Metric: "accepted_within_60s_share", Arm: "sensors", Op: pilot.OpAtLeast, Value: 0.975},
			}}
	}
	c := &pilot.Config{Trials: []pilot.Trial{mk("vanersborg", "vbg"), mk("uddevalla", "udd")}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var d pilot.Data
	for i := range c.Trials {
		tr := &c.Trials[i]
		from, to := tr.Period(loc)
		x := pilot.SimulateData(tr, from, to, loc, uint64(i+1), nil)
		d.Alarms = append(d.Alarms, x.Alarms...)
		d.Outages = append(d.Outages, x.Outages...)
	}
	m := pilot.NewModel(c, loc, []byte("key-key-key-key-key"))
	now := time.Date(2026, 11, 18, 12, 0, 0, 0, loc)
	r := chi.NewRouter()
	for _, rt := range Routes(Options{Model: func() *pilot.Model { return m }, Source: simSource{d}, Now: func() time.Time { return now }}) {
		r.Method(rt.Method, rt.Pattern, rt.Handler)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/pilot/compare")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, page)
	}
	cols := regexp.MustCompile(`<th data-trial="([a-z]+)"`).FindAllStringSubmatch(page, -1)
	if len(cols) != 2 || cols[0][1] != "vanersborg" || cols[1][1] != "uddevalla" {
		t.Fatalf("columns %v", cols)
	}
	for _, id := range []string{"visits", "tsa60"} {
		row := regexp.MustCompile(`(?s)<tr data-criterion="` + id + `">(.*?)</tr>`).FindStringSubmatch(page)
		if row == nil {
			t.Fatalf("no row %s", id)
		}
		cells := regexp.MustCompile(`<td data-verdict="([a-z_]+)"><b>([^<]+)</b><br><small>95 % KI [^<]+</small>`).FindAllStringSubmatch(row[1], -1)
		if len(cells) != 2 {
			t.Errorf("row %s: %d cells with value and interval:\n%s", id, len(cells), row[1])
		}
		for _, c := range cells {
			if id == "visits" && !regexp.MustCompile(`^(−|&#43;)\d+\x{00a0}%$`).MatchString(c[2]) {
				t.Errorf("visits reads %q, want a relative change", c[2])
			}
		}
	}
	if n := strings.Count(page, "Preliminärt till 2026-12-27"); n != 2 {
		t.Errorf("preliminary markers %d", n)
	}
	// The dashboard links to the comparison when there are several trials.
	resp, err = http.Get(srv.URL + "/pilot")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `id="compare-link"`) {
		t.Error("no link to the comparison")
	}
}
