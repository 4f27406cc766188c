package web

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/vaka-care/vaka/pilot"
)

type view struct {
	Lang   string
	T      map[string]string
	Print  bool
	Model  *pilot.Model
	Trial  *pilot.Trial
	Report *pilot.Report
	Charts []chart
	User   string
	// F writes numbers the page's way (lang); Crit and Head are the
	// criteria and the trial's verdict in their own terms.
	F         numFmt
	Ev        map[string]string
	Crit      []critView
	Head      headView
	Generated string
}

type chart struct {
	ID    string
	Title string
	Note  string
	SVG   template.HTML
}

var texts = map[string]map[string]string{
	"sv": {
		"title": "Pilotresultat", "need": "Behov", "hypothesis": "Hypotes", "period": "Period", "arms": "Grupper",
		"criteria": "Framgångskriterier (överenskomna före start)", "criterion": "Kriterium", "value": "Utfall",
		"baseline": "Jämförelse", "verdict": "Bedömning", "met": "Uppfyllt", "not_met": "Ej uppfyllt",
		"not_enough_data": "För lite data", "samples": "underlag", "csv": "Exportera CSV", "print": "Utskriftsvänlig rapport",
		"lang": "English", "langhref": "en", "notrials": "Inga försök är konfigurerade (pilot.trials i hubbens konfiguration).",
		"perNight": "Larm per boendenatt, per vecka och källa", "outcomes": "Utfall per grupp (andel av kodade larm)",
		"accept": "Tid till kvittens (antal larm per intervall); streck vid 60 s och 180 s",
		"caught": "Verkliga behov: vad fångade dem?", "onlySensor": "bara sensor", "onlyButton": "bara larmknapp", "both": "båda",
		"armVsArm": "Grupp mot grupp", "measure": "Mått", "alarms": "Larm", "residentNights": "Boendenätter",
		"perResNight": "Larm per boendenatt", "p50": "Kvittens p50 (s)", "p90": "Kvittens p90 (s)", "p99": "Kvittens p99 (s)",
		"within60": "Kvitterade inom 60 s", "within180": "Kvitterade inom 180 s", "presenceP90": "Hos den boende p90 (s)",
		"phoneP90": "Till telefon p90 (s)", "unaccepted": "Ej kvitterade före eskalering", "visits": "Fysiska nattbesök per boendenatt",
		"real_need": "verkligt behov", "false": "oavsiktligt larm", "technical": "tekniskt", "information": "information", "test": "test",
		"button": "larmknapp", "door": "dörr", "bed": "säng", "motion": "rörelse", "fall": "fall", "gps": "GPS", "other": "övrigt",
		"week": "v.", "consent": "Samtycken registrerade",
		"gap":     "Tid till telefon = första kvitto från en telefon: push (tjänstearbetaren bekräftar notisen) eller app (larmkortet visas i den inloggade appen). Drifttid = andel enhetstid utan avbrott; tid till upptäckt = från enhetens sista livstecken till larmet om att den är tyst.",
		"devices": "Enheter och deltagare", "uptime": "Enheternas drifttid", "outages": "Avbrott upptäckta",
		"detectP50": "Tid till upptäckt av tyst enhet p50 (s)", "detectP90": "Tid till upptäckt av tyst enhet p90 (s)",
		"continuation": "Fortsätter (andel av deltagare)", "replaced": "Fysiska nattbesök ersatta (mot jämförelsegruppen)",
		"viaApp": "Första kvitto via app", "viaPush": "Första kvitto via push",
		"tillsyn": "Digital tillsyn (nattliga tittar)", "lookins": "Digitala tittar", "lookinsOK": "Allt väl",
		"visitsPlanned": "Planerade nattbesök som tittarna står för", "visitsReplaced": "Nattbesök ersatta (titt: allt väl)",
		"visitsMade": "Fysiska besök gjorda (registrerade)", "notOK": "Inte allt väl → larm / öppet larm / besök",
		"cannotTell": "Kan inte avgöra (andel)", "byCause": "Kan inte avgöra per orsak",
		"tillsynNote": "Räknat ur tillsynsposterna: en titt som var allt väl ersätter det planerade besöket; en titt som inte kan avgöra ber alltid om ett besök. Orsaker: tyst givare, inget samtycke, givare ej monterad/aldrig hörd, ej övervakad, inget läge, larmservern nere.",
	},
	"en": {
		"title": "Pilot results", "need": "Need", "hypothesis": "Hypothesis", "period": "Period", "arms": "Arms",
		"criteria": "Success criteria (agreed before the start)", "criterion": "Criterion", "value": "Result",
		"baseline": "Baseline", "verdict": "Verdict", "met": "Met", "not_met": "Not met",
		"not_enough_data": "Not enough data", "samples": "samples", "csv": "Export CSV", "print": "Printable report",
		"lang": "Svenska", "langhref": "sv", "notrials": "No trials are configured (pilot.trials in the hub config).",
		"perNight": "Alarms per resident-night, by week and source", "outcomes": "Outcomes per arm (share of coded alarms)",
		"accept": "Time to accept (alarms per interval); marks at 60 s and 180 s",
		"caught": "Real needs: what caught them?", "onlySensor": "only a sensor", "onlyButton": "only the button", "both": "both",
		"armVsArm": "Arm against arm", "measure": "Measure", "alarms": "Alarms", "residentNights": "Resident-nights",
		"perResNight": "Alarms per resident-night", "p50": "Accept p50 (s)", "p90": "Accept p90 (s)", "p99": "Accept p99 (s)",
		"within60": "Accepted within 60 s", "within180": "Accepted within 180 s", "presenceP90": "At resident p90 (s)",
		"phoneP90": "To phone p90 (s)", "unaccepted": "Unaccepted until escalation", "visits": "Physical night visits per resident-night",
		"real_need": "real need", "false": "unintended alarm", "technical": "technical", "information": "information", "test": "test",
		"button": "call button", "door": "door", "bed": "bed", "motion": "motion", "fall": "fall", "gps": "GPS", "other": "other",
		"week": "wk", "consent": "Consent records",
		"gap":     "Time to phone = first receipt from a phone: push (the service worker confirms the notification) or app (the alarm card shown in the logged-in app). Uptime = share of device-time without an outage; time to detect = from a device's last sign of life to the alarm that it is silent.",
		"devices": "Devices and participants", "uptime": "Device uptime", "outages": "Outages detected",
		"detectP50": "Time to detect a silent device p50 (s)", "detectP90": "Time to detect a silent device p90 (s)",
		"continuation": "Continuing (share of participants)", "replaced": "Physical night visits replaced (against the baseline)",
		"viaApp": "First receipt via app", "viaPush": "First receipt via push",
		"tillsyn": "Digital night supervision (look-ins)", "lookins": "Digital look-ins", "lookinsOK": "All right",
		"visitsPlanned": "Planned night visits the look-ins stand for", "visitsReplaced": "Night visits replaced (look-in all right)",
		"visitsMade": "Physical visits made (recorded)", "notOK": "Not all right → alarm / open alarm / visit",
		"cannotTell": "Cannot tell (share)", "byCause": "Cannot tell by cause",
		"tillsynNote": "Counted from the supervision records: a look-in that was all right replaces its planned visit; one that cannot tell always asks for a visit. Causes: silent sensor, no consent, sensor not fitted/never heard, unsupervised, no state, hub down.",
	},
}

