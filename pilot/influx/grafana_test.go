package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/pilot"
)

// grafanaPanel is what the test needs of a panel in deploy/grafana-pilot.json.
type grafanaPanel struct {
	ID      int            `json:"id"`
	Title   string         `json:"title"`
	Type    string         `json:"type"`
	Panels  []grafanaPanel `json:"panels"` // a row's panels
	Targets []struct {
		RefID    string `json:"refId"`
		Query    string `json:"query"`
		RawQuery bool   `json:"rawQuery"` // InfluxQL typed as text
	} `json:"targets"`
}

type grafanaDashboard struct {
	Templating struct {
		List []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			Query    any    `json:"query"`
			AllValue string `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

// grafanaQuery is one panel query with the template variables and the
// time range put in as Grafana does before it sends a query: ${var} and
// $var by the variable's value (a custom "All" value as it is), and for
// Flux the v.timeRangeStart / v.timeRangeStop / v.windowPeriod macros by
// RFC 3339 times and a duration; for InfluxQL $timeFilter and
// $__interval.
func grafanaQuery(q string, vars map[string]string, from, to time.Time, interval time.Duration) string {
	for k, v := range vars {
		q = strings.ReplaceAll(q, "${"+k+"}", v)
		q = strings.ReplaceAll(q, "$"+k, v)
	}
	q = strings.ReplaceAll(q, "v.timeRangeStart", from.UTC().Format(time.RFC3339Nano))
	q = strings.ReplaceAll(q, "v.timeRangeStop", to.UTC().Format(time.RFC3339Nano))
	q = strings.ReplaceAll(q, "v.windowPeriod", fmt.Sprintf("%dms", interval.Milliseconds()))
	q = strings.ReplaceAll(q, "$timeFilter", fmt.Sprintf("time >= %dms and time <= %dms", from.UnixMilli(), to.UnixMilli()))
	q = strings.ReplaceAll(q, "$__interval", fmt.Sprintf("%dms", interval.Milliseconds()))
	return q
}

// fluxRows runs a Flux query and returns its rows (every table's records).
func fluxRows(ctx context.Context, cl *Client, q string) ([]map[string]any, error) {
	res, err := cl.query.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var out []map[string]any
	for res.Next() {
		out = append(out, res.Record().Values())
	}
	return out, res.Err()
}

// influxQLRows runs an InfluxQL query against the pilot database and
// returns its rows as column → value.
func influxQLRows(ctx context.Context, base, q string) ([]map[string]any, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query",
		strings.NewReader(url.Values{"db": {"pilot"}, "q": {q}, "epoch": {"ms"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Columns []string `json:"columns"`
				Values  [][]any  `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("influxql: %s", body)
	}
	var out []map[string]any
	for _, res := range r.Results {
		if res.Error != "" {
			return nil, fmt.Errorf("influxql: %s", res.Error)
		}
		for _, s := range res.Series {
			for _, v := range s.Values {
				row := map[string]any{}
				for i, c := range s.Columns {
					row[c] = v[i]
				}
				out = append(out, row)
			}
		}
	}
	return out, nil
}

func flatPanels(ps []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatPanels(p.Panels)...)
	}
	return out
}

