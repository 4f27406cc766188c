// Command vaka-benchdoc writes the side reports of `make bench` from what
// was measured (scripts/bench-reports.sh runs it):
//
//	vaka-benchdoc machine > machine.json       (before the benchmarks: the load they meet)
//	vaka-benchdoc staff|pilot|gateway|tillsyn -machine machine.json [-machine-end end.json] -commands commands.txt OUTPUT... > docs/benchmarks-PART.md
//
// OUTPUT is `go test -bench` output. It exits 3 when a budget goal (the
// gateway's footprint) is exceeded or was not measured, after writing the
// report, so `make bench` fails; 1 on a usage or read error.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vaka-care/vaka/internal/benchdoc"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const exitOverBudget = 3

var renderers = map[string]func(benchdoc.Input) benchdoc.Report{
	"staff":   benchdoc.Staff,
	"pilot":   benchdoc.Pilot,
	"gateway": benchdoc.Gateway,
	"tillsyn": benchdoc.Tillsyn,
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: vaka-benchdoc machine | staff|pilot|gateway|tillsyn -machine FILE -commands FILE OUTPUT...")
		return 1
	}
	part := args[0]
	if part == "machine" {
		b, _ := json.MarshalIndent(benchdoc.ReadMachine(), "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	render, ok := renderers[part]
	if !ok {
		fmt.Fprintf(stderr, "vaka-benchdoc: unknown report %q (machine, staff, pilot, gateway, tillsyn)\n", part)
		return 1
	}
	fs := flag.NewFlagSet(part, flag.ContinueOnError)
	fs.SetOutput(stderr)
	machine := fs.String("machine", "", "`file` written by `vaka-benchdoc machine` before the benchmarks (default: this machine now)")
	end := fs.String("machine-end", "", "`file` written by `vaka-benchdoc machine` after the benchmarks (the load by the end)")
	commands := fs.String("commands", "", "`file` of the command lines that ran, one a line")
	if err := fs.Parse(args[1:]); err != nil {
		return 1
	}
	in := benchdoc.Input{Machine: benchdoc.ReadMachine()}
	if *machine != "" {
		m, err := benchdoc.LoadMachine(*machine)
		if err != nil {
			fmt.Fprintf(stderr, "vaka-benchdoc: -machine: %v\n", err)
			return 1
		}
		in.Machine = m
	}
	if *end != "" {
		m, err := benchdoc.LoadMachine(*end)
		if err != nil {
			fmt.Fprintf(stderr, "vaka-benchdoc: -machine-end: %v\n", err)
			return 1
		}
		in.End = &m
	}
	if *commands != "" {
		b, err := os.ReadFile(*commands)
		if err != nil {
			fmt.Fprintf(stderr, "vaka-benchdoc: -commands: %v\n", err)
			return 1
		}
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if l != "" {
				in.Commands = append(in.Commands, l)
			}
		}
	}
	var all bytes.Buffer
	for _, f := range fs.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "vaka-benchdoc: %v\n", err)
			return 1
		}
		all.Write(b)
		all.WriteByte('\n')
	}
	out, err := benchdoc.Parse(&all)
	if err != nil {
		fmt.Fprintf(stderr, "vaka-benchdoc: %v\n", err)
		return 1
	}
	in.Out = out
	rep := render(in)
	if _, err := stdout.Write(rep.Markdown); err != nil {
		fmt.Fprintf(stderr, "vaka-benchdoc: %v\n", err)
		return 1
	}
	for _, g := range rep.Goals {
		fmt.Fprintf(stderr, "%s: %s: %s — %s\n", part, g.Text, g.State, g.Detail)
	}
	if over := rep.OverBudget(); len(over) > 0 {
		for _, g := range over {
			fmt.Fprintf(stderr, "vaka-benchdoc: BUDGET %s: %s (%s)\n", strings.ToUpper(g.State.String()), g.Text, g.Detail)
		}
		return exitOverBudget
	}
	return 0
}
