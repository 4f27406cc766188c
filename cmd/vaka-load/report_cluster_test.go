package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// clusterRun is a 1,000 events/s run, on the single hub (replicas 0) or
// with the journal on replicas NATS nodes.
func clusterRun(replicas, run int, p99 float64) *Result {
	r := roundResult(peerVaka, run, p99, 0, 0)
	r.Options.Rate, r.OfferedRate, r.Options.Cluster = 1000, 1000, replicas
	r.Scenario = scenarioName(r.Options)
	if replicas > 0 {
		r.JournalMsgsPerEvent = 0.5 + float64(run)/10
	}
	return r
}

// The redundant group's section puts each -cluster scenario beside the
// same scenario on the single hub, with medians, and judges issue 19's
// goal on the median p99 (flipped: over 5 ms is not met).
func TestClusterSummary(t *testing.T) {
	for _, tc := range []struct {
		p99s []float64
		want string
	}{
		{[]float64{3, 9, 4}, "with 3 replicas: met (median p99 4.00 ms, runs: 3)"},
		{[]float64{6, 2, 7}, "with 3 replicas: **not met** (median p99 6.00 ms, runs: 3)"},
	} {
		rs := []*Result{clusterRun(0, 1, 1), clusterRun(0, 2, 1.5), clusterRun(0, 3, 2)}
		for i, p := range tc.p99s {
			rs = append(rs, clusterRun(3, i+1, p))
		}
		var md bytes.Buffer
		if err := writeReport(&md, writeResults(t, rs...), "", "", "", ""); err != nil {
			t.Fatal(err)
		}
		s := md.String()
		if !strings.Contains(s, "## Redundant group: alarm latency (issue 19)") || !strings.Contains(s, tc.want) {
			t.Fatalf("want %q in:\n%s", tc.want, s)
		}
		if !strings.Contains(s, "| 1000 events/s | single hub | 0.150 | 1.50 |") {
			t.Errorf("single hub's medians missing:\n%s", s)
		}
		// Messages per event: the median of the rounds (0.6, 0.7, 0.8),
		// none for the single hub.
		single := s[strings.Index(s, "| 1000 events/s | single hub |"):]
		single = single[:strings.IndexByte(single, '\n')]
		if !strings.Contains(s, "| 3 replicas |") || !strings.Contains(s, " | 0.70 |\n") || !strings.HasSuffix(single, " | – |") {
			t.Errorf("journal messages per event missing or wrong:\n%s", s)
		}
	}
	// The NATS nodes pinned off the hub's CPU (-pin-nats): their own row
	// and goal line, beside the runs that share it.
	rs := []*Result{clusterRun(0, 1, 1)}
	for i, p := range []float64{3, 9, 4} {
		rs = append(rs, clusterRun(3, i+1, 8))
		apart := clusterRun(3, i+1, p)
		apart.Options.PinSUT, apart.Options.PinNATS = "0", "1"
		apart.Scenario = scenarioName(apart.Options)
		rs = append(rs, apart)
	}
	var apartMD bytes.Buffer
	if err := writeReport(&apartMD, writeResults(t, rs...), "", "", "", ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 3 replicas, NATS off the hub's CPU |",
		"with 3 replicas, NATS off the hub's CPU: met (median p99 4.00 ms, runs: 3)",
		"with 3 replicas: **not met** (median p99 8.00 ms, runs: 3)",
	} {
		if !strings.Contains(apartMD.String(), want) {
			t.Errorf("want %q in:\n%s", want, apartMD.String())
		}
	}
	// No -cluster run: no section.
	var md bytes.Buffer
	if err := writeReport(&md, writeResults(t, clusterRun(0, 1, 1)), "", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "Redundant group") {
		t.Error("a section without -cluster runs")
	}
}

