package web

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
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
	SVG   svgChart
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
		"caught": "Verkliga behov: vad fångade dem?", "onlySensor": "bara av en sensor", "onlyButton": "bara av larmknappen", "both": "av båda",
		"yPerNight": "larm per boendenatt", "yAlarms": "antal larm", "partialMark": "* ofullständig vecka (%d av 7 dagar)",
		"armVsArm": "Grupp mot grupp", "measure": "Mått", "alarms": "Larm", "residentNights": "Boendenätter",
		"perResNight": "Larm per boendenatt", "p50": "Kvittens p50", "p90": "Kvittens p90", "p99": "Kvittens p99",
		"within60": "Kvitterade inom 60 s", "within180": "Kvitterade inom 180 s", "presenceP90": "Hos den boende p90",
		"phoneP90": "Till telefon p90", "unaccepted": "Ej kvitterade före eskalering", "visits": "Fysiska nattbesök per boendenatt",
		"real_need": "verkligt behov", "false": "oavsiktligt larm", "technical": "tekniskt", "information": "information", "test": "test",
		"button": "larmknapp", "door": "dörr", "bed": "säng", "motion": "rörelse", "fall": "fall", "gps": "GPS", "other": "övrigt",
		"week": "v.", "consent": "Samtycken registrerade",
		"gap":     "Tid till telefon = första kvitto från en telefon: push (tjänstearbetaren bekräftar notisen) eller app (larmkortet visas i den inloggade appen). Drifttid = andel enhetstid utan avbrott; tid till upptäckt = från enhetens sista livstecken till larmet om att den är tyst.",
		"devices": "Enheter och deltagare", "uptime": "Enheternas drifttid", "outages": "Avbrott upptäckta",
		"detectP50": "Tid till upptäckt av tyst enhet p50", "detectP90": "Tid till upptäckt av tyst enhet p90",
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
		"caught": "Real needs: what caught them?", "onlySensor": "only by a sensor", "onlyButton": "only by the button", "both": "by both",
		"yPerNight": "alarms per resident-night", "yAlarms": "alarms", "partialMark": "* partial week (%d of 7 days)",
		"armVsArm": "Arm against arm", "measure": "Measure", "alarms": "Alarms", "residentNights": "Resident-nights",
		"perResNight": "Alarms per resident-night", "p50": "Accept p50", "p90": "Accept p90", "p99": "Accept p99",
		"within60": "Accepted within 60 s", "within180": "Accepted within 180 s", "presenceP90": "At resident p90",
		"phoneP90": "To phone p90", "unaccepted": "Unaccepted until escalation", "visits": "Physical night visits per resident-night",
		"real_need": "real need", "false": "unintended alarm", "technical": "technical", "information": "information", "test": "test",
		"button": "call button", "door": "door", "bed": "bed", "motion": "motion", "fall": "fall", "gps": "GPS", "other": "other",
		"week": "wk", "consent": "Consent records",
		"gap":     "Time to phone = first receipt from a phone: push (the service worker confirms the notification) or app (the alarm card shown in the logged-in app). Uptime = share of device-time without an outage; time to detect = from a device's last sign of life to the alarm that it is silent.",
		"devices": "Devices and participants", "uptime": "Device uptime", "outages": "Outages detected",
		"detectP50": "Time to detect a silent device p50", "detectP90": "Time to detect a silent device p90",
		"continuation": "Continuing (share of participants)", "replaced": "Physical night visits replaced (against the baseline)",
		"viaApp": "First receipt via app", "viaPush": "First receipt via push",
		"tillsyn": "Digital night supervision (look-ins)", "lookins": "Digital look-ins", "lookinsOK": "All right",
		"visitsPlanned": "Planned night visits the look-ins stand for", "visitsReplaced": "Night visits replaced (look-in all right)",
		"visitsMade": "Physical visits made (recorded)", "notOK": "Not all right → alarm / open alarm / visit",
		"cannotTell": "Cannot tell (share)", "byCause": "Cannot tell by cause",
		"tillsynNote": "Counted from the supervision records: a look-in that was all right replaces its planned visit; one that cannot tell always asks for a visit. Causes: silent sensor, no consent, sensor not fitted/never heard, unsupervised, no state, hub down.",
	},
}

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
	"add":    func(a, b float64) float64 { return a + b },
	"half":   func(n int) int { return n / 2 },
}

