package benchdoc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Issue 16's goal: a region's night (10,000 residents × 3 look-ins) leaves
// the alarm path's p99 with no measurable change.
const benchTillsyn = "BenchmarkTillsynRegionNight"

// TillsynMinRuns is how many runs the verdict needs: with fewer, a
// run-to-run spread is not known well enough to judge against.
const TillsynMinRuns = 5

// tillsynBootstrap is how many resamples the interval of the median
// difference is drawn from (with a fixed seed: the same output gives the
// same report).
const tillsynBootstrap = 4000

// Tillsyn writes docs/benchmarks-tillsyn.md from the -count runs of
// BenchmarkTillsynRegionNight (hub/bench_tillsyn_test.go).
//
// How the verdict is reached, and why so. One run's p99 on a shared
// machine moves by more than the look-ins' effect (the same code gave
// 99–142 µs without look-ins on an idle machine, 320–442 µs under load),
// so a single difference proves nothing either way. Each run pairs a
// window without look-ins and one with them at every planned instant,
// back to back in alternating order, so its difference (p99 with minus
// p99 without, alarm-p99-diff-µs) is the comparison least touched by the
// machine's other work. Over the runs the report gives the median
// difference, its interquartile range and a bootstrap 95 % interval of
// the median (runs resampled); the baseline's own run-to-run spread is
// the interquartile range of the p99 without look-ins. "No measurable
// change" is said only when the median difference lies within that
// spread (|median| ≤ IQR of the baseline) over at least TillsynMinRuns
// runs and the interval holds zero; a median above the spread is a
// measurable cost, one below it a bias in the comparison (look-ins do
// not make alarms faster), and an interval clear of zero a shift the
// runs agree on, however small: none of them is met.
func Tillsyn(in Input) Report {
	var d doc
	d.header("Digital tillsyn: the alarm path beside a region's look-ins", "make bench-tillsyn", "tillsyn",
		"`"+benchTillsyn+"` (hub/bench_tillsyn_test.go): a region's night, 10,000 residents with a bed monitor, a door "+
			"sensor and three planned look-ins each (23:00, 02:00, 05:00), computed by the hub (state read from the rule "+
			"engine, judged, journaled) while a call button is pressed every 2 ms through the alarm path (`HandleEvent`, "+
			"journal write included). Every sensor reports a minute before each instant (the background traffic). At each "+
			"instant one window without look-ins and one with them run back to back, their order alternating, each from a "+
			"collected heap; a press counts for the window it starts in. One run is one night; the runs are separate "+
			"processes.", in)

	rs := in.Out.Select(benchTillsyn, nil)
	us := scaled(1, 0)
	d.p("## Runs\n\nAlarm-path latency per press in µs; *diff* is p99 with look-ins minus p99 without, within the run.\n\n")
	d.p("| run | presses (both windows) | p50 without | p50 with | p99 without | p99 with | diff | CPU µs/look-in | alloc B/look-in | GC without/with | GC assist µs without/with | lane wait ms/instant | late | ms/instant |\n")
	d.p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var diffs, offs []float64
	for i, r := range rs {
		diff, ok := tillsynDiff(r)
		if ok {
			diffs = append(diffs, diff)
			offs = append(offs, r.Metrics["alarm-p99-off-µs"])
		}
		d.p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s |\n", i+1,
			opt(r, "alarm-samples", us), opt(r, "alarm-p50-off-µs", us), opt(r, "alarm-p50-on-µs", us),
			opt(r, "alarm-p99-off-µs", us), opt(r, "alarm-p99-on-µs", us), cond(ok, signed(diff), "–"),
			opt(r, "cpu-µs/look-in", scaled(1, 1)), opt(r, "alloc-B/look-in", us),
			opt(r, "gc-off/window", scaled(1, 1)), opt(r, "gc-on/window", scaled(1, 1)),
			opt(r, "gc-assist-µs-off/window", us), opt(r, "gc-assist-µs-on/window", us),
			opt(r, "lane-wait-ms/instant", scaled(1, 1)), opt(r, "late-look-ins", us), opt(r, "tick-ms/instant", us))
	}
	if len(rs) == 0 {
		d.p("| – | no run | | | | | | | | | | | | |\n")
	} else if len(rs) > 1 {
		d.p("| **median** of %d | | %s | %s | %s | %s | %s | %s | %s | | | %s | %s | %s |\n", len(rs),
			med(rs.Values("alarm-p50-off-µs"), us), med(rs.Values("alarm-p50-on-µs"), us),
			med(rs.Values("alarm-p99-off-µs"), us), med(rs.Values("alarm-p99-on-µs"), us), cond(len(diffs) > 0, signed(Median(diffs)), "–"),
			med(rs.Values("cpu-µs/look-in"), scaled(1, 1)), med(rs.Values("alloc-B/look-in"), us),
			med(rs.Values("lane-wait-ms/instant"), scaled(1, 1)), med(rs.Values("late-look-ins"), us), med(rs.Values("tick-ms/instant"), us))
	}
	d.p("\n")

	st := TillsynStats(diffs, offs)
	g := Goal{Text: "alarm-path p99 with look-ins running: no measurable change (the median of the runs' differences within the run-to-run " +
		"interquartile range of the p99 without look-ins, and its 95 % interval holding zero, over at least " + fmt.Sprint(TillsynMinRuns) + " runs)"}
	busy, load := tillsynBusy(in)
	switch {
	case len(diffs) == 0:
		g.Detail = notMeasured(benchTillsyn)
	case busy:
		g.Detail = fmt.Sprintf("not judged: the machine was busier than its %d CPUs (load %s), and other work then moves the "+
			"p99 more than the look-ins do (median difference %s µs, 95 %% interval %s…%s, over %s); rerun on a quieter machine",
			in.Machine.NProc, load, signed(st.Median), signed(st.CILow), signed(st.CIHigh), runsNote(len(diffs)))
	case len(diffs) < TillsynMinRuns:
		g.Detail = fmt.Sprintf("%s: too few to know the baseline's spread (median difference %s µs)", runsNote(len(diffs)), signed(st.Median))
	default:
		g.State = cond(st.NoChange(), Met, NotMet)
		what := "within"
		switch {
		case st.Median > st.Spread:
			what = "above"
		case st.Median < -st.Spread:
			what = "below (a bias in the comparison, not a gain)"
		case st.CILow > 0:
			what = "within, but the interval is clear of zero (the runs agree on a cost),"
		case st.CIHigh < 0:
			what = "within, but the interval is clear of zero (a bias in the comparison),"
		}
		g.Detail = fmt.Sprintf("median difference %s µs (IQR %s…%s, 95 %% interval of the median %s…%s) over %s, %s the baseline's "+
			"run-to-run IQR of %s µs (p99 without look-ins %s…%s µs); %d of %d runs higher with look-ins",
			signed(st.Median), signed(st.Q1), signed(st.Q3), signed(st.CILow), signed(st.CIHigh), runsNote(len(diffs)), what,
			num(st.Spread, 0), num(st.BaseQ1, 0), num(st.BaseQ3, 0), st.Positive, len(diffs))
	}
	d.goal(g)

	d.p("## How it is judged\n\n")
	d.p("A run's own difference is noisy: its p99 is about the 10th-slowest of some 1,000 presses per side, and other work on ")
	d.p("the machine moves it. So the verdict is over runs: the median of the runs' differences, their interquartile range ")
	d.p("(IQR), and a bootstrap 95 %% interval of that median (%d resamples of the runs, fixed seed). The baseline's own ", tillsynBootstrap)
	d.p("run-to-run spread is the IQR of the p99 without look-ins. *No measurable change* is said only when the median ")
	d.p("difference lies within ± that spread, over at least %d runs, and the interval holds zero. A median above the spread ", TillsynMinRuns)
	d.p("is a cost the look-ins put on the alarm path; one below it means the comparison is biased (the windows are not ")
	d.p("alike); an interval clear of zero is a shift the runs agree on, smaller than the spread but measured all the same ")
	d.p("(the paired windows make the difference much steadier than the p99 itself). None of these is met. A run on a ")
	d.p("machine whose 1-minute load average, at the start or the end, was above its number of CPUs is not judged: other ")
	d.p("work then moves the p99 more than the look-ins do.\n\n")
	d.p("CPU µs/look-in is the process's CPU in the windows with look-ins minus those without, per look-in (the look-ins' own ")
	d.p("work with the garbage collector's and the scheduler's share); alloc B/look-in the heap bytes, the same way. GC is the ")
	d.p("collections inside a window, GC assist the CPU goroutines spent helping them (where a collection's cost lands on ")
	d.p("alarms). *Lane wait* is how long the look-ins waited for alarms on their way through the hub (they give way to the ")
	d.p("alarm lane, hub/lanes.go); *late* counts look-ins judged past their 30 s deadline (`vaka_tillsyn_lookins_late_total`).\n\n")
	return d.finish(in)
}

