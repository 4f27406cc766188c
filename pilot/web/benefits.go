package web

import (
	"embed"
	"encoding/csv"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vaka-care/vaka/pilot"
)

//go:embed templates/benefits.html
var benefitsFS embed.FS

var benefitsPage = template.Must(template.New("benefits.html").Funcs(funcs).ParseFS(benefitsFS, "templates/benefits.html"))

var benefitTexts = map[string]map[string]string{
	"sv": {
		"title": "Nyttokalkyl", "back": "Tillbaka till pilotresultat", "csv": "Exportera CSV",
		"intro":  "Nyttan av försöket i nyttokalkylens form (SKR/Inera, digital nattillsyn) och det norska välfärdsteknikprogrammets nyttokategorier: kvalitet, sparad tid och undvikta kostnader. Varje siffra med sitt 95 %-intervall; antagandena nedan kan ändras.",
		"period": "Perioden", "assumptions": "Antaganden", "minutes": "Personaltid per fysiskt nattbesök, inkl. resa",
		"hourly": "Kostnad per personaltimme, inkl. PO", "callout": "Kostnad per nattlig utryckning utöver personaltiden (bil, drivmedel)",
		"guarantee": "Svarstidsgaranti: hos den boende inom", "recalc": "Räkna om",
		"assumptionsNote": "Standardvärden från försökets konfiguration (pilot.trials[].benefits); ändringar här sparas inte, men följer med i länken och i CSV-exporten.",
		"against":         "mot", "category": "Nyttokategori", "measure": "Mått", "ci": "95 % KI", "perYear": "Per år (uppräknat)",
		"time": "Sparad tid", "cost": "Undvikta kostnader", "quality": "Kvalitet",
		"visits": "Fysiska nattbesök ersatta", "hours": "Personaltimmar frigjorda", "callouts": "Nattliga utryckningar undvikta",
		"costAvoided": "Kostnad undviken", "kept": "Svarstidsgarantin hållen (andel larm)",
		"method": "Nattbesök ersatta: räknade ur tillsynsposterna (exakt Poisson-intervall) eller mot jämförelsegruppens takt (kvot mellan frekvenser). Timmar = besök × minuter per besök. Utryckningar = larmdrivna nattbesök färre än i jämförelsegruppens takt. Kostnad = timmar × timkostnad + utryckningar × kostnad per utryckning; intervallet summerar gränserna. Garantin: Wilsons intervall. Per år = perioden × 365 / antal nätter.",
		"bad":    "Ogiltigt antagande %s: %v. Standardvärdet används.",
		"kr":     "kr", "h": "h", "st": "st",
	},
	"en": {
		"title": "Benefit calculation", "back": "Back to pilot results", "csv": "Export CSV",
		"intro":  "The trial's benefits in the form of the Swedish benefit calculation (SKR/Inera, digital night supervision) and the Norwegian welfare-technology programme's benefit categories: quality, time saved and costs avoided. Every figure with its 95% interval; the assumptions below can be changed.",
		"period": "Period", "assumptions": "Assumptions", "minutes": "Staff time per physical night visit, travel included",
		"hourly": "Cost per staff hour, overheads included", "callout": "Cost per night call-out beyond staff time (car, fuel)",
		"guarantee": "Response-time guarantee: with the resident within", "recalc": "Recalculate",
		"assumptionsNote": "Defaults from the trial's configuration (pilot.trials[].benefits); changes here are not saved, but travel in the link and the CSV export.",
		"against":         "against", "category": "Benefit category", "measure": "Measure", "ci": "95% CI", "perYear": "Per year (scaled)",
		"time": "Time saved", "cost": "Costs avoided", "quality": "Quality",
		"visits": "Physical night visits replaced", "hours": "Staff hours released", "callouts": "Night call-outs avoided",
		"costAvoided": "Cost avoided", "kept": "Response-time guarantee kept (share of alarms)",
		"method": "Night visits replaced: counted from the supervision records (exact Poisson interval) or against the baseline's rate (rate ratio). Hours = visits × minutes per visit. Call-outs = alarm-driven night visits fewer than at the baseline's rate. Cost = hours × hourly cost + call-outs × cost per call-out; the interval adds the bounds. Guarantee: Wilson interval. Per year = period × 365 / nights.",
		"bad":    "Invalid assumption %s: %v. The default is used.",
		"kr":     "SEK", "h": "h", "st": "",
	},
}