var palette = map[string]string{
	"button": "#1f6feb", "door": "#d97706", "bed": "#7c3aed", "motion": "#059669", "fall": "#dc2626", "gps": "#0891b2",
	"technical": "#6b7280", "other": "#9ca3af",
	"real_need": "#15803d", "false": "#dc2626", "information": "#2563eb", "test": "#a3a3a3",
}

var armColours = []string{"#1f6feb", "#d97706", "#7c3aed", "#059669"}

var funcs = template.FuncMap{
	"day": func(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.DateOnly) },
	"lastday": func(t time.Time, loc *time.Location) string {
		return t.In(loc).AddDate(0, 0, -1).Format(time.DateOnly)
	},
	"armName": func(t *pilot.Trial, id string) string {
		if a, ok := t.Arm(id); ok && a.Name != "" {
			return a.Name
		}
		return id
	},
	"metric": func(m pilot.Measures, name string) float64 { v, _ := m.Metric(name); return v },
	"intf":   func(n int) float64 { return float64(n) },
}

func esc(s string) string { return template.HTMLEscapeString(s) }

func armLabel(t *pilot.Trial, id string) string {
	if a, ok := t.Arm(id); ok && a.Name != "" {
		return a.Name
	}
	return id
}

// charts draws the dashboard's SVG charts. Every mark carries its value in
// data-value, so a browser test (and a screen reader) can read it.
func charts(rep *pilot.Report, t *pilot.Trial, tx map[string]string, loc *time.Location) []chart {
	var out []chart
	// 1. Alarms per resident-night by week, stacked by source, one group per arm.
	{
		const W, H, top, left, bottom = 720, 260, 20, 40, 40
		var b strings.Builder
		maxY := 0.0
		for _, wk := range rep.Weeks {
			for _, a := range t.Arms {
				maxY = max(maxY, wk.Arms[a.ID].PerResidentNight[""])
			}
		}
		maxY = niceMax(maxY)
		plotH := float64(H - top - bottom)
		groupW := float64(W-left-10) / float64(max(1, len(rep.Weeks)))
		barW := (groupW - 6) / float64(max(1, len(t.Arms)))
		axis(&b, W, H, top, left, bottom, maxY, "")
		for i, wk := range rep.Weeks {
			x0 := float64(left) + float64(i)*groupW + 3
			for j, a := range t.Arms {
				m := wk.Arms[a.ID]
				y := float64(H - bottom)
				for _, s := range pilot.Sources {
					v := m.PerResidentNight[s]
					if v <= 0 {
						continue
					}
					h := v / maxY * plotH
					y -= h
					fmt.Fprintf(&b, `<rect class="bar" data-arm="%s" data-source="%s" data-week="%s" data-value="%.4f" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s · %s · %s: %.2f</title></rect>`,
						esc(a.ID), s, wk.From.In(loc).Format(time.DateOnly), v, x0+float64(j)*barW, y, barW-1, h, palette[string(s)],
						esc(armLabel(t, a.ID)), esc(tx[string(s)]), wk.From.In(loc).Format(time.DateOnly), v)
				}
			}
			_, wn := wk.From.In(loc).ISOWeek()
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s %d</text>`, x0+groupW/2-3, H-bottom+14, tx["week"], wn)
		}
		legend(&b, left, H-12, sourceKeys(rep), tx)
		out = append(out, chart{ID: "per-night", Title: tx["perNight"], Note: armOrder(t), SVG: svg(W, H, b.String())})
	}
	// 2. Outcome shares per arm: one stacked horizontal bar per arm.
	{
		const W, rowH, left = 720, 34, 160
		H := 30 + rowH*len(t.Arms) + 20
		var b strings.Builder
		for i, a := range t.Arms {
			m := rep.Arms[a.ID]
			y := 10 + i*rowH
			fmt.Fprintf(&b, `<text x="%d" y="%d" class="label" text-anchor="end">%s</text>`, left-8, y+18, esc(armLabel(t, a.ID)))
			x := float64(left)
			for _, o := range []string{"real_need", "false", "technical", "information", "test"} {
				v := m.OutcomeShare[o]
				if v <= 0 {
					continue
				}
				w := v * float64(W-left-20)
				fmt.Fprintf(&b, `<rect class="bar" data-arm="%s" data-outcome="%s" data-value="%.4f" x="%.1f" y="%d" width="%.1f" height="24" fill="%s"><title>%s: %.0f %%</title></rect>`,
					esc(a.ID), o, v, x, y, w, palette[o], esc(tx[o]), 100*v)
				if w > 34 {
					fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="inbar" text-anchor="middle">%.0f%%</text>`, x+w/2, y+16, 100*v)
				}
				x += w
			}
		}
		legend(&b, left, H-8, []string{"real_need", "false", "technical", "information", "test"}, tx)
		out = append(out, chart{ID: "outcomes", Title: tx["outcomes"], SVG: svg(W, H, b.String())})
	}
	// 3. Time to accept histogram per arm, marks at 60 s and 180 s.
	{
		const W, H, top, left, bottom = 720, 240, 20, 40, 46
		var b strings.Builder
		labels := []string{"<15", "15–30", "30–60", "60–120", "120–180", "180–300", ">300"}
		maxY := 0.0
		for _, a := range t.Arms {
			for _, n := range rep.Arms[a.ID].AcceptHistogram {
				maxY = max(maxY, float64(n))
			}
		}
		maxY = niceMax(maxY)
		plotH := float64(H - top - bottom)
		groupW := float64(W-left-10) / float64(len(labels))
		barW := (groupW - 8) / float64(max(1, len(t.Arms)))
		axis(&b, W, H, top, left, bottom, maxY, "")
		for i, l := range labels {
			x0 := float64(left) + float64(i)*groupW + 4
			for j, a := range t.Arms {
				hist := rep.Arms[a.ID].AcceptHistogram
				if i >= len(hist) {
					continue
				}
				v := float64(hist[i])
				h := v / maxY * plotH
				fmt.Fprintf(&b, `<rect class="bar" data-arm="%s" data-bucket="%s" data-value="%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s s: %d</title></rect>`,
					esc(a.ID), l, hist[i], x0+float64(j)*barW, float64(H-bottom)-h, barW-1, h, armColours[j%len(armColours)], esc(armLabel(t, a.ID)), l, hist[i])
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`, x0+groupW/2-4, H-bottom+14, l)
		}
		for _, mark := range []struct {
			edge int
			text string
		}{{3, "60 s"}, {5, "180 s"}} {
			x := float64(left) + float64(mark.edge)*groupW
			fmt.Fprintf(&b, `<line class="target" stroke="#b91c1c" stroke-width="1.5" stroke-dasharray="4 3" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text x="%.1f" y="%d" class="target-label">%s</text>`,
				x, x, top-6, H-bottom, x+3, top+4, mark.text)
		}
		armLegend(&b, left, H-8, t)
		out = append(out, chart{ID: "accept", Title: tx["accept"], SVG: svg(W, H, b.String())})
	}
	// 4. What caught real needs: only a sensor, only the button, both.
	{
		const W, rowH, left = 720, 30, 250
		kinds := []struct{ key, colour string }{{"onlySensor", "#7c3aed"}, {"onlyButton", "#1f6feb"}, {"both", "#059669"}}
		H := 20 + rowH*len(t.Arms)*len(kinds) + 10
		var b strings.Builder
		maxX := 0.0
		for _, a := range t.Arms {
			m := rep.Arms[a.ID]
			maxX = max(maxX, float64(m.OnlySensor), float64(m.OnlyButton), float64(m.Both))
		}
		maxX = niceMax(maxX)
		y := 10
		for _, a := range t.Arms {
			m := rep.Arms[a.ID]
			vals := []int{m.OnlySensor, m.OnlyButton, m.Both}
			for k, kd := range kinds {
				w := float64(vals[k]) / maxX * float64(W-left-60)
				fmt.Fprintf(&b, `<text x="%d" y="%d" class="label" text-anchor="end">%s · %s</text>`, left-8, y+16, esc(armLabel(t, a.ID)), esc(tx[kd.key]))
				fmt.Fprintf(&b, `<rect class="bar" data-arm="%s" data-caught="%s" data-value="%d" x="%d" y="%d" width="%.1f" height="22" fill="%s"/>`,
					esc(a.ID), kd.key, vals[k], left, y, w, kd.colour)
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="label">%d</text>`, float64(left)+w+6, y+16, vals[k])
				y += rowH
			}
		}
		out = append(out, chart{ID: "caught", Title: tx["caught"], SVG: svg(W, H, b.String())})
	}
	return out
}

