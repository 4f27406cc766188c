package web

import (
	"encoding/csv"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/vaka-care/vaka/pilot"
)

// metricLabels name the metrics for people (Swedish CSV and tables).
var metricLabels = map[string]map[string]string{
	"sv": {
		"alarms_per_resident_night": "Larm per boendenatt", "night_visits_per_resident_night": "Fysiska nattbesök per boendenatt",
		"unaccepted_share": "Ej kvitterade före eskalering", "p50_to_accept_s": "Tid till kvittens p50", "p90_to_accept_s": "Tid till kvittens p90",
		"p99_to_accept_s": "Tid till kvittens p99", "p50_to_presence_s": "Tid till närvaro p50", "p90_to_presence_s": "Tid till närvaro p90",
		"p99_to_presence_s": "Tid till närvaro p99", "p50_to_phone_s": "Tid till telefon p50", "p90_to_phone_s": "Tid till telefon p90",
		"p99_to_phone_s": "Tid till telefon p99", "p90_to_resolve_s": "Tid till avslut p90", "accepted_within_60s_share": "Kvitterade inom 60 s",
		"accepted_within_180s_share": "Kvitterade inom 180 s", "real_need_share": "Andel verkligt behov", "false_share": "Andel oavsiktliga larm",
		"technical_share": "Andel tekniska larm", "information_share": "Andel informationslarm", "only_sensor_caught": "Verkliga behov som bara sensor fångade",
		"only_button_caught": "Verkliga behov som bara larmknappen fångade", "night_visits_replaced": "Fysiska nattbesök ersatta",
		"night_visits_replaced_share": "Andel nattbesök ersatta", "device_uptime": "Enheternas drifttid",
		"p50_to_detect_offline_s": "Tid till upptäckt av tyst enhet p50", "p90_to_detect_offline_s": "Tid till upptäckt av tyst enhet p90",
		"p99_to_detect_offline_s": "Tid till upptäckt av tyst enhet p99", "continuation_rate": "Fortsätter (andel deltagare)",
	},
}

// weekMetrics are the measures the CSV gives per week.
var weekMetrics = []string{"alarms_per_resident_night", "p90_to_accept_s", "real_need_share", "false_share", "unaccepted_share",
	"night_visits_replaced", "device_uptime", "p90_to_detect_offline_s", "continuation_rate"}

// svKind: how a measure is written in the Swedish CSV (a share as a
// percentage), its unit and decimals.
func svKind(kind pilot.Kind) (scale float64, unit string, dec int) {
	switch kind {
	case pilot.KindShare:
		return 100, "%", 1
	case pilot.KindUptime:
		return 100, "%", 2
	case pilot.KindQuantile:
		return 1, "s", 0
	case pilot.KindRate:
		return 1, "per boendenatt", 2
	}
	return 1, "st", 0
}

// writeSwedishCSV writes the report for Swedish Excel: a UTF-8 byte order
// mark (else Excel reads the file as Windows-1252), semicolons (Excel's
// list separator where the decimal mark is a comma), decimal commas,
// Swedish labels and rounded values. A measure without samples is an
// empty cell, never 0: an empty week's detection time did not take 0 s.
func writeSwedishCSV(w io.Writer, rep *pilot.Report, t *pilot.Trial, loc *time.Location) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	f := numFmt{sv: true, plain: true}
	cw := csv.NewWriter(w)
	cw.Comma = ';'
	cw.UseCRLF = true
	num := func(x float64, dec int) string {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return ""
		}
		return f.Num(x, dec)
	}
	day := func(x time.Time) string { return x.In(loc).Format(time.DateOnly) }
	verdicts := map[pilot.Verdict]string{pilot.Met: "Uppfyllt", pilot.NotMet: "Ej uppfyllt", pilot.NotEnoughData: "För lite data"}
	_ = cw.Write([]string{"Avsnitt", "Period från", "Grupp", "Mått", "Värde", "Enhet", "Nedre 95 %", "Övre 95 %", "Underlag", "Bedömning", "Underlag som behövs"})
	for _, r := range rep.Results {
		v, lo, hi, unit, dec := ownTerms(r)
		needed := ""
		if r.Needed > 0 {
			needed = strconv.Itoa(r.Needed)
		}
		_ = cw.Write([]string{"Kriterium", day(rep.From), armLabel(t, r.Criterion.Arm), r.Criterion.Text,
			num(v, dec), unit, num(lo, dec), num(hi, dec), strconv.Itoa(r.Samples), verdicts[r.Verdict], needed})
	}
	row := func(section string, from time.Time, arm string, m pilot.Measures, name string) {
		e := m.Estimate(name, pilot.Level)
		scale, unit, dec := svKind(e.Kind)
		if e.Samples == 0 {
			_ = cw.Write([]string{section, day(from), armLabel(t, arm), metricLabels["sv"][name], "", unit, "", "", "0", "", ""})
			return
		}
		_ = cw.Write([]string{section, day(from), armLabel(t, arm), metricLabels["sv"][name], num(scale*e.Value, dec), unit,
			num(scale*e.Interval.Lo, dec), num(scale*e.Interval.Hi, dec), strconv.Itoa(e.Samples), "", ""})
	}
	for _, a := range t.Arms {
		for _, name := range pilot.Metrics {
			row("Hela perioden", rep.From, a.ID, rep.Arms[a.ID], name)
		}
	}
	for _, wk := range rep.Weeks {
		section := "Vecka"
		if wk.Partial {
			section = "Vecka (ofullständig)"
		}
		for _, a := range t.Arms {
			for _, name := range weekMetrics {
				row(section, wk.From, a.ID, wk.Arms[a.ID], name)
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// ownTerms is a criterion's value and interval as numbers in its own
// terms: a relative change in %, a difference in percentage points, a
// share in %, a time in s (min when its threshold is), with the decimals
// its threshold needs.
func ownTerms(r pilot.Result) (v, lo, hi float64, unit string, dec int) {
	c := r.Criterion
	iv := r.Interval
	switch {
	case r.Compared == "ratio" && r.ChangeInterval != nil:
		return 100 * (r.Change - 1), 100 * (r.ChangeInterval.Lo - 1), 100 * (r.ChangeInterval.Hi - 1), "% mot jämförelsegruppen", 1
	case r.Compared == "difference" && r.ChangeInterval != nil && r.Kind == pilot.KindShare:
		return 100 * r.Change, 100 * r.ChangeInterval.Lo, 100 * r.ChangeInterval.Hi, "procentenheter mot jämförelsegruppen", 1
	case r.Compared == "difference" && r.ChangeInterval != nil:
		v, iv = r.Change, *r.ChangeInterval
	default:
		v = r.Value
	}
	switch r.Kind {
	case pilot.KindShare:
		d := shareDecimals(v, c.Value, false)
		return 100 * v, 100 * iv.Lo, 100 * iv.Hi, "%", d
	case pilot.KindUptime:
		d := shareDecimals(v, c.Value, true)
		return 100 * v, 100 * iv.Lo, 100 * iv.Hi, "%", d
	case pilot.KindQuantile:
		if minutes(c.Value) {
			return v / 60, iv.Lo / 60, iv.Hi / 60, "min", 1
		}
		return v, iv.Lo, iv.Hi, "s", 0
	case pilot.KindRate:
		return v, iv.Lo, iv.Hi, "per boendenatt", 2
	}
	return v, iv.Lo, iv.Hi, "st", 0
}