type benefitLine struct {
	Key, Category, Label, Value, CI, PerYear string
	// For the CSV: plain numbers and unit.
	v, lo, hi, year float64
	unit            string
	dec             int
}

type benefitRow struct {
	Arm, Name, Baseline string
	Lines               []benefitLine
}

// assumptions reads the trial's assumptions and the query's overrides;
// a bad value keeps the default and is reported.
func assumptions(t *pilot.Trial, q url.Values, lang string) (pilot.Assumptions, string) {
	a := t.Benefits.WithDefaults()
	var errs []string
	for _, p := range []struct {
		name string
		to   *float64
	}{{"minutes_per_visit", &a.MinutesPerVisit}, {"hourly_cost", &a.HourlyCost}, {"callout_cost", &a.CalloutCost}, {"guarantee_min", &a.GuaranteeMin}} {
		s := q.Get(p.name)
		if s == "" {
			continue
		}
		x, err := pilot.ParseAssumption(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf(benefitTexts[lang]["bad"], p.name, err))
			continue
		}
		*p.to = x
	}
	return a.WithDefaults(), strings.Join(errs, " ")
}

func benefitRows(rep *pilot.Report, t *pilot.Trial, a pilot.Assumptions, lang string, f numFmt) []benefitRow {
	tx := benefitTexts[lang]
	var out []benefitRow
	for _, b := range pilot.Benefits(rep, a) {
		row := benefitRow{Arm: b.Arm, Name: armLabel(t, b.Arm)}
		if b.Baseline != "" {
			row.Baseline = armLabel(t, b.Baseline)
		}
		line := func(key, cat string, v float64, iv pilot.Interval, unit string, dec int, scale bool) {
			if math.IsNaN(v) {
				return
			}
			l := benefitLine{Key: key, Category: tx[cat], Label: tx[key], v: v, lo: iv.Lo, hi: iv.Hi, unit: unit, dec: dec, year: math.NaN()}
			w := func(x float64) string {
				s := f.Num(x, dec)
				if unit != "" {
					s += "\u00a0" + unit
				}
				return s
			}
			if unit == "%" {
				w = func(x float64) string { return f.PctN(x, dec) }
			}
			l.Value = w(v)
			if !math.IsNaN(iv.Lo) && !math.IsNaN(iv.Hi) {
				l.CI = w(iv.Lo) + " – " + w(iv.Hi)
			}
			if scale && b.PerYear > 0 {
				l.year = v * b.PerYear
				l.PerYear = w(l.year)
			}
			row.Lines = append(row.Lines, l)
		}
		if b.Baseline != "" {
			line("visits", "time", b.VisitsReplaced, b.VisitsReplacedCI, tx["st"], 0, true)
			line("hours", "time", b.HoursReleased, b.HoursReleasedCI, tx["h"], 0, true)
			line("callouts", "cost", b.CalloutsAvoided, b.CalloutsAvoidedCI, tx["st"], 0, true)
			if a.HourlyCost > 0 || a.CalloutCost > 0 {
				line("costAvoided", "cost", b.CostAvoided, b.CostAvoidedCI, tx["kr"], 0, true)
			}
		}
		line("kept", "quality", b.GuaranteeShare, b.GuaranteeCI, "%", 1, false)
		out = append(out, row)
	}
	return out
}

// benefitInput is what the benefit page and its CSV both start from: the
// trial, its report, and the assumptions as the request edits them.
type benefitInput struct {
	m    *pilot.Model
	t    *pilot.Trial
	rep  pilot.Report
	a    pilot.Assumptions
	bad  string // an assumption the request got wrong, named
	lang string
}

// benefitRequest reads the trial and builds its report, answering the
// request itself (404, 500) when it cannot; lang is def unless the query
// asks for the other language.
func (h *handlers) benefitRequest(w http.ResponseWriter, r *http.Request, def string) (benefitInput, bool) {
	in := benefitInput{lang: def}
	if l := r.URL.Query().Get("lang"); l == "sv" || l == "en" {
		in.lang = l
	}
	var ok bool
	in.m, in.t, ok = h.trial(w, r, chi.URLParam(r, "id"))
	if !ok || in.t == nil {
		return in, false
	}
	var err error
	if in.rep, err = h.build(r.Context(), in.m, in.t); err != nil {
		h.fail(w, err)
		return in, false
	}
	in.a, in.bad = assumptions(in.t, r.URL.Query(), in.lang)
	return in, true
}