func svg(w, h int, body string) template.HTML {
	return template.HTML(fmt.Sprintf(`<svg class="chart" viewBox="0 0 %d %d" role="img" preserveAspectRatio="xMinYMin meet">%s</svg>`, w, h, body))
}

func axis(b *strings.Builder, W, H, top, left, bottom int, maxY float64, unit string) {
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		y := float64(H-bottom) - float64(H-top-bottom)*float64(i)/4
		fmt.Fprintf(b, `<line class="grid" stroke="#e5e7eb" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text x="%d" y="%.1f" class="tick" text-anchor="end">%s%s</text>`,
			left, W-10, y, y, left-4, y+4, trim(v), unit)
	}
}

func trim(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func sourceKeys(rep *pilot.Report) []string {
	var out []string
	for _, s := range pilot.Sources {
		for _, m := range rep.Arms {
			if m.BySource[s] > 0 {
				out = append(out, string(s))
				break
			}
		}
	}
	return out
}

func legend(b *strings.Builder, x, y int, keys []string, tx map[string]string) {
	for _, k := range keys {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="tick">%s</text>`, x, y-9, palette[k], x+14, y, esc(tx[k]))
		x += 24 + 7*len([]rune(tx[k]))
	}
}

func armLegend(b *strings.Builder, x, y int, t *pilot.Trial) {
	for j, a := range t.Arms {
		l := armLabel(t, a.ID)
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="tick">%s</text>`, x, y-9, armColours[j%len(armColours)], x+14, y, esc(l))
		x += 24 + 7*len([]rune(l))
	}
}

func armOrder(t *pilot.Trial) string {
	var names []string
	for _, a := range t.Arms {
		names = append(names, armLabel(t, a.ID))
	}
	return strings.Join(names, " | ")
}
