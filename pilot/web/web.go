// Package web is the innovation lead's view of pilot evidence: per trial a
// verdict per criterion agreed up front, charts over time and arm against
// arm (server-side SVG, no script, no CDN), a CSV export and a printable
// report. Swedish first, English with ?lang=en. Mounted behind login; who
// may see it (lead and admin) is decided by httpapi's policy table
// (docs/roles.md).
package web

import (
	"context"
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/pilot"
)

// Source reads pilot records and device outages: the embedded store or
// InfluxDB. Participants come from the trial's consent registry.
type Source interface {
	Records(ctx context.Context, trial string, from, to time.Time) ([]pilot.Record, error)
	Outages(ctx context.Context, trial string, from, to time.Time) ([]pilot.Outage, error)
}

// SupervisionSource is a Source that also has digital night supervision
// records (look-ins and visits); the report then counts the visits they
// replaced.
type SupervisionSource interface {
	Supervision(ctx context.Context, trial string, from, to time.Time) ([]pilot.LookIn, []pilot.Visit, error)
}

// Options configure the pages.
type Options struct {
	// Model returns the current pilot model (it changes on a config reload).
	Model  func() *pilot.Model
	Source Source
	Now    func() time.Time
	Logger *slog.Logger
}

//go:embed static/pilot.css
var static embed.FS

var page = template.Must(template.New("pilot.html").Funcs(funcs).ParseFS(templates, "templates/pilot.html", "templates/chart.html"))

//go:embed templates/pilot.html templates/chart.html
var templates embed.FS

// Routes returns the pilot pages and API, for service.WithRoutes.
func Routes(o Options) []httpapi.Route {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handlers{o: o}
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: "/pilot", Handler: http.HandlerFunc(h.dashboard)},
		{Method: http.MethodGet, Pattern: "/pilot/trials/{id}/report", Handler: http.HandlerFunc(h.printable)},
		{Method: http.MethodGet, Pattern: "/pilot/static/pilot.css", Handler: http.HandlerFunc(css)},
		{Method: http.MethodGet, Pattern: "/api/v1/trials", Handler: http.HandlerFunc(h.list)},
		{Method: http.MethodGet, Pattern: "/api/v1/trials/{id}", Handler: http.HandlerFunc(h.report)},
		{Method: http.MethodGet, Pattern: "/api/v1/trials/{id}/report.csv", Handler: http.HandlerFunc(h.csv)},
		{Method: http.MethodGet, Pattern: "/pilot/trials/{id}/benefits", Handler: http.HandlerFunc(h.benefits)},
		{Method: http.MethodGet, Pattern: "/pilot/compare", Handler: http.HandlerFunc(h.compare)},
		{Method: http.MethodGet, Pattern: "/api/v1/trials/{id}/benefits.csv", Handler: http.HandlerFunc(h.benefitsCSV)},
	}
}

type handlers struct{ o Options }

// build computes a trial's report over its period (up to now while it runs).
func (h *handlers) build(ctx context.Context, m *pilot.Model, t *pilot.Trial) (pilot.Report, error) {
	from, to := t.Period(m.Loc)
	now := h.o.Now()
	if now.Before(to) {
		// A running trial: whole days so far.
		n := now.In(m.Loc)
		to = time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, m.Loc).AddDate(0, 0, 1)
		if !to.After(from) {
			to = from.AddDate(0, 0, 1)
		}
	}
	// From the baseline period's start, if the trial has one.
	since, _ := t.Recorded(m.Loc)
	recs, err := h.o.Source.Records(ctx, t.ID, since, to)
	if err != nil {
		return pilot.Report{}, err
	}
	outs, err := h.o.Source.Outages(ctx, t.ID, since, to)
	if err != nil {
		return pilot.Report{}, err
	}
	d := pilot.Data{Alarms: recs, Outages: outs, Participants: t.Participation(m.Loc, nil), Until: now}
	if ss, ok := h.o.Source.(SupervisionSource); ok {
		if d.LookIns, d.Visits, err = ss.Supervision(ctx, t.ID, since, to); err != nil {
			return pilot.Report{}, err
		}
	}
	return pilot.BuildReport(t, d, from, to, m.Loc), nil
}