// tillsynBusy reports whether the machine's 1-minute load average, at
// the start or at the end of the runs, was above its number of CPUs: then
// the runs met other work for the cores at every moment, the p99 without
// look-ins spreads over hundreds of µs (150–1,100 µs at load 8–16 here),
// and a verdict either way says more about the load than the look-ins
// (the same code was "met" in one batch and "not met" in the next).
func tillsynBusy(in Input) (bool, string) {
	first := func(la string) float64 {
		f := strings.Fields(la)
		if len(f) == 0 {
			return -1
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return -1
		}
		return v
	}
	n := float64(in.Machine.NProc)
	if n <= 0 {
		return false, ""
	}
	start := first(in.Machine.LoadAvg)
	load, busy := num(start, 2), start > n
	if in.End != nil {
		end := first(in.End.LoadAvg)
		load += " at the start, " + num(end, 2) + " at the end"
		busy = busy || end > n
	}
	return busy, load
}

// tillsynDiff is a run's p99 difference (with minus without look-ins).
func tillsynDiff(r Run) (float64, bool) {
	if v, ok := r.Metrics["alarm-p99-diff-µs"]; ok {
		return v, true
	}
	on, ok1 := r.Metrics["alarm-p99-on-µs"]
	off, ok2 := r.Metrics["alarm-p99-off-µs"]
	return on - off, ok1 && ok2
}

