package web

import (
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/pilot"
)

func TestNumberFormats(t *testing.T) {
	sv, en := fmtFor("sv"), fmtFor("en")
	csv := numFmt{sv: true, plain: true}
	for _, c := range []struct{ got, want string }{
		{sv.Num(1234567.891, 2), "1\u202f234\u202f567,89"},
		{en.Num(1234567.891, 2), "1,234,567.89"},
		{sv.Num(-0.004, 2), "0,00"}, // no "−0,00"
		{sv.Num(-3.5, 1), "−3,5"},
		{csv.Num(-1234.5, 1), "-1234,5"},
		{sv.PctN(0.99926, 2), "99,93\u00a0%"},
		{en.PctN(0.99926, 2), "99.93%"},
		{sv.Signed(-0.8015, 0), "−80\u00a0%"},
		{en.Signed(0.125, 0), "+13%"},
		{sv.Duration(849.26, true), "14,2\u00a0min"},
		{en.Duration(41, false), "41\u00a0s"},
		// Each criterion in its own terms: uptime with one more decimal
		// than its threshold, a share with its threshold's, a time in min.
		{sv.measure(pilot.KindUptime, 0.99926, 0.995), "99,93\u00a0%"},
		{sv.measure(pilot.KindShare, 0.8912, 0.975), "89,1\u00a0%"},
		{sv.measure(pilot.KindShare, 0.6, 0.85), "60\u00a0%"},
		// ... and more decimals while value and threshold would read alike.
		{sv.measure(pilot.KindShare, 0.9749, 0.975), "97,49\u00a0%"},
		{sv.measure(pilot.KindQuantile, 849.26, 900), "14,2\u00a0min"},
		{sv.measure(pilot.KindQuantile, 66.3, 60), "66\u00a0s"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// Charts are drawn by html/template: a hostile arm name is text, not
// markup, in labels and titles alike.
func TestChartsEscapeLabels(t *testing.T) {
	tr := &pilot.Trial{ID: "t", Start: "2026-10-05", End: "2026-10-19",
		Arms: []pilot.Arm{{ID: "a", Name: `<script>alert(1)</script>`, Units: []string{"s/u"}}, {ID: "b", Name: `"B&B"`, Units: []string{"s/v"}}}}
	from, to := tr.Period(time.UTC)
	rep := pilot.BuildReport(tr, pilot.Data{Alarms: []pilot.Record{{Trial: "t", Arm: "a", Source: pilot.SrcButton, RaisedAt: from.Add(time.Hour), ToAccept: 30, Outcome: "real_need"}}}, from, to, time.UTC)
	var b strings.Builder
	for _, c := range charts(&rep, tr, texts["sv"], time.UTC, fmtFor("sv")) {
		if err := page.ExecuteTemplate(&b, "svg", c.SVG); err != nil {
			t.Fatal(err)
		}
	}
	out := b.String()
	if strings.Contains(out, "<script>") || !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(out, "&#34;B&amp;B&#34;") {
		t.Errorf("labels not escaped:\n%s", out)
	}
	if strings.Count(out, "<svg") != 4 || !strings.Contains(out, `class="axis-title"`) {
		t.Errorf("charts: %d svg", strings.Count(out, "<svg"))
	}
}
