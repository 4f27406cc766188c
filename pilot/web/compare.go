package web

import (
	"embed"
	"html/template"
	"net/http"
	"strings"

	"github.com/vaka-care/vaka/pilot"
)

//go:embed templates/compare.html
var compareFS embed.FS

var comparePage = template.Must(template.New("compare.html").Funcs(funcs).ParseFS(compareFS, "templates/compare.html"))

var compareTexts = map[string]map[string]string{
	"sv": {"title": "Enheter sida vid sida", "back": "Tillbaka till pilotresultat", "criterion": "Kriterium", "headline": "Samlad bedömning",
		"intro": "Samma försöksupplägg på flera enheter eller kommuner, var och en med sin egen jämförelsegrupp: kriterierna med samma id i samma rad.",
		"note":  "Varje cell är bedömd för sig med sitt eget 95 %-intervall (se respektive försök); enheterna slås inte ihop."},
	"en": {"title": "Units side by side", "back": "Back to pilot results", "criterion": "Criterion", "headline": "Overall verdict",
		"intro": "The same trial design on several units or municipalities, each with its own baseline arm: criteria with the same id on the same row.",
		"note":  "Each cell is judged on its own with its own 95% interval (see each trial); units are not pooled."},
}

type compareCol struct {
	ID, Title, Units string
	Head             headView
}

type compareCell struct {
	Has                    bool
	Value, Interval, Label string
	Verdict                pilot.Verdict
}

type compareRow struct {
	ID, Text string
	Cells    []compareCell
}

// compare shows every trial's criteria side by side, one column per trial
// (a unit or municipality running the same design).
func (h *handlers) compare(w http.ResponseWriter, r *http.Request) {
	lang := "sv"
	if r.URL.Query().Get("lang") == "en" {
		lang = "en"
	}
	m := h.o.Model()
	var cols []compareCol
	var rows []compareRow
	index := map[string]int{}
	for i := range m.Config.Trials {
		t := &m.Config.Trials[i]
		rep, err := h.build(r.Context(), m, t)
		if err != nil {
			h.fail(w, err)
			return
		}
		cs := criteria(&rep, t, lang)
		var units []string
		for _, a := range t.Arms {
			units = append(units, a.Units...)
		}
		title := t.Title
		if title == "" {
			title = t.ID
		}
		cols = append(cols, compareCol{ID: t.ID, Title: title, Units: strings.Join(units, ", "), Head: headline(&rep, cs, lang, m.Loc)})
		for _, c := range cs {
			k, ok := index[c.R.Criterion.ID]
			if !ok {
				k = len(rows)
				index[c.R.Criterion.ID] = k
				rows = append(rows, compareRow{ID: c.R.Criterion.ID, Text: c.Text})
			}
			for len(rows[k].Cells) < i {
				rows[k].Cells = append(rows[k].Cells, compareCell{})
			}
			rows[k].Cells = append(rows[k].Cells, compareCell{Has: true, Value: c.Value, Interval: c.Interval,
				Verdict: c.R.Verdict, Label: texts[lang][string(c.R.Verdict)]})
		}
	}
	for k := range rows {
		for len(rows[k].Cells) < len(cols) {
			rows[k].Cells = append(rows[k].Cells, compareCell{})
		}
	}
	v := map[string]any{"Lang": lang, "C": compareTexts[lang], "Ev": evTexts[lang], "Cols": cols, "Rows": rows,
		"Generated": h.o.Now().In(m.Loc).Format("2006-01-02 15:04 MST")}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := comparePage.Execute(w, v); err != nil {
		h.o.Logger.Error("pilot: render compare", "err", err)
	}
}
