package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/internal/benchdoc"
)

const fixtures = "../../internal/benchdoc/testdata"

// The generator exits 0 with the gateway within budget, and 3 (after
// writing the whole report) when the footprint is over it: that status is
// what fails make bench-gateway and make bench.
func TestGatewayBudgetExitStatus(t *testing.T) {
	machine := filepath.Join(fixtures, "machine.json")
	var out, errb bytes.Buffer
	if rc := run([]string{"gateway", "-machine", machine, filepath.Join(fixtures, "gateway.txt")}, &out, &errb); rc != 0 {
		t.Fatalf("within budget: status %d\n%s", rc, errb.String())
	}
	if !strings.Contains(out.String(), "**met** — 20.4 MB") {
		t.Errorf("report:\n%s", out.String())
	}

	// The same real output with the footprint line's RSS raised to 31.5 MB.
	b, err := os.ReadFile(filepath.Join(fixtures, "gateway.txt"))
	if err != nil {
		t.Fatal(err)
	}
	over := strings.Replace(string(b), "20.33 rss-peak-MB", "31.50 rss-peak-MB", 1)
	if over == string(b) {
		t.Fatal("the fixture has no footprint line to change")
	}
	f := filepath.Join(t.TempDir(), "over.txt")
	os.WriteFile(f, []byte(over), 0o600)
	out.Reset()
	errb.Reset()
	if rc := run([]string{"gateway", "-machine", machine, f}, &out, &errb); rc != exitOverBudget {
		t.Fatalf("over budget: status %d, want %d", rc, exitOverBudget)
	}
	if !strings.Contains(out.String(), "**not met** — 31.5 MB at most over 1 run") || !strings.Contains(errb.String(), "BUDGET NOT MET: Resident memory") {
		t.Errorf("report:\n%s\nstderr:\n%s", out.String(), errb.String())
	}

	// Output without the footprint (the benchmark did not run): not
	// measured, which fails too.
	f2 := filepath.Join(t.TempDir(), "none.txt")
	os.WriteFile(f2, []byte("pkg: github.com/vaka-care/vaka/cmd/vaka\n--- FAIL: BenchmarkIntegrationGatewayFootprint-2\nFAIL\n"), 0o600)
	if rc := run([]string{"gateway", "-machine", machine, f2}, &out, &errb); rc != exitOverBudget {
		t.Errorf("not measured: status %d, want %d", rc, exitOverBudget)
	}

	// Usage errors are 1, not a report.
	if rc := run([]string{"nonsense"}, &out, &errb); rc != 1 {
		t.Errorf("unknown report: status %d", rc)
	}
	if rc := run([]string{"staff", "/does/not/exist"}, &out, &errb); rc != 1 {
		t.Errorf("missing output file: status %d", rc)
	}
}

// The Commands section of each side report, as scripts/bench-reports.sh
// records it (BENCH_DRY_RUN=1), pastes into bash from the repo root as
// written.
func TestSideReportCommandsArePasteable(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the bench scripts dry and bash -n on each line")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	root, _ := filepath.Abs("../..")
	base := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "bench-reports.sh"), "staff", "pilot", "gateway", "tillsyn")
	cmd.Env = append(os.Environ(), "BENCH_DRY_RUN=1", "BENCH_REPORTS_OUT="+base)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench-reports.sh dry run: %v\n%s", err, b)
	}
	for _, part := range []string{"staff", "pilot", "gateway", "tillsyn"} {
		var out, errb bytes.Buffer
		run([]string{part, "-machine", filepath.Join(fixtures, "machine.json"), "-commands", filepath.Join(base, part, "commands.txt"),
			filepath.Join(fixtures, part+".txt")}, &out, &errb)
		lines, err := benchdoc.CommandsSection(out.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", part, err)
		}
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "go test") && !strings.Contains(lines[0], " go test ") {
			t.Errorf("%s: commands %q", part, lines)
		}
		for _, err := range benchdoc.CheckCommands(lines, root) {
			t.Errorf("%s: %v", part, err)
		}
	}
}
