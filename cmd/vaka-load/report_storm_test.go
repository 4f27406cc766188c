package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func rampAllResult(rate, p99 float64, cut int) *Result {
	r := &Result{Peer: peerVaka, Scenario: "all alarms", OfferedRate: rate, AchievedRate: rate, Received: int(rate * 5)}
	r.Options = options{Mode: "rate", Rate: rate, Duration: 5 * time.Second, AlarmEvery: 1, Label: rampAllLabel, Gateways: 4}
	r.Latency.P99 = p99
	r.StreamsCut = cut
	return r
}

// The all-alarm ramp's goals: p99 ≤ 10 ms up to 10,000/s and no stream cut
// up to 20,000/s, judged from the figures, and not met when the run stops
// short of the rates they name.
func TestRampAllGoals(t *testing.T) {
	all := []*Result{rampAllResult(1000, 1, 0), rampAllResult(2000, 2, 0), rampAllResult(5000, 4, 0),
		rampAllResult(10000, 9, 0), rampAllResult(20000, 40, 0)}
	g := rampAllGoals(all)
	if len(g) != 2 || !strings.Contains(g[0], "**met**") || !strings.Contains(g[1], "**met**") {
		t.Errorf("goals %q, want both met", g)
	}
	all[3] = rampAllResult(10000, 12, 0)
	all[4] = rampAllResult(20000, 40, 1)
	g = rampAllGoals(all)
	if !strings.Contains(g[0], "**not met**") || !strings.Contains(g[0], "10000/s") || !strings.Contains(g[1], "**not met**") || !strings.Contains(g[1], "cut at 20000/s") {
		t.Errorf("goals %q, want both not met, naming the steps", g)
	}
	g = rampAllGoals(all[:2])
	if !strings.Contains(g[0], "did not reach 10,000/s") || !strings.Contains(g[1], "did not reach 20,000/s") {
		t.Errorf("goals of a short run %q", g)
	}
}

// A step whose generator wrote late (send lag p99 over 5 ms) is not the
// hub's figure: it is not judged, so the goal is "not judged" there (never
// met); its rerun with the generator on time is judged instead; a valid
// step over 10 ms is "not met" whatever the others are.
func TestRampAllGoalsJudgeValidRunsOnly(t *testing.T) {
	lagged := func(r *Result) *Result { r.SendLag.P99 = 11; return r }
	all := []*Result{lagged(rampAllResult(1000, 41, 0)), rampAllResult(2000, 2, 0), rampAllResult(5000, 4, 0),
		rampAllResult(10000, 9, 0), rampAllResult(20000, 40, 0)}
	g := rampAllGoals(all)
	if !strings.Contains(g[0], "**not judged**") || !strings.Contains(g[0], "1000/s not valid (generator send lag p99 11.00 ms)") ||
		!strings.Contains(g[0], "not judged at 1000/s") {
		t.Errorf("a lagged step: %q, want not judged there", g[0])
	}
	// Its rerun kept the schedule: judged on it, met.
	g = rampAllGoals(append(all, rampAllResult(1000, 3, 0)))
	if !strings.Contains(g[0], "**met**") || !strings.Contains(g[0], "1000/s 3.00 ms") {
		t.Errorf("a lagged step rerun on time: %q, want met on the rerun's 3 ms", g[0])
	}
	// A valid step over the goal: not met, and the lagged one still named.
	all[3] = rampAllResult(10000, 12, 0)
	g = rampAllGoals(all)
	if !strings.Contains(g[0], "**not met**") || !strings.Contains(g[0], "over it or lossy at 10000/s") || !strings.Contains(g[0], "not judged at 1000/s") {
		t.Errorf("a slow valid step beside a lagged one: %q", g[0])
	}
}

// make bench's report puts the all-alarm ramp in its own section, apart
// from the 1-in-20 ramp.
func TestReportSeparatesAllAlarmRamp(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, r := range []*Result{rampAllResult(1000, 1, 0), rampAllResult(20000, 30, 0)} {
		b, _ := json.Marshal(r)
		f := filepath.Join(dir, "ramp-all-"+string(rune('a'+i))+".json")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	var md bytes.Buffer
	if err := writeReport(&md, files, "", "", "", ""); err != nil {
		t.Fatal(err)
	}
	s := md.String()
	if !strings.Contains(s, "## All-alarm ramp") || strings.Contains(s, "## Stepped ramp") || !strings.Contains(s, "Goals (issue 20, all-alarm ramp)") {
		t.Errorf("report:\n%s", s)
	}
	var doc bytes.Buffer
	if err := writeStormDoc(&doc, files, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.String(), "## All-alarm ramp") || !strings.Contains(doc.String(), "The run did not finish") {
		t.Errorf("storm doc without a storm result:\n%s", doc.String())
	}
}

// A storm whose generator fell behind (its presses written late) does not
// judge the hub by its press figure: the table and the goal say the
// figure is not valid and why. One that kept its schedule is judged, and
// the report shows the generator's lag beside the hub's part.
func TestStormReportPressValidity(t *testing.T) {
	o := supOptions{Storm: true, Devices: 1000, Gateways: 4, Beat: 2 * time.Second, Grace: 8 * time.Second, Silent: 100,
		StopAt: time.Second, Spread: time.Second, AllAt: 2 * time.Second, PressRate: 5, PressButtons: 10}
	mk := func(sendLagP99, pressP99 float64) string {
		r := &SupResult{Options: o, Presses: 10, WriteEveryMs: 200}
		r.PressLatency = pct{N: 10, P50: 1, P99: pressP99, Max: pressP99}
		r.PressSendLag = pct{N: 10, P50: 0.1, P99: sendLagP99, Max: sendLagP99}
		r.PressHub = pct{N: 10, P50: 0.9, P99: pressP99 - sendLagP99}
		r.RadioLag = pct{N: 100, P99: 3}
		r.judgeGenerator()
		r.Storm = &StormFigures{}
		r.Storm.Goals = []Goal{pressGoal(r)}
		b, _ := json.Marshal(r)
		f := filepath.Join(t.TempDir(), "storm.json")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var md bytes.Buffer
		if err := writeStormReport(&md, []string{f}); err != nil {
			t.Fatal(err)
		}
		return md.String()
	}
	lagged := mk(6800, 8450)
	for _, want := range []string{"not valid (8.45e+03: generator lag)", "press send lag p99 6.8e+03 ms > 5 ms",
		"during the storm: **not judged**: the figure measured the generator, not the hub — not valid, the generator lagged"} {
		if !strings.Contains(lagged, want) {
			t.Errorf("lagged generator: report lacks %q:\n%s", want, lagged)
		}
	}
	if strings.Contains(lagged, "**met**") || strings.Contains(lagged, "**not met**") {
		t.Errorf("lagged generator: the press goal was judged:\n%s", lagged)
	}
	kept := mk(0.4, 30)
	for _, want := range []string{"during the storm: **met**", "valid: the generator kept its schedule", "| 0.1 / 0.4 / 0.4 |"} {
		if !strings.Contains(kept, want) {
			t.Errorf("generator kept up: report lacks %q:\n%s", want, kept)
		}
	}
	if slow := mk(0.4, 80); !strings.Contains(slow, "during the storm: **not met**") {
		t.Errorf("a slow hub behind a punctual generator is not judged:\n%s", slow)
	}
}