func (h *handlers) trial(w http.ResponseWriter, r *http.Request, id string) (*pilot.Model, *pilot.Trial, bool) {
	m := h.o.Model()
	if id == "" && len(m.Config.Trials) > 0 {
		id = m.Config.Trials[0].ID
	}
	t, ok := m.Config.Trial(id)
	if !ok {
		if id == "" {
			return m, nil, true
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no trial " + strconv.Quote(id)})
		return nil, nil, false
	}
	return m, t, true
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	m := h.o.Model()
	type item struct {
		*pilot.Trial
		Results []pilot.Result `json:"results"`
	}
	out := []item{}
	for i := range m.Config.Trials {
		t := &m.Config.Trials[i]
		rep, err := h.build(r.Context(), m, t)
		if err != nil {
			h.fail(w, err)
			return
		}
		out = append(out, item{Trial: t, Results: rep.Results})
	}
	writeJSON(w, http.StatusOK, map[string]any{"trials": out})
}

func (h *handlers) report(w http.ResponseWriter, r *http.Request) {
	if _, _, rep, ok := h.trialReport(w, r); ok {
		writeJSON(w, http.StatusOK, rep)
	}
}

// trialReport builds the report of the trial the URL's {id} names. false:
// it has answered already (no such trial, or the records unavailable).
func (h *handlers) trialReport(w http.ResponseWriter, r *http.Request) (*pilot.Model, *pilot.Trial, pilot.Report, bool) {
	m, t, ok := h.trial(w, r, chi.URLParam(r, "id"))
	if !ok {
		return nil, nil, pilot.Report{}, false
	}
	rep, err := h.build(r.Context(), m, t)
	if err != nil {
		h.fail(w, err)
		return nil, nil, pilot.Report{}, false
	}
	return m, t, rep, true
}

func (h *handlers) fail(w http.ResponseWriter, err error) {
	h.o.Logger.Error("pilot: report failed", "err", err)
	writeJSON(w, http.StatusBadGateway, map[string]string{"error": "pilot records unavailable: " + err.Error()})
}

// csv writes the report in long form: one value per row, so a
// spreadsheet can pivot it any way.
func (h *handlers) csv(w http.ResponseWriter, r *http.Request) {
	m, t, rep, ok := h.trialReport(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	if r.URL.Query().Get("lang") == "sv" {
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", t.ID+"-rapport.csv"))
		if err := writeSwedishCSV(w, &rep, t, m.Loc); err != nil {
			h.o.Logger.Warn("pilot: csv", "err", err)
		}
		return
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", t.ID+"-report.csv"))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"section", "period_start", "arm", "metric", "value", "samples", "verdict"})
	// Rounded to 4 decimals (a share to 0.01 %); no value is an empty
	// cell, never 0 or NaN.
	f := func(x float64) string {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return ""
		}
		return strconv.FormatFloat(math.Round(x*1e4)/1e4, 'f', -1, 64)
	}
	val := func(x float64, n int) string {
		if n == 0 {
			return ""
		}
		return f(x)
	}
	day := func(x time.Time) string { return x.In(m.Loc).Format(time.DateOnly) }
	for _, res := range rep.Results {
		_ = cw.Write([]string{"criterion", day(rep.From), res.Criterion.Arm, res.Criterion.Metric + " " + res.Criterion.Op + " " + f(res.Criterion.Value),
			f(res.Value), strconv.Itoa(res.Samples), string(res.Verdict)})
	}
	metrics := append([]string{}, pilot.Metrics...)
	for _, s := range pilot.Sources {
		metrics = append(metrics, "alarms_per_resident_night."+string(s))
	}
	for _, a := range t.Arms {
		ms := rep.Arms[a.ID]
		for _, name := range metrics {
			v, n := ms.Metric(name)
			_ = cw.Write([]string{"period", day(rep.From), a.ID, name, val(v, n), strconv.Itoa(n), ""})
		}
		n := 0
		for _, c := range ms.PhoneVia {
			n += c
		}
		for _, ch := range []string{"push", "app", "webhook"} {
			_ = cw.Write([]string{"period", day(rep.From), a.ID, "first_receipt_via." + ch, strconv.Itoa(ms.PhoneVia[ch]), strconv.Itoa(n), ""})
		}
	}
	for _, wk := range rep.Weeks {
		for _, a := range t.Arms {
			ms := wk.Arms[a.ID]
			for _, name := range []string{"alarms_per_resident_night", "p90_to_accept_s", "real_need_share", "false_share", "unaccepted_share",
				"night_visits_replaced", "device_uptime", "p90_to_detect_offline_s", "continuation_rate"} {
				v, n := ms.Metric(name)
				_ = cw.Write([]string{"week", day(wk.From), a.ID, name, val(v, n), strconv.Itoa(n), ""})
			}
		}
	}
	cw.Flush()
}

func (h *handlers) dashboard(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, r.URL.Query().Get("trial"), false)
}

func (h *handlers) printable(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, chi.URLParam(r, "id"), true)
}

func (h *handlers) render(w http.ResponseWriter, r *http.Request, id string, print bool) {
	lang := "sv"
	if r.URL.Query().Get("lang") == "en" {
		lang = "en"
	}
	m, t, ok := h.trial(w, r, id)
	if !ok {
		return
	}
	v := view{Lang: lang, T: texts[lang], Print: print, Model: m, Trial: t, F: fmtFor(lang), Ev: evTexts[lang],
		Generated: h.o.Now().In(m.Loc).Format("2006-01-02 15:04 MST")}
	if u, ok := httpapi.UserFromRequest(r); ok {
		v.User = u.Name
	}
	if t != nil {
		rep, err := h.build(r.Context(), m, t)
		if err != nil {
			h.fail(w, err)
			return
		}
		v.Report = &rep
		v.Charts = charts(&rep, t, texts[lang], m.Loc, v.F)
		v.Crit = criteria(&rep, t, lang)
		v.Head = headline(&rep, v.Crit, lang, m.Loc)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := page.Execute(w, v); err != nil {
		h.o.Logger.Error("pilot: render", "err", err)
	}
}

// css serves the stylesheet (the hub's CSP allows no inline style).
func css(w http.ResponseWriter, r *http.Request) {
	b, _ := static.ReadFile("static/pilot.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
