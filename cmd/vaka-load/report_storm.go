package main

// Issue 20's sections of the benchmark reports: the all-alarm ramp (every
// event a call-button press on its own button, so every event raises its
// own care alarm) and the storm. docs/benchmarks.md carries both beside
// the rest; `make bench-storm` writes docs/benchmarks-storm.md with only
// these (writeStormDoc), so they can be rerun alone.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// rampAllLabel marks the all-alarm ramp's runs (bench.sh -label).
const rampAllLabel = "ramp-all"

// Issue 20's goals for the all-alarm ramp.
const (
	rampAllP99Ms     = 10.0
	rampAllP99UpTo   = 10_000.0
	rampAllNoCutUpTo = 20_000.0
)

// writeRampAll writes the all-alarm ramp's table and goals.
func writeRampAll(w io.Writer, rs []*Result) {
	if len(rs) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("## All-alarm ramp\n\n")
	p("Every event a call-button press on its own button (`-alarm-every 1`): each raises its own care alarm, journaled, notified and ")
	p("sent on the staff stream, as when a region's buttons all report at once. Latency from the scheduled send to the staff stream; ")
	p("**cut** = stream subscribers the hub cut off for falling behind (the staff screen then has to refetch).\n\n")
	p("| offered/s | peer | achieved/s | p50 | p99 | p99.9 | max | alarms | lost | dup | cut | stream ended | CPU µs/event gen | peer | send lag p99 | other work |\n")
	p("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n")
	for _, r := range rs {
		p("| %.0f | %s%s | %s | %s | %s | %s | %s | %d | %d | %d | %d | %s | %s | %s | %s | %.0f%% |\n", r.OfferedRate, peerTitle(r.Peer), notes(r),
			rate(r), ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max), r.Received+r.Lost,
			r.Lost, r.Duplicated, r.StreamsCut, cond(r.StreamEnded != "", r.StreamEnded, "–"), genCPU(r), peerCPU(r), ms(r.SendLag.P99), r.OtherCPUPct)
	}
	p("\n### Goals (issue 20, all-alarm ramp)\n\n")
	for _, s := range rampAllGoals(rs) {
		p("- %s\n", s)
	}
	p("\n")
}

// rampAllGoals judges the all-alarm ramp: p99 ≤ 10 ms up to 10,000
// alarms/s, no stream cut up to 20,000 alarms/s. A step rerun after a
// failure (bench.sh) counts by its better run. p99 is judged only on a
// step whose generator kept its schedule (send lag p99 ≤ genLagValidMs,
// as the storm's presses and the SCAIP runs are): a step the generator
// wrote late measured the generator or a machine that kept it waiting.
// A step rerun because its generator lagged (-lag-status) is judged on
// its valid run; with none, the goal is not judged there, never met.
func rampAllGoals(rs []*Result) []string {
	verdict := func(ok bool) string { return cond(ok, "**met**", "**not met**") }
	vaka := byPeer(rs, peerVaka)
	var valid []*Result
	for _, r := range vaka {
		if !r.genLagged() {
			valid = append(valid, r)
		}
	}
	bestValid := map[float64]*Result{}
	for _, r := range bestPerRate(valid) {
		bestValid[r.OfferedRate] = r
	}
	best := bestPerRate(vaka)
	var slow, cut, p99s, cuts, unjudged []string
	ranTo10k, ranTo20k := false, false
	for _, r := range best {
		if r.OfferedRate <= rampAllP99UpTo {
			ranTo10k = ranTo10k || r.OfferedRate == rampAllP99UpTo
			v := bestValid[r.OfferedRate]
			if v == nil {
				p99s = append(p99s, fmt.Sprintf("%.0f/s not valid (generator send lag p99 %s ms)", r.OfferedRate, ms(r.SendLag.P99)))
				unjudged = append(unjudged, fmt.Sprintf("%.0f/s", r.OfferedRate))
				continue
			}
			p99s = append(p99s, fmt.Sprintf("%.0f/s %s ms", v.OfferedRate, ms(v.Latency.P99)))
			if v.Latency.P99 > rampAllP99Ms || v.Lost > 0 {
				slow = append(slow, fmt.Sprintf("%.0f/s", v.OfferedRate))
			}
		}
		if r.OfferedRate <= rampAllNoCutUpTo {
			cuts = append(cuts, fmt.Sprintf("%.0f/s %d", r.OfferedRate, r.StreamsCut))
			if r.StreamsCut > 0 || r.StreamEnded != "" {
				cut = append(cut, fmt.Sprintf("%.0f/s", r.OfferedRate))
			}
			ranTo20k = ranTo20k || r.OfferedRate == rampAllNoCutUpTo
		}
	}
	v1 := verdict(len(slow) == 0 && ranTo10k)
	if len(slow) == 0 && len(unjudged) > 0 {
		v1 = "**not judged**"
	}
	g1 := fmt.Sprintf("p99 ≤ %.0f ms up to %.0f alarms/s: %s (%s)", rampAllP99Ms, rampAllP99UpTo, v1, strings.Join(p99s, ", "))
	if !ranTo10k {
		g1 += "; the run did not reach 10,000/s"
	}
	if len(slow) > 0 {
		g1 += "; over it or lossy at " + strings.Join(slow, ", ")
	}
	if len(unjudged) > 0 {
		g1 += fmt.Sprintf("; not judged at %s: the generator wrote late (send lag p99 over %.0f ms) in every run of the step", strings.Join(unjudged, ", "), genLagValidMs)
	}
	g2 := fmt.Sprintf("No stream cut up to %.0f alarms/s: %s (cuts per step: %s)", rampAllNoCutUpTo,
		verdict(len(cut) == 0 && ranTo20k), strings.Join(cuts, ", "))
	if !ranTo20k {
		g2 += "; the run did not reach 20,000/s"
	}
	if len(cut) > 0 {
		g2 += "; cut at " + strings.Join(cut, ", ")
	}
	return []string{g1 + ".", g2 + "."}
}

