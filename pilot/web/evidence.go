package web

import (
	"fmt"
	"math"
	"time"

	"github.com/vaka-care/vaka/pilot"
)

// critView is one criterion as the lead reads it: the value in the
// criterion's own terms, its 95 % interval, the threshold, the method
// and one sentence why the verdict is what it is.
type critView struct {
	R         pilot.Result
	Text      string
	Arm       string
	Baseline  string // the baseline arm's name, when compared
	Value     string // "−80 %", "97,5 %", "14,2 min"
	BaseValue string // the baseline arm's value, in the metric's terms
	Interval  string // "95 % KI −83 % till −77 %"
	Threshold string // "≤ −30 %"
	Method    string
	Why       string
}

// headView is the trial's verdict in one line.
type headView struct {
	Verdict     pilot.Verdict
	Label       string
	Sentence    string
	Preliminary string // "preliminärt till 2026-12-27", "" when the period is over
	Partial     string // which week is partial, "" if none
}

var evTexts = map[string]map[string]string{
	"sv": {
		"ci": "95 % KI", "to": "till", "noLower": "ingen nedre gräns", "noUpper": "ingen övre gräns",
		"pp": "procentenheter", "perNight": "per boendenatt",
		"wilson": "Wilsons intervall", "order_statistic": "exakt intervall för kvantil (ordningsstatistika, binomial)",
		"poisson_exact": "exakt Poisson-intervall (Garwood)", "rate_ratio_log": "kvot mellan frekvenser (log-metoden) mot jämförelsegruppen",
		"newcombe_hybrid": "skillnad i andel (Newcombes hybridintervall) mot jämförelsegruppen",
		"uptime_poisson":  "exakt Poisson-intervall för avbrotten × medellängd",
		"uptime_assumed":  "inga avbrott sedda: övre Poisson-gränsen för 0 avbrott × antagen avbrottslängd (assumed_outage_hours)",
		"whyMet":          "Uppfyllt: hela 95 %%-intervallet (%s) ligger på rätt sida om gränsen %s.",
		"whyNotMet":       "Ej uppfyllt: hela 95 %%-intervallet (%s) ligger på fel sida om gränsen %s.",
		"whyOpen":         "Kan inte avgöras än: intervallet (%s) omfattar gränsen %s.",
		"whyMin":          "Kan inte avgöras än: %d underlag, minst %d överenskomna.",
		"whyNone":         "Inga data ännu.",
		"need":            " Behöver omkring %s underlag (har %s) om utfallet står sig.",
		"needNever":       " Utfallet ligger så nära gränsen att inte ens 100 gånger mer data skulle avgöra.",
		"headMet":         "Uppfyllt: alla %d kriterier är uppfyllda med 95 %% säkerhet.",
		"headNotMet":      "Ej uppfyllt: %d av %d kriterier är tydligt inte uppfyllda, först ”%s”.",
		"headOpen":        "Går inte att avgöra än: %d av %d uppfyllda, %d kan inte avgöras ännu, först ”%s”.",
		"headNone":        "Går inte att avgöra: inga kriterier.",
		"preliminary":     "Preliminärt till %s",
		"partial":         "Vecka %d är ofullständig (%d av 7 dagar).",
		"verdictHead":     "Samlad bedömning",
		"headMetL":        "Uppfyllt", "headNotMetL": "Ej uppfyllt", "headOpenL": "Ej avgjort än",
		"interval": "Osäkerhet (95 % konfidensintervall)", "generated": "Rapporten skapad", "benefits": "Nyttokalkyl", "before": "%s före försöket, från %s", "compare": "Enheter sida vid sida",
	},
	"en": {
		"ci": "95% CI", "to": "to", "noLower": "no lower bound", "noUpper": "no upper bound",
		"pp": "percentage points", "perNight": "per resident-night",
		"wilson": "Wilson score interval", "order_statistic": "exact interval for a quantile (binomial order statistics)",
		"poisson_exact": "exact Poisson interval (Garwood)", "rate_ratio_log": "rate ratio against the baseline (log method)",
		"newcombe_hybrid": "difference of shares against the baseline (Newcombe hybrid score)",
		"uptime_poisson":  "exact Poisson interval on outages × mean length",
		"uptime_assumed":  "no outage seen: Poisson upper limit for 0 outages × assumed outage length (assumed_outage_hours)",
		"whyMet":          "Met: the whole 95%% interval (%s) lies on the right side of the threshold %s.",
		"whyNotMet":       "Not met: the whole 95%% interval (%s) lies on the wrong side of the threshold %s.",
		"whyOpen":         "Not yet decidable: the interval (%s) contains the threshold %s.",
		"whyMin":          "Not yet decidable: %d samples, at least %d agreed.",
		"whyNone":         "No data yet.",
		"need":            " Needs about %s samples (has %s) if the estimate holds.",
		"needNever":       " The estimate is so close to the threshold that not even 100 times the data would decide.",
		"headMet":         "Met: all %d criteria are met with 95%% confidence.",
		"headNotMet":      "Not met: %d of %d criteria are clearly not met, first “%s”.",
		"headOpen":        "Not yet decidable: %d of %d met, %d cannot be decided yet, first “%s”.",
		"headNone":        "Not decidable: no criteria.",
		"preliminary":     "Preliminary until %s",
		"partial":         "Week %d is partial (%d of 7 days).",
		"verdictHead":     "Overall verdict",
		"headMetL":        "Met", "headNotMetL": "Not met", "headOpenL": "Not yet decidable",
		"interval": "Uncertainty (95% confidence interval)", "generated": "Report generated", "benefits": "Benefit calculation", "before": "%s before the trial, from %s", "compare": "Units side by side",
	},
}