func (h *handlers) benefits(w http.ResponseWriter, r *http.Request) {
	in, ok := h.benefitRequest(w, r, "sv")
	if !ok {
		return
	}
	m, t, rep, a, bad, lang := in.m, in.t, in.rep, in.a, in.bad, in.lang
	f := fmtFor(lang)
	q := url.Values{"lang": {lang}}
	for k, v := range map[string]float64{"minutes_per_visit": a.MinutesPerVisit, "hourly_cost": a.HourlyCost, "callout_cost": a.CalloutCost, "guarantee_min": a.GuaranteeMin} {
		q.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
	}
	v := map[string]any{
		"Lang": lang, "B": benefitTexts[lang], "Ev": evTexts[lang], "Trial": t, "F": f, "A": a, "Err": bad, "Query": q.Encode(),
		"From": rep.From.In(m.Loc).Format(time.DateOnly), "To": rep.To.In(m.Loc).AddDate(0, 0, -1).Format(time.DateOnly),
		"Rows": benefitRows(&rep, t, a, lang, f), "Generated": h.o.Now().In(m.Loc).Format("2006-01-02 15:04 MST"), "Preliminary": "",
	}
	if rep.Preliminary {
		v["Preliminary"] = fmt.Sprintf(evTexts[lang]["preliminary"], rep.End.In(m.Loc).AddDate(0, 0, -1).Format(time.DateOnly))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := benefitsPage.Execute(w, v); err != nil {
		h.o.Logger.Error("pilot: render benefits", "err", err)
	}
}

// benefitsCSV writes the benefit calculation with its assumptions; in
// Swedish (lang=sv) for Swedish Excel like report.csv.
func (h *handlers) benefitsCSV(w http.ResponseWriter, r *http.Request) {
	in, ok := h.benefitRequest(w, r, "en")
	if !ok {
		return
	}
	t, rep, a, bad, lang := in.t, in.rep, in.a, in.bad, in.lang
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": bad})
		return
	}
	f := numFmt{sv: lang == "sv", plain: true}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", t.ID+"-"+benefitTexts[lang]["title"]+".csv"))
	cw := csv.NewWriter(w)
	head := []string{"arm", "category", "measure", "value", "unit", "ci_low_95", "ci_high_95", "per_year"}
	num := func(x float64, dec int) string {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return ""
		}
		if lang == "sv" {
			return f.Num(x, dec)
		}
		return strconv.FormatFloat(roundTo(x, dec), 'f', -1, 64)
	}
	if lang == "sv" {
		_, _ = w.Write([]byte("\ufeff"))
		cw.Comma, cw.UseCRLF = ';', true
		head = []string{"Grupp", "Nyttokategori", "Mått", "Värde", "Enhet", "Nedre 95 %", "Övre 95 %", "Per år (uppräknat)"}
	}
	_ = cw.Write(head)
	tx := benefitTexts[lang]
	for _, as := range []struct {
		key  string
		v    float64
		unit string
	}{{"minutes", a.MinutesPerVisit, "min"}, {"hourly", a.HourlyCost, tx["kr"]}, {"callout", a.CalloutCost, tx["kr"]}, {"guarantee", a.GuaranteeMin, "min"}} {
		_ = cw.Write([]string{"", tx["assumptions"], tx[as.key], num(as.v, 2), as.unit, "", "", ""})
	}
	for _, row := range benefitRows(&rep, t, a, lang, fmtFor(lang)) {
		for _, l := range row.Lines {
			scale := 1.0
			if l.unit == "%" {
				scale = 100
			}
			_ = cw.Write([]string{row.Name, l.Category, l.Label, num(scale*l.v, l.dec), l.unit, num(scale*l.lo, l.dec), num(scale*l.hi, l.dec), num(l.year, l.dec)})
		}
	}
	cw.Flush()
}