// TillsynVerdict is the statistics the tillsyn goal is judged on.
type TillsynVerdict struct {
	Median, Q1, Q3 float64 // of the runs' differences
	CILow, CIHigh  float64 // bootstrap 95 % interval of the median difference
	BaseQ1, BaseQ3 float64 // of the p99 without look-ins
	Spread         float64 // BaseQ3 - BaseQ1: the baseline's run-to-run spread
	Positive       int     // runs whose difference is above zero
	Runs           int
}

// NoChange reports whether the median difference lies within the
// baseline's spread over enough runs, and the runs do not show a shift
// either way (the bootstrap interval of the median holds zero): paired
// windows make the difference far steadier than the p99 itself, so a
// shift smaller than the spread can still be measured, and then it is
// not "no measurable change".
func (v TillsynVerdict) NoChange() bool {
	return v.Runs >= TillsynMinRuns && math.Abs(v.Median) <= v.Spread && v.CILow <= 0 && v.CIHigh >= 0
}

// TillsynStats computes the verdict's statistics from each run's p99
// difference and p99 without look-ins.
func TillsynStats(diffs, offs []float64) TillsynVerdict {
	v := TillsynVerdict{Runs: len(diffs)}
	if len(diffs) == 0 {
		return v
	}
	v.Median = Median(diffs)
	v.Q1, v.Q3 = Quantile(diffs, 0.25), Quantile(diffs, 0.75)
	v.BaseQ1, v.BaseQ3 = Quantile(offs, 0.25), Quantile(offs, 0.75)
	v.Spread = v.BaseQ3 - v.BaseQ1
	for _, d := range diffs {
		if d > 0 {
			v.Positive++
		}
	}
	rng := rand.New(rand.NewPCG(16, 2026))
	meds := make([]float64, tillsynBootstrap)
	re := make([]float64, len(diffs))
	for i := range meds {
		for k := range re {
			re[k] = diffs[rng.IntN(len(diffs))]
		}
		meds[i] = Median(re)
	}
	v.CILow, v.CIHigh = Quantile(meds, 0.025), Quantile(meds, 0.975)
	return v
}

// Quantile is the q-quantile of v by linear interpolation between the
// closest ranks (R's type 7, numpy's default). 0 for no values.
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// signed formats a difference in whole µs with its sign.
func signed(v float64) string {
	if v > 0 {
		return "+" + num(v, 0)
	}
	return num(v, 0)
}