// criteria builds the criteria as the lead reads them.
func criteria(rep *pilot.Report, t *pilot.Trial, lang string) []critView {
	f, tx := fmtFor(lang), evTexts[lang]
	out := make([]critView, 0, len(rep.Results))
	for _, r := range rep.Results {
		c := r.Criterion
		v := critView{R: r, Text: c.Text, Arm: armLabel(t, c.Arm)}
		if v.Text == "" {
			v.Text = c.Metric
		}
		if c.Baseline == pilot.BaselineBefore {
			v.Baseline = fmt.Sprintf(tx["before"], v.Arm, t.BaselineStart)
		} else if c.Baseline != "" {
			v.Baseline = armLabel(t, c.Baseline)
		}
		// What the decisive interval is held against, and how it reads.
		iv, thr := r.Interval, c.Value
		write := func(x float64) string { return f.measure(r.Kind, x, c.Value) }
		switch r.Compared {
		case "ratio": // relative change, −80 %
			write = func(x float64) string { return f.Signed(x-1, 0) }
			v.Value = write(r.Change)
			iv, thr = *r.ChangeInterval, r.Threshold
			v.Method = tx[pilot.MethodRateRatio]
		case "difference":
			if r.Kind == pilot.KindShare {
				write = func(x float64) string { return signed(f.Num(100*x, 1), x) + "\u00a0" + tx["pp"] }
				v.Method = tx[pilot.MethodNewcombe]
			} else {
				write = func(x float64) string { return signed(f.measure(r.Kind, x, c.Value), x) }
				v.Method = tx[r.Interval.Method]
			}
			v.Value = write(r.Change)
			if r.ChangeInterval != nil {
				iv, thr = *r.ChangeInterval, r.Threshold
			}
		default:
			v.Value = write(r.Value)
			v.Method = tx[r.Interval.Method]
			if r.Kind == pilot.KindRate {
				v.Value += " " + tx["perNight"]
			}
		}
		if r.Baseline != nil {
			v.BaseValue = f.measure(r.Kind, *r.Baseline, c.Value)
			if r.Kind == pilot.KindRate {
				v.BaseValue += " " + tx["perNight"]
			}
		}
		op := "≤"
		if c.Op == pilot.OpAtLeast {
			op = "≥"
		}
		v.Threshold = op + " " + write(thr)
		span := ""
		if !math.IsNaN(iv.Lo) && !math.IsNaN(iv.Hi) {
			lo, hi := write(iv.Lo), write(iv.Hi)
			if math.IsInf(iv.Lo, -1) {
				lo = tx["noLower"]
			}
			if math.IsInf(iv.Hi, 1) {
				hi = tx["noUpper"]
			}
			span = lo + " " + tx["to"] + " " + hi
			v.Interval = tx["ci"] + " " + span
		}
		minN := c.MinSamples
		if minN == 0 {
			minN = pilot.DefaultMinSamples
		}
		switch {
		case r.Verdict == pilot.Met:
			v.Why = fmt.Sprintf(tx["whyMet"], span, v.Threshold)
		case r.Verdict == pilot.NotMet:
			v.Why = fmt.Sprintf(tx["whyNotMet"], span, v.Threshold)
		case math.IsNaN(r.Value) || r.Samples == 0:
			v.Why = tx["whyNone"]
		case r.Samples < minN:
			v.Why = fmt.Sprintf(tx["whyMin"], r.Samples, minN)
		default:
			v.Why = fmt.Sprintf(tx["whyOpen"], span, v.Threshold)
		}
		if r.Verdict == pilot.NotEnoughData && r.Samples > 0 {
			if r.Needed > 0 {
				v.Why += fmt.Sprintf(tx["need"], f.Num(float64(r.Needed), 0), f.Num(float64(r.Samples), 0))
			} else if r.Needed < 0 {
				v.Why += tx["needNever"]
			}
		}
		out = append(out, v)
	}
	return out
}

func signed(s string, x float64) string {
	if x > 0 && s != "" && s[0] != '0' {
		return "+" + s
	}
	return s
}

// headline builds the trial's one-line verdict.
func headline(rep *pilot.Report, cs []critView, lang string, loc *time.Location) headView {
	tx := evTexts[lang]
	h := rep.Headline
	text := func(id string) string {
		for _, c := range cs {
			if c.R.Criterion.ID == id {
				return c.Text
			}
		}
		return id
	}
	n := len(rep.Results)
	v := headView{Verdict: h.Verdict}
	switch {
	case n == 0:
		v.Label, v.Sentence = tx["headOpenL"], tx["headNone"]
	case h.Verdict == pilot.Met:
		v.Label, v.Sentence = tx["headMetL"], fmt.Sprintf(tx["headMet"], n)
	case h.Verdict == pilot.NotMet:
		v.Label, v.Sentence = tx["headNotMetL"], fmt.Sprintf(tx["headNotMet"], h.NotMet, n, text(h.Deciding))
	default:
		v.Label, v.Sentence = tx["headOpenL"], fmt.Sprintf(tx["headOpen"], h.Met, n, h.Undecided, text(h.Deciding))
	}
	if rep.Preliminary {
		v.Preliminary = fmt.Sprintf(tx["preliminary"], rep.End.In(loc).AddDate(0, 0, -1).Format(time.DateOnly))
	}
	for _, w := range rep.Weeks {
		if w.Partial {
			_, wn := w.From.In(loc).ISOWeek()
			v.Partial = fmt.Sprintf(tx["partial"], wn, w.Days)
		}
	}
	return v
}