// writeStormDoc writes docs/benchmarks-storm.md: the machine, the
// commands, the storm and the all-alarm ramp, from their result files
// (told apart by their content).
func writeStormDoc(w io.Writer, files []string, commands string) error {
	var storms []string
	var ramp []*Result
	var m *machine
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var sr SupResult
		if err := json.Unmarshal(b, &sr); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if sr.Storm != nil {
			storms = append(storms, f)
			if m == nil {
				m = &sr.Machine
			}
			continue
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if r.Peer == "" {
			r.Peer = peerVaka
		}
		ramp = append(ramp, &r)
		if m == nil {
			m = &r.Machine
		}
	}
	if m == nil {
		return errors.New("no result files")
	}
	var out bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&out, format, a...) }
	p("# Benchmarks: alarm storms (issue 20)\n\n")
	p("Generated by `make bench-storm` (`scripts/bench-storm.sh`); do not edit by hand, rerun it. The same sections are in ")
	p("[benchmarks.md](benchmarks.md) after a full `make bench`. Figures from one shared machine are relative.\n\n")
	p("| | |\n|---|---|\n| nproc | %d (vaka-load: GOMAXPROCS %d) |\n| CPU | %s |\n| Go | %s |\n| kernel | %s |\n| load avg at start | %s |\n\n",
		m.NumCPU, m.GOMAXPROCS, m.CPUModel, m.GoVersion, m.Kernel, m.LoadAvg)
	if commands != "" {
		if b, err := os.ReadFile(commands); err == nil {
			p("## Commands\n\n```sh\n%s```\n\n", ensureNL(string(b)))
		}
	}
	if len(storms) > 0 {
		if err := writeStormReport(&out, storms); err != nil {
			return err
		}
		p("\n")
	} else {
		p("## Alarm storm\n\nThe run did not finish: no result.\n\n")
	}
	writeRampAll(&out, ramp)
	_, err := w.Write(out.Bytes())
	return err
}

// genLagged reports whether the generator wrote this run's events late
// (send lag p99 over genLagValidMs): then its latency is not the peer's.
func (r *Result) genLagged() bool { return r.Options.Mode == "rate" && r.SendLag.P99 > genLagValidMs }
