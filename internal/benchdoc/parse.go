// Package benchdoc writes the side reports of `make bench`
// (docs/benchmarks-staff.md, -pilot.md, -gateway.md) from what was
// measured: `go test -bench` output, the machine it ran on and the command
// lines that ran. Nothing in a report is typed: every figure comes from a
// benchmark line, every "median" is the median of the runs listed beside
// it, and every goal is stated with the figure that decides it.
package benchdoc

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Run is one result line of `go test -bench` output.
type Run struct {
	Pkg     string             // import path, from the preceding "pkg:" line
	Name    string             // without the -GOMAXPROCS suffix: BenchmarkSpoolPushPop, BenchmarkDecode/call_button
	Procs   int                // the -N suffix
	N       int64              // iterations
	Metrics map[string]float64 // by unit: "ns/op", "B/op", "allocs/op", "points/s", …
}

// Output is one parsed `go test -bench` output.
type Output struct {
	Runs []Run
	// Failures are the lines that say a benchmark or a package failed
	// ("--- FAIL", "FAIL", "panic:"), with the message lines that follow a
	// "--- FAIL", so a report can say what went wrong instead of going
	// quietly without the figure.
	Failures []string
}

// Parse reads `go test -bench` output (several packages and -count runs
// may be concatenated). A line that starts like a result line but does not
// parse is an error: a report must not silently drop a measurement.
func Parse(r io.Reader) (*Output, error) {
	out := &Output{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	pkg := ""
	inFail := false
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "pkg: "):
			pkg = strings.TrimSpace(strings.TrimPrefix(l, "pkg: "))
			inFail = false
		case strings.HasPrefix(l, "Benchmark"):
			inFail = false
			f := strings.Fields(l)
			if len(f) < 2 {
				continue // a benchmark's own log line ("BenchmarkX: …") or a name alone before its result
			}
			if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
				continue // a log line that happens to start with the name
			}
			run, err := parseRun(f)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			run.Pkg = pkg
			out.Runs = append(out.Runs, run)
		case strings.HasPrefix(l, "--- FAIL"), strings.HasPrefix(l, "FAIL"), strings.HasPrefix(l, "panic:"):
			out.Failures = append(out.Failures, strings.TrimSpace(l))
			inFail = strings.HasPrefix(l, "--- FAIL")
		case inFail && strings.HasPrefix(l, "    "):
			if len(out.Failures) < 40 {
				out.Failures = append(out.Failures, "  "+strings.TrimSpace(l))
			}
		default:
			inFail = false
		}
	}
	return out, sc.Err()
}

func parseRun(f []string) (Run, error) {
	r := Run{Name: f[0], Procs: 1, Metrics: map[string]float64{}}
	if i := strings.LastIndexByte(f[0], '-'); i > 0 {
		if p, err := strconv.Atoi(f[0][i+1:]); err == nil {
			r.Name, r.Procs = f[0][:i], p
		}
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return r, fmt.Errorf("%s: iterations %q: %w", r.Name, f[1], err)
	}
	r.N = n
	rest := f[2:]
	if len(rest)%2 != 0 {
		return r, fmt.Errorf("%s: value without a unit in %q", r.Name, strings.Join(rest, " "))
	}
	for i := 0; i < len(rest); i += 2 {
		v, err := strconv.ParseFloat(rest[i], 64)
		if err != nil {
			return r, fmt.Errorf("%s: value %q of %s: %w", r.Name, rest[i], rest[i+1], err)
		}
		r.Metrics[rest[i+1]] = v
	}
	return r, nil
}

// Select returns the runs named name (exactly, without the -N suffix), in
// the order they ran, that satisfy keep (nil: all).
func (o *Output) Select(name string, keep func(Run) bool) Runs {
	var out Runs
	for _, r := range o.Runs {
		if r.Name == name && (keep == nil || keep(r)) {
			out = append(out, r)
		}
	}
	return out
}

// Runs are the -count repetitions of one benchmark.
type Runs []Run

// Values is metric unit of every run that reported it, in run order.
func (rs Runs) Values(unit string) []float64 {
	var v []float64
	for _, r := range rs {
		if x, ok := r.Metrics[unit]; ok {
			v = append(v, x)
		}
	}
	return v
}

// Median is the median of unit over the runs (the mean of the middle two
// for an even count); ok is false when no run reported it.
func (rs Runs) Median(unit string) (m float64, ok bool) {
	v := rs.Values(unit)
	if len(v) == 0 {
		return 0, false
	}
	return Median(v), true
}

// Median of v: the middle value of the sorted values, or the mean of the
// two middle ones. 0 for no values.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
