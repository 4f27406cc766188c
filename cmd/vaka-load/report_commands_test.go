package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/internal/benchdoc"
)

// roundResult is one run of a round scenario for the report.
func roundResult(peer string, run int, p99 float64, lost, cut int) *Result {
	r := &Result{Peer: peer, Scenario: "open loop 500 events/s × 10s", Sent: 5000, Received: 5000 - lost, Lost: lost, StreamsCut: cut,
		OfferedRate: 500, AchievedRate: 500, Started: time.Date(2026, 12, 3, 9, 19, 0, 0, time.UTC)}
	r.Options = options{Mode: "rate", Rate: 500, Duration: 10 * time.Second, Gateways: 4, Label: "round " + string(rune('0'+run))}
	r.Latency.P50, r.Latency.P99, r.Latency.Max = p99/10, p99, p99*2
	r.Machine = machine{NumCPU: 2, GOMAXPROCS: 1, CPUModel: "Test CPU", GoVersion: "go1.26.8", Kernel: "6.1.0", LoadAvg: "1.50 1.20 0.90"}
	return r
}

func writeResults(t *testing.T, rs ...*Result) []string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i, r := range rs {
		b, _ := json.Marshal(r)
		f := filepath.Join(dir, "r"+string(rune('a'+i))+".json")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// Every cell of a "median" row is the median of the runs above it: with
// three runs whose lost are 0, 0, 9 the median row says 0 (the sum, 9,
// would read as a median loss), and p99 1, 2, 30 ms gives 2.00 (the mean
// would be 11, the last run 30). The machine table names the load average
// at the start.
func TestReportMedianRowsAreMedians(t *testing.T) {
	files := writeResults(t,
		roundResult(peerVaka, 1, 1, 0, 1), roundResult(peerVaka, 2, 2, 0, 1), roundResult(peerVaka, 3, 30, 9, 4))
	var out bytes.Buffer
	if err := writeReport(&out, files, "", "", "", ""); err != nil {
		t.Fatal(err)
	}
	md := out.String()
	var row string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| A vaka | median |") {
			row = l
		}
	}
	cells := strings.Split(row, "|")
	// | peer | run | p50 | p90 | p99 | p99.9 | max | lost | dup | reord | cut | …
	if len(cells) < 12 || strings.TrimSpace(cells[5]) != "2.00" || strings.TrimSpace(cells[7]) != "4.00" ||
		strings.TrimSpace(cells[8]) != "0" || strings.TrimSpace(cells[11]) != "1" {
		t.Errorf("median row %q: want p99 2.00, max 4.00, lost 0, cut 1 (medians)", row)
	}
	if !strings.Contains(md, "| load average at start (1, 5, 15 min) | 1.50 1.20 0.90 |") {
		t.Errorf("no load average in the machine table:\n%s", md)
	}
	// The goals line keeps the total, and says it is one.
	if !strings.Contains(md, "A vaka median p99 2.00 ms, lost 9 in 3 runs") {
		t.Errorf("goals line:\n%s", md)
	}
}

// The Commands section of docs/benchmarks.md, as scripts/bench.sh records
// it (BENCH_DRY_RUN=1: every command recorded, none run), can be pasted
// into bash from the repo root as written: every line parses, and every
// binary it runs is on PATH, a script in the repository, or built by an
// earlier line of the section (vaka-load, and the hub it starts with
// -hub-bin) – no bare `vaka-load`, no unquoted "-label round 1".
func TestBenchCommandsArePasteable(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the bench scripts dry and bash -n on each line")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	root, _ := filepath.Abs("../..")
	out := filepath.Join(t.TempDir(), "bench")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "bench.sh"))
	cmd.Env = append(os.Environ(), "BENCH_DRY_RUN=1", "BENCH_OUT="+out, "BENCH_DOC="+filepath.Join(t.TempDir(), "b.md"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench.sh dry run: %v\n%s", err, b)
	}
	files := writeResults(t, roundResult(peerVaka, 1, 1, 0, 0))
	var md bytes.Buffer
	if err := writeReport(&md, files, "", filepath.Join(out, "commands.txt"), "", ""); err != nil {
		t.Fatal(err)
	}
	lines, err := benchdoc.CommandsSection(md.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 40 {
		t.Fatalf("only %d command lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, want := range []string{
		`go build -o "$OUT"/vaka-load ./cmd/vaka-load`,
		`-label 'round 1'`,
		`./scripts/bench-reports.sh staff pilot gateway tillsyn`,
		`"$OUT"/vaka-load scaip -hub-bin "$OUT"/vaka`,
		`-noise 1000 -label 'round 1'`,
	} {
		if !strings.Contains(strings.Join(lines, "\n"), want) {
			t.Errorf("the section lacks %q", want)
		}
	}
	for _, err := range benchdoc.CheckCommands(lines, root) {
		t.Error(err)
	}
}

// The checker itself fails what the old section printed.
func TestCheckCommandsCatchesTheOldSection(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	root, _ := filepath.Abs("../..")
	old := []string{
		"go build -o vaka-load ./cmd/vaka-load && go build -o vaka ./cmd/vaka",
		"vaka-load -hub-bin vaka -peer vaka -mode oneatatime -n 500 -label round 1 -out r1.json",
	}
	errs := benchdoc.CheckCommands(old, root)
	if len(errs) == 0 {
		t.Fatal("the old, unpasteable section passed")
	}
	bad := []string{
		`OUT=/tmp/x`,
		`"$OUT"/vaka-load -peer vaka -label 'round 1`, // unclosed quote
		`"$OUT"/vaka-load -hub-bin "$OUT"/vaka -peer vaka`,
	}
	errs = benchdoc.CheckCommands(bad, root)
	if len(errs) != 3 || !strings.Contains(errs[0].Error(), "does not parse") || !strings.Contains(errs[1].Error(), "vaka-load, which no earlier line builds") ||
		!strings.Contains(errs[2].Error(), "-hub-bin runs /tmp/x/vaka, which no earlier line builds") {
		t.Errorf("errors %v", errs)
	}
}

// The same holds for `make bench-storm`'s Commands section
// (docs/benchmarks-storm.md): scripts/bench-storm.sh records the commands
// it runs in the form bench.sh does, and the section is those lines.
func TestStormCommandsArePasteable(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the bench scripts dry and bash -n on each line")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	root, _ := filepath.Abs("../..")
	out := filepath.Join(t.TempDir(), "storm")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "bench-storm.sh"))
	cmd.Env = append(os.Environ(), "BENCH_DRY_RUN=1", "BENCH_OUT="+out, "BENCH_STORM_DOC="+filepath.Join(t.TempDir(), "s.md"),
		"STORM_ARGS=-devices 5000 -gateways 20")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench-storm.sh dry run: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "commands.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		`go build -o "$OUT"/vaka-load ./cmd/vaka-load`,
		`"$OUT"/vaka-load storm -hub-bin "$OUT"/vaka`,
		`-devices 5000 -gateways 20`,
		`-rate 20000 -duration 5s -alarm-every 1`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the storm's commands lack %q:\n%s", want, all)
		}
	}
	for _, err := range benchdoc.CheckCommands(lines, root) {
		t.Error(err)
	}
}
