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