// Every query of the Grafana dashboard in deploy/ runs against a real
// InfluxDB 1.8.10 holding a known trial written by the exporter, with the
// variables and time range Grafana would put in, and returns data; for
// some panels the values are the hub's own measures of the same records.
func TestIntegrationGrafanaDashboardQueries(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "grafana-pilot.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana-pilot.json: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	run := runScenario(ctx, t)
	d, cl, store, tr, from, to := run.d, run.cl, run.store, run.tr, run.from, run.to
	recs, _ := store.Records(ctx, tr.ID, from, to)
	outs, _ := store.Outages(ctx, tr.ID, from, to)
	lookins, visits, _ := store.Supervision(ctx, tr.ID, from, to)
	rep := pilot.BuildReport(tr, pilot.Data{Alarms: recs, Outages: outs, Participants: tr.Participation(sthlm, nil),
		LookIns: lookins, Visits: visits}, from, to, sthlm)

	vars := map[string]string{"bucket": "pilot/autogen", "trial": tr.ID, "datasource": "influxdb"}
	for _, v := range dash.Templating.List {
		switch v.Type {
		case "textbox", "constant", "custom":
			if s, ok := v.Query.(string); ok && vars[v.Name] == "" {
				vars[v.Name] = s
			}
		case "query":
			// The variable's own query must list the trial.
			q, _ := v.Query.(string)
			if q == "" {
				t.Fatalf("variable %s has no query text", v.Name)
			}
			rows, err := fluxRows(ctx, cl, grafanaQuery(q, vars, from, to, time.Hour))
			if err != nil {
				t.Fatalf("variable %s: %v\n%s", v.Name, err, q)
			}
			found := false
			for _, r := range rows {
				if r["_value"] == vars[v.Name] {
					found = true
				}
			}
			if !found {
				t.Errorf("variable %s: %q not among %v", v.Name, vars[v.Name], rows)
			}
		}
	}
	// Grafana's interval for a 4-week range on a wide panel is about 30 min.
	const interval = 30 * time.Minute
	results := map[string][]map[string]any{} // "panel id/refId" → rows
	n := 0
	for _, p := range flatPanels(dash.Panels) {
		for _, tg := range p.Targets {
			if tg.Query == "" {
				continue
			}
			n++
			for _, trial := range []string{tr.ID, ".*"} { // one trial, and "All"
				vs := map[string]string{}
				for k, v := range vars {
					vs[k] = v
				}
				vs["trial"] = trial
				q := grafanaQuery(tg.Query, vs, from, to, interval)
				var rows []map[string]any
				var err error
				if tg.RawQuery || strings.HasPrefix(strings.ToUpper(strings.TrimSpace(tg.Query)), "SELECT") {
					rows, err = influxQLRows(ctx, d.url, q)
				} else {
					rows, err = fluxRows(ctx, cl, q)
				}
				if err != nil {
					t.Errorf("panel %d %q query %s (trial %s): %v\n%s", p.ID, p.Title, tg.RefID, trial, err, q)
					continue
				}
				if len(rows) == 0 {
					t.Errorf("panel %d %q query %s (trial %s): no data\n%s", p.ID, p.Title, tg.RefID, trial, q)
					continue
				}
				if trial == tr.ID {
					results[fmt.Sprintf("%d/%s", p.ID, tg.RefID)] = rows
				}
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d panel queries found in the dashboard", n)
	}
	t.Logf("%d panel queries ran with data", n)

	// Values Grafana shows are the hub's own measures of the same records.
	perArm := func(key, col string) map[string]float64 {
		out := map[string]float64{}
		for _, r := range results[key] {
			arm, _ := r["arm"].(string)
			switch v := r[col].(type) {
			case float64:
				out[arm] = v
			case int64:
				out[arm] = float64(v)
			}
		}
		return out
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	check := func(what string, got map[string]float64, want func(pilot.Measures) float64) {
		t.Helper()
		if len(got) != len(tr.Arms) {
			t.Errorf("%s: arms %v", what, got)
			return
		}
		for arm, v := range got {
			if w := want(rep.Arms[arm]); !near(v, w) {
				t.Errorf("%s, arm %s: Grafana %v, hub %v", what, arm, v, w)
			}
		}
		t.Logf("%s per arm, Grafana = hub: %v", what, got)
	}
	byTitle := func(prefix string) string {
		for _, p := range flatPanels(dash.Panels) {
			if strings.HasPrefix(p.Title, prefix) && len(p.Targets) > 0 {
				return fmt.Sprintf("%d/%s", p.ID, p.Targets[0].RefID)
			}
		}
		t.Fatalf("no panel titled %q…", prefix)
		return ""
	}
	check("unaccepted until escalation", perArm(byTitle("Ej kvitterade"), "_value"), func(m pilot.Measures) float64 { return m.UnacceptedShare })
	check("p90 time to detect a silent device", perArm(byTitle("Tid till upptäckt"), "_value"), func(m pilot.Measures) float64 { return m.TimeToDetect.P90 })
	check("continuation rate", perArm(byTitle("Fortsätter"), "_value"), func(m pilot.Measures) float64 { return m.ContinuationRate })
	check("outages detected", perArm(byTitle("Avbrott"), "_value"), func(m pilot.Measures) float64 { return float64(m.Outages) })
	// Outcomes per arm: one row per arm, a column per outcome.
	for _, r := range results[byTitle("Utfall per grupp")] {
		arm, _ := r["arm"].(string)
		for o, want := range rep.Arms[arm].Outcomes {
			if got, _ := r[o].(int64); got != int64(want) {
				t.Errorf("outcomes, arm %s, %s: Grafana %v, hub %d", arm, o, r[o], want)
			}
		}
	}
	// Digital night supervision: visits replaced per arm with look-ins,
	// as the hub counts them from the supervision records.
	replaced := perArm(byTitle("Nattbesök ersatta"), "_value")
	sup := rep.Arms["sensors"].Supervision
	if sup == nil || len(replaced) != 1 || replaced["sensors"] != float64(sup.VisitsReplaced) || sup.VisitsReplaced == 0 {
		t.Errorf("night visits replaced: Grafana %v, hub %+v", replaced, sup)
	}
	// First receipts by channel.
	via := map[string]int64{}
	for _, r := range results[byTitle("Första kvitto")] {
		arm, _ := r["arm"].(string)
		ch, _ := r["channel"].(string)
		x, _ := r["_value"].(int64)
		via[arm+"/"+ch] += x
	}
	var keys []string
	for k := range via {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, a := range tr.Arms {
		for _, ch := range []string{"push", "app"} {
			if via[a.ID+"/"+ch] != int64(rep.Arms[a.ID].PhoneVia[ch]) {
				t.Errorf("first receipt via %s, arm %s: Grafana %d, hub %d (%v)", ch, a.ID, via[a.ID+"/"+ch], rep.Arms[a.ID].PhoneVia[ch], keys)
			}
		}
	}
}
