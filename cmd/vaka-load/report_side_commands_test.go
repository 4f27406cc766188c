package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/internal/benchdoc"
)

// make bench-scaip and make bench-cluster run parts of make bench alone,
// through the same shell functions (scripts/benchlib.sh): their Commands
// sections are pasteable as bench.sh's are, and hold the runs the
// issues' goals are judged on, named as make bench names them (the
// reports group runs by those names).
func TestSideBenchCommandsArePasteable(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the bench scripts dry and bash -n on each line")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	root, _ := filepath.Abs("../..")
	for _, c := range []struct {
		script string
		want   []string
	}{
		{"bench-scaip.sh", []string{
			`go build -o "$OUT"/vaka ./cmd/vaka`,
			`"$OUT"/vaka-load scaip -hub-bin "$OUT"/vaka`,
			`-mode rate -rate 1000 -duration 10s -label 'round 2' -out "$OUT"/scaip-r2-4-rate1000.json`,
			`-noise 1000 -label 'round 1'`,
		}},
		{"bench-cluster.sh", []string{
			`-peer vaka -cluster 3 -mode rate -rate 1000 -duration 10s -label 'round 1' -out "$OUT"/r1-4c-alarms1000-cluster3-vaka.json`,
			`-peer vaka -mode rate -rate 1000 -duration 10s -label 'round 2' -out "$OUT"/r2-4-alarms1000-vaka.json`,
			`"$OUT"/vaka-load failover -hub-bin "$OUT"/vaka`,
		}},
	} {
		t.Run(c.script, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			cmd := exec.Command("bash", filepath.Join(root, "scripts", c.script))
			cmd.Env = append(os.Environ(), "BENCH_DRY_RUN=1", "BENCH_OUT="+out)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s dry run: %v\n%s", c.script, err, b)
			}
			b, err := os.ReadFile(filepath.Join(out, "commands.txt"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			all := strings.Join(lines, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("%s's commands lack %q:\n%s", c.script, w, all)
				}
			}
			for _, err := range benchdoc.CheckCommands(lines, root) {
				t.Error(err)
			}
		})
	}
}
