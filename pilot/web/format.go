package web

import (
	"math"
	"strconv"
	"strings"

	"github.com/vaka-care/vaka/pilot"
)

// Numbers are written the reader's way: Swedish with a decimal comma, a
// narrow no-break (thin) space between thousands and a space before "%"
// (Språkrådet's Svenska skrivregler); English with a decimal point, comma
// thousands and "%" attached. The one helper every page, chart and CSV
// uses, so a page never mixes "0.89" with "97,5 %".
type numFmt struct {
	sv bool
	// plain: no thousands separator and an ASCII minus, for CSV cells a
	// spreadsheet must read as numbers.
	plain bool
}

const thinSpace = "\u202f"

func fmtFor(lang string) numFmt { return numFmt{sv: lang != "en"} }

// Num writes x with dec decimals; "–" for no value.
func (f numFmt) Num(x float64, dec int) string {
	if math.IsNaN(x) {
		return "–"
	}
	if math.IsInf(x, 0) {
		if x > 0 {
			return "∞"
		}
		return f.minus() + "∞"
	}
	// Half away from zero, as a reader (and a spreadsheet) rounds.
	s := strconv.FormatFloat(roundTo(math.Abs(x), max(dec, 0)), 'f', max(dec, 0), 64)
	neg := x < 0 && strings.Trim(s, "0.") != "" // no "−0"
	intPart, frac, _ := strings.Cut(s, ".")
	sep := ","
	if f.sv {
		sep = thinSpace
	}
	if !f.plain && len(intPart) > 3 {
		var b strings.Builder
		for i, c := range intPart {
			if i > 0 && (len(intPart)-i)%3 == 0 {
				b.WriteString(sep)
			}
			b.WriteRune(c)
		}
		intPart = b.String()
	}
	out := intPart
	if frac != "" {
		if f.sv {
			out += "," + frac
		} else {
			out += "." + frac
		}
	}
	if neg {
		out = f.minus() + out
	}
	return out
}

func (f numFmt) minus() string {
	if f.plain {
		return "-"
	}
	return "−" // U+2212, the typographic minus
}

// Auto writes x with 0 decimals when whole, else 2 (counts and ratios in
// tables).
func (f numFmt) Auto(x float64) string {
	if x == math.Trunc(x) {
		return f.Num(x, 0)
	}
	return f.Num(x, 2)
}

// Pct writes a share 0–1 as a whole percentage.
func (f numFmt) Pct(share float64) string { return f.PctN(share, 0) }

// Pct1 writes a share with one decimal.
func (f numFmt) Pct1(share float64) string { return f.PctN(share, 1) }

// PctN writes a share 0–1 as a percentage with dec decimals.
func (f numFmt) PctN(share float64, dec int) string {
	if math.IsNaN(share) {
		return "–"
	}
	return f.unit(f.Num(100*share, dec), "%")
}

// Signed writes a relative change (share, −0.8 for −80 %) with its sign.
func (f numFmt) Signed(change float64, dec int) string {
	s := f.PctN(change, dec)
	if change > 0 && !strings.HasPrefix(s, "0") {
		s = "+" + s
	}
	return s
}

func (f numFmt) unit(num, unit string) string {
	if f.sv || unit != "%" {
		return num + "\u00a0" + unit
	}
	return num + unit
}

// Duration writes seconds in s below two minutes, else in min with one
// decimal: 849.26 s → "14,2 min".
func (f numFmt) Duration(sec float64, asMinutes bool) string {
	if math.IsNaN(sec) {
		return "–"
	}
	if math.IsInf(sec, 0) {
		return f.Num(sec, 0)
	}
	if asMinutes {
		return f.unit(f.Num(sec/60, 1), "min")
	}
	if math.Abs(sec) < 10 && sec != math.Trunc(sec) {
		return f.unit(f.Num(sec, 1), "s")
	}
	return f.unit(f.Num(sec, 0), "s")
}

// decimals is how many decimals x needs (at most 4): 0.995 → 3.
func decimals(x float64) int {
	for d := 0; d < 4; d++ {
		p := math.Pow(10, float64(d))
		if math.Abs(x*p-math.Round(x*p)) < 1e-9 {
			return d
		}
	}
	return 4
}

// shareDecimals: the decimals (of a percentage) a share needs beside its
// threshold: the threshold's own, one more for an uptime (99,93 % against
// 99,5 %), and more while value and threshold would read the same.
func shareDecimals(v, thr float64, uptime bool) int {
	d := decimals(100 * thr)
	if uptime {
		d++
	}
	for d < 3 && v != thr && roundTo(100*v, d) == roundTo(100*thr, d) {
		d++
	}
	return d
}

func roundTo(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

// minutes: times are written in minutes when the threshold is (15 min).
func minutes(thr float64) bool { return thr >= 120 }

// measure writes a metric's value (or an interval end) in its own terms
// against a criterion's threshold thr.
func (f numFmt) measure(kind pilot.Kind, v, thr float64) string {
	switch kind {
	case pilot.KindShare:
		return f.PctN(v, shareDecimals(v, thr, false))
	case pilot.KindUptime:
		return f.PctN(v, shareDecimals(v, thr, true))
	case pilot.KindQuantile:
		return f.Duration(v, minutes(thr))
	case pilot.KindCount:
		return f.Num(v, 0)
	}
	return f.Num(v, 2)
}

// Share is channel ch's part of all first receipts to a phone.
func (f numFmt) Share(m pilot.Measures, ch string) string {
	n := 0
	for _, c := range m.PhoneVia {
		n += c
	}
	if n == 0 {
		return "–"
	}
	return f.Pct(float64(m.PhoneVia[ch]) / float64(n))
}

// Q writes a distribution's p50, p90 or p99 as a time ("–" without
// samples), in min when asMin.
func (f numFmt) Q(d pilot.Dist, which string, asMin bool) string {
	if d.N == 0 {
		return "–"
	}
	switch which {
	case "p50":
		return f.Duration(d.P50, asMin)
	case "p90":
		return f.Duration(d.P90, asMin)
	}
	return f.Duration(d.P99, asMin)
}