// svgChart is a chart as data; templates/chart.html draws it, so every
// label and value goes through html/template's escaping (no SVG is built
// as a string).
type svgChart struct {
	W, H   int
	Label  string // aria-label
	YTitle string // the y axis' title, with its unit
	// Grid lines run from GridLeft to GridRight at each Grid label's Y.
	GridLeft, GridRight float64
	Grid                []svgText
	Rects               []svgRect
	Texts               []svgText
	Lines               []svgLine
	Legend              []legendItem
}

type svgRect struct {
	Arm, Key, Week string
	Value          string // data-value: a plain number a test can parse
	X, Y, W, H     float64
	Fill           string
	Pattern        string // id of the pattern laid over the fill ("" none)
	Title          string
}

type svgText struct {
	X, Y          float64
	Class, Anchor string
	Text          string
}

type svgLine struct {
	X1, Y1, X2, Y2 float64
	Class          string
}

type legendItem struct {
	X, Y    float64
	Fill    string
	Pattern string
	Label   string
}

var palette = map[string]string{
	"button": "#1f6feb", "door": "#d97706", "bed": "#7c3aed", "motion": "#059669", "fall": "#dc2626", "gps": "#0891b2",
	"technical": "#6b7280", "other": "#9ca3af",
	"real_need": "#15803d", "false": "#dc2626", "information": "#2563eb", "test": "#a3a3a3",
}

// Arms differ in colour and in pattern (solid, hatched, dotted, crossed),
// so a grey print or a colour-blind reader still tells them apart.
var armColours = []string{"#1f6feb", "#d97706", "#7c3aed", "#059669"}
var armPatterns = []string{"", "pat-hatch", "pat-dots", "pat-cross"}

func armColour(j int) string  { return armColours[j%len(armColours)] }
func armPattern(j int) string { return armPatterns[j%len(armPatterns)] }

func armLabel(t *pilot.Trial, id string) string {
	if a, ok := t.Arm(id); ok && a.Name != "" {
		return a.Name
	}
	return id
}

// armShort is a bar's group label under it: the arm's initial, or more
// letters where two arms share one.
func armShort(t *pilot.Trial) map[string]string {
	out := map[string]string{}
	for n := 1; n <= 4; n++ {
		seen := map[string]int{}
		for _, a := range t.Arms {
			r := []rune(armLabel(t, a.ID))
			out[a.ID] = string(r[:min(n, len(r))])
			seen[out[a.ID]]++
		}
		unique := true
		for _, c := range seen {
			unique = unique && c == 1
		}
		if unique {
			break
		}
	}
	return out
}

func val(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }

// charts draws the dashboard's charts. Every mark carries its value in
// data-value, so a browser test (and a screen reader) can read it.
func charts(rep *pilot.Report, t *pilot.Trial, tx map[string]string, loc *time.Location, f numFmt) []chart {
	var out []chart
	short := armShort(t)
	armKey := func(c *svgChart, x, y float64) {
		for j, a := range t.Arms {
			l := short[a.ID] + " = " + armLabel(t, a.ID)
			c.Legend = append(c.Legend, legendItem{X: x, Y: y, Fill: "#9ca3af", Pattern: armPattern(j), Label: l})
			x += 34 + 7*float64(len([]rune(l)))
		}
	}
	// 1. Alarms per resident-night by week, stacked by source, one bar
	// per arm in each week, labelled with the arm's initial.
	{
		const W, H, top, left, bottom = 720, 290, 20, 56, 70
		c := svgChart{W: W, H: H, Label: tx["perNight"], YTitle: tx["yPerNight"]}
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
		c.Grid, c.GridLeft, c.GridRight = axis(W, H, top, left, bottom, maxY, f), left, W-10
		for i, wk := range rep.Weeks {
			x0 := float64(left) + float64(i)*groupW + 3
			day := wk.From.In(loc).Format(time.DateOnly)
			for j, a := range t.Arms {
				m := wk.Arms[a.ID]
				y := float64(H - bottom)
				bx := x0 + float64(j)*barW
				for _, s := range pilot.Sources {
					v := m.PerResidentNight[s]
					if v <= 0 {
						continue
					}
					h := v / maxY * plotH
					y -= h
					c.Rects = append(c.Rects, svgRect{Arm: a.ID, Key: string(s), Week: day, Value: val(v), X: bx, Y: y, W: barW - 1, H: h,
						Fill: palette[string(s)], Pattern: armPattern(j),
						Title: armLabel(t, a.ID) + " · " + tx[string(s)] + " · " + day + ": " + f.Num(v, 2)})
					if h >= 13 && barW >= 10 {
						// The source's letter in its segment: not colour alone.
						c.Texts = append(c.Texts, svgText{X: bx + (barW-1)/2, Y: y + h/2 + 4, Class: "inbar seg", Anchor: "middle", Text: initial(tx[string(s)])})
					}
				}
				c.Texts = append(c.Texts, svgText{X: bx + (barW-1)/2, Y: float64(H-bottom) + 12, Class: "tick", Anchor: "middle", Text: short[a.ID]})
			}
			_, wn := wk.From.In(loc).ISOWeek()
			label := tx["week"] + " " + strconv.Itoa(wn)
			if wk.Partial {
				label += "*"
			}
			c.Texts = append(c.Texts, svgText{X: x0 + groupW/2 - 3, Y: float64(H-bottom) + 26, Class: "tick", Anchor: "middle", Text: label})
		}
		c.Legend = legend(left, H-24, sourceKeys(rep), tx)
		for i := range c.Legend {
			c.Legend[i].Label = initial(c.Legend[i].Label) + " = " + c.Legend[i].Label
			c.Legend[i].X += float64(i) * 24
		}
		armKey(&c, left, H-6)
		note := armOrder(t)
		if n := len(rep.Weeks); n > 0 && rep.Weeks[n-1].Partial {
			note += " · " + fmt.Sprintf(tx["partialMark"], rep.Weeks[n-1].Days)
		}
		out = append(out, chart{ID: "per-night", Title: tx["perNight"], Note: note, SVG: c})
	}
	// 2. Outcome shares per arm: one stacked horizontal bar per arm.
	{
		const W, rowH, left = 720, 34, 160
		H := 30 + rowH*len(t.Arms) + 20
		c := svgChart{W: W, H: H, Label: tx["outcomes"]}
		for i, a := range t.Arms {
			m := rep.Arms[a.ID]
			y := float64(10 + i*rowH)
			c.Texts = append(c.Texts, svgText{X: left - 8, Y: y + 18, Class: "label", Anchor: "end", Text: armLabel(t, a.ID)})
			x := float64(left)
			for _, o := range []string{"real_need", "false", "technical", "information", "test"} {
				v := m.OutcomeShare[o]
				if v <= 0 {
					continue
				}
				w := v * float64(W-left-20)
				c.Rects = append(c.Rects, svgRect{Arm: a.ID, Key: o, Value: val(v), X: x, Y: y, W: w, H: 24, Fill: palette[o],
					Title: armLabel(t, a.ID) + " · " + tx[o] + ": " + f.Pct(v)})
				switch {
				case w > 150: // wide enough to name the outcome, not colour alone
					c.Texts = append(c.Texts, svgText{X: x + w/2, Y: y + 16, Class: "inbar", Anchor: "middle", Text: tx[o] + " " + f.Pct(v)})
				case w > 40:
					c.Texts = append(c.Texts, svgText{X: x + w/2, Y: y + 16, Class: "inbar", Anchor: "middle", Text: f.Pct(v)})
				}
				x += w
			}
		}
		c.Legend = legend(left, H-8, []string{"real_need", "false", "technical", "information", "test"}, tx)
		out = append(out, chart{ID: "outcomes", Title: tx["outcomes"], SVG: c})
	}
	// 3. Time to accept histogram per arm, marks at 60 s and 180 s.
	{
		const W, H, top, left, bottom = 720, 260, 20, 56, 50
		c := svgChart{W: W, H: H, Label: tx["accept"], YTitle: tx["yAlarms"]}
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
		c.Grid, c.GridLeft, c.GridRight = axis(W, H, top, left, bottom, maxY, f), left, W-10
		for i, l := range labels {
			x0 := float64(left) + float64(i)*groupW + 4
			for j, a := range t.Arms {
				hist := rep.Arms[a.ID].AcceptHistogram
				if i >= len(hist) {
					continue
				}
				v := float64(hist[i])
				h := v / maxY * plotH
				c.Rects = append(c.Rects, svgRect{Arm: a.ID, Key: l, Value: val(v), X: x0 + float64(j)*barW, Y: float64(H-bottom) - h, W: barW - 1, H: h,
					Fill: armColour(j), Pattern: armPattern(j), Title: armLabel(t, a.ID) + " · " + l + " s: " + f.Num(v, 0)})
			}
			c.Texts = append(c.Texts, svgText{X: x0 + groupW/2 - 4, Y: float64(H-bottom) + 14, Class: "tick", Anchor: "middle", Text: l + " s"})
		}
		for _, mark := range []struct {
			edge int
			text string
		}{{3, "60 s"}, {5, "180 s"}} {
			x := float64(left) + float64(mark.edge)*groupW
			c.Lines = append(c.Lines, svgLine{X1: x, X2: x, Y1: top - 6, Y2: float64(H - bottom), Class: "target"})
			c.Texts = append(c.Texts, svgText{X: x + 3, Y: top + 4, Class: "target-label", Text: mark.text})
		}
		for j, a := range t.Arms {
			c.Legend = append(c.Legend, legendItem{X: float64(left + j*200), Y: H - 8, Fill: armColour(j), Pattern: armPattern(j), Label: armLabel(t, a.ID)})
		}
		out = append(out, chart{ID: "accept", Title: tx["accept"], SVG: c})
	}
	// 4. What caught real needs: per arm, only a sensor, only the button,
	// both; the arm as a heading row, so no label repeats an arm's name.
	{
		const W, rowH, left = 720, 28, 250
		kinds := []struct{ key, colour string }{{"onlySensor", "#7c3aed"}, {"onlyButton", "#1f6feb"}, {"both", "#059669"}}
		H := 20 + (rowH*len(kinds)+24)*len(t.Arms) + 10
		c := svgChart{W: W, H: H, Label: tx["caught"]}
		maxX := 0.0
		for _, a := range t.Arms {
			m := rep.Arms[a.ID]
			maxX = max(maxX, float64(m.OnlySensor), float64(m.OnlyButton), float64(m.Both))
		}
		maxX = niceMax(maxX)
		y := 10.0
		for j, a := range t.Arms {
			m := rep.Arms[a.ID]
			c.Texts = append(c.Texts, svgText{X: 8, Y: y + 14, Class: "label group", Text: armLabel(t, a.ID)})
			y += 22
			vals := []int{m.OnlySensor, m.OnlyButton, m.Both}
			for k, kd := range kinds {
				w := float64(vals[k]) / maxX * float64(W-left-60)
				c.Texts = append(c.Texts, svgText{X: left - 8, Y: y + 16, Class: "label", Anchor: "end", Text: tx[kd.key]})
				c.Rects = append(c.Rects, svgRect{Arm: a.ID, Key: kd.key, Value: val(float64(vals[k])), X: left, Y: y, W: w, H: 22, Fill: kd.colour,
					Pattern: armPattern(j), Title: armLabel(t, a.ID) + " · " + tx[kd.key] + ": " + strconv.Itoa(vals[k])})
				c.Texts = append(c.Texts, svgText{X: float64(left) + w + 6, Y: y + 16, Class: "label", Text: f.Num(float64(vals[k]), 0)})
				y += rowH
			}
			y += 2
		}
		out = append(out, chart{ID: "caught", Title: tx["caught"], SVG: c})
	}
	return out
}

func axis(W, H, top, left, bottom int, maxY float64, f numFmt) []svgText {
	var g []svgText
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		y := float64(H-bottom) - float64(H-top-bottom)*float64(i)/4
		dec := 0
		if v != math.Trunc(v) {
			dec = decimals(roundTo(v, 2))
		}
		g = append(g, svgText{X: float64(left - 4), Y: y, Text: f.Num(v, dec)})
	}
	return g
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

func legend(x, y int, keys []string, tx map[string]string) []legendItem {
	var out []legendItem
	fx := float64(x)
	for _, k := range keys {
		out = append(out, legendItem{X: fx, Y: float64(y), Fill: palette[k], Label: tx[k]})
		fx += 24 + 7*float64(len([]rune(tx[k])))
	}
	return out
}

func armOrder(t *pilot.Trial) string {
	var names []string
	for _, a := range t.Arms {
		names = append(names, armLabel(t, a.ID))
	}
	return strings.Join(names, " | ")
}

// initial is a label's first letter, marking a source in its bar segment.
func initial(s string) string {
	for _, r := range s {
		return string(r)
	}
	return ""
}