// The failover section gives the median and worst of the gaps over the
// kills and judges the 10 s goal on the worst.
func TestFailoverReport(t *testing.T) {
	for _, tc := range []struct {
		gaps []float64
		want string
	}{
		{[]float64{5100, 5300, 5200}, "within 10 s: met (worst gap 5.30 s over 3 kills"},
		{[]float64{5100, 12000, 5200}, "within 10 s: **not met** (worst gap 12.00 s over 3 kills"},
	} {
		r := FailoverResult{Command: "vaka-load failover -kills 3", LeaseTTL: "5s", Rate: 50, Replicas: 3,
			AckGapMs: tc.gaps, TakeoverMs: []float64{5000, 5050, 5100}, Acked: 900}
		b, _ := json.Marshal(r)
		f := filepath.Join(t.TempDir(), "f.json")
		os.WriteFile(f, b, 0o600)
		var md bytes.Buffer
		if err := writeFailoverReport(&md, []string{f}); err != nil {
			t.Fatal(err)
		}
		s := md.String()
		if !strings.Contains(s, tc.want) || !strings.Contains(s, "| 3 | 5.20 s |") || !strings.Contains(s, "| 5.05 s | 5.10 s | 900 |") {
			t.Errorf("want %q and the medians in:\n%s", tc.want, s)
		}
	}
}

// The redundant group's ramp: its steps are their own section, not
// scenarios of the rounds; the knee is the first step over the limit in
// every run of it (a step whose rerun passed is no knee).
func TestClusterRampKnee(t *testing.T) {
	step := func(rate, p99 float64, lost int) *Result {
		r := clusterRun(3, 1, p99)
		r.Options.Rate, r.OfferedRate, r.Options.Label, r.Lost = rate, rate, rampClusterLabel, lost
		r.Scenario = scenarioName(r.Options)
		return r
	}
	for _, tc := range []struct {
		name  string
		steps []*Result
		want  string
	}{
		{"knee", []*Result{step(1000, 2, 0), step(2000, 4, 0), step(3000, 30, 0), step(3000, 12, 0)},
			"Knee: **3000 alarms/s** (last clean step 2000/s)."},
		{"rerun passed", []*Result{step(1000, 2, 0), step(2000, 30, 0), step(2000, 4, 0), step(3000, 9, 0)},
			"No knee within the steps run (last clean step 3000/s)."},
		{"loss is a knee", []*Result{step(1000, 2, 0), step(2000, 3, 1), step(2000, 3, 2)},
			"Knee: **2000 alarms/s** (last clean step 1000/s)."},
	} {
		var md bytes.Buffer
		if err := writeReport(&md, writeResults(t, append([]*Result{clusterRun(3, 1, 3)}, tc.steps...)...), "", "", "", ""); err != nil {
			t.Fatal(err)
		}
		s := md.String()
		if !strings.Contains(s, "## Redundant group: ramp (issue 19)") || !strings.Contains(s, tc.want) {
			t.Errorf("%s: want %q in:\n%s", tc.name, tc.want, s)
		}
		// The 1,000/s step is not one more run of the goal's scenario.
		if strings.Count(s, "\n| 1000 | ") != 1 || !strings.Contains(s, "(median p99 3.00 ms, runs: 1)") {
			t.Errorf("%s: ramp steps not in their own section:\n%s", tc.name, s)
		}
	}
	// Two replicated setups of one scenario (the NATS nodes on the hub's
	// CPU and off it): the single hub's row once.
	r := clusterRun(3, 1, 3)
	r.Options.PinSUT, r.Options.PinNATS = "0", "1"
	r.Scenario = scenarioName(r.Options)
	var md bytes.Buffer
	if err := writeReport(&md, writeResults(t, clusterRun(0, 1, 1), clusterRun(3, 1, 4), r), "", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if s := md.String(); strings.Count(s, "| single hub |") != 1 {
		t.Errorf("the single hub's row %d times, want once:\n%s", strings.Count(s, "| single hub |"), s)
	}
}

// The NATS nodes' process runs with sysmon kept awake, as vaka hub does,
// unless told not to (VAKA_SYSMON_SLEEP=1) or GODEBUG already sets it.
func TestNATSProcessEnv(t *testing.T) {
	if env := natsProcessEnv([]string{"A=1"}); len(env) != 2 || env[1] != "GODEBUG=schedtrace=2147483647" {
		t.Errorf("NATS process env %q", env)
	}
	if env := natsProcessEnv([]string{"GODEBUG=madvdontneed=1"}); env[0] != "GODEBUG=madvdontneed=1,schedtrace=2147483647" {
		t.Errorf("NATS process env %q", env)
	}
	if env := natsProcessEnv([]string{"VAKA_SYSMON_SLEEP=1"}); len(env) != 1 {
		t.Errorf("NATS process env with VAKA_SYSMON_SLEEP=1: %q", env)
	}
}
