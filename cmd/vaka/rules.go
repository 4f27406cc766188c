package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/tillsyn"
)

const rulesUsage = `Usage:
  vaka rules explain --config FILE --site SITE --resident ID [--at RFC3339]
      which rules watch a resident at a time, with holds, consent and why
  vaka rules replay --config FILE --events FILE [--hold RULE=DURATION]... [--json]
      run a rule set over a recorded event log (data_dir/events/*.jsonl)
      and report the alarms each rule would have raised, and the night
      look-ins (digital tillsyn) with the results they would have had;
      --tillsyn-times 01:30,05:00 --tillsyn-in-bed-for 10m
      --tillsyn-tolerance 15m --tillsyn-presence 30m change the plans
      (of --resident only, if given)
`

// holdFlags collects repeated --hold bed_exit=10m.
type holdFlags map[string]time.Duration

func (h holdFlags) String() string { return fmt.Sprint(map[string]time.Duration(h)) }
func (h holdFlags) Set(v string) error {
	name, d, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want RULE=DURATION, e.g. bed_exit=10m")
	}
	if info, ok := rules.Rules[name]; !ok || !info.Planned {
		return fmt.Errorf("%q is not a rule with a hold", name)
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur < 0 {
		return fmt.Errorf("bad duration %q", d)
	}
	h[name] = dur
	return nil
}

func runRules(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, rulesUsage)
		return errors.New("rules: explain or replay?")
	}
	fs := flag.NewFlagSet("rules "+args[0], flag.ContinueOnError)
	cfgPath := fs.String("config", "", "hub config (YAML)")
	site := fs.String("site", "", "site id")
	resident := fs.String("resident", "", "resident id")
	at := fs.String("at", "", "time (RFC 3339); default now")
	events := fs.String("events", "", "event log (JSON lines)")
	asJSON := fs.Bool("json", false, "print JSON")
	holds := holdFlags{}
	var tf tillsynFlags
	fs.StringVar(&tf.times, "tillsyn-times", "", "replay: look-in times, e.g. 01:30,05:00")
	fs.DurationVar(&tf.tolerance, "tillsyn-tolerance", 0, "replay: look-in tolerance")
	fs.DurationVar(&tf.inBedFor, "tillsyn-in-bed-for", 0, "replay: all right needs this long in bed")
	fs.DurationVar(&tf.presence, "tillsyn-presence", 0, "replay: all right needs movement within this long")
	fs.Var(holds, "hold", "override a rule's hold in every plan, e.g. bed_exit=10m (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cfgPath == "" {
		return errors.New("rules: --config FILE is required")
	}
	var cfg hub.Config
	if err := config.Load(*cfgPath, &cfg); err != nil {
		return err
	}
	rc := cfg.RuleConfig()
	switch args[0] {
	case "explain":
		when := time.Now()
		if *at != "" {
			t, err := time.Parse(time.RFC3339, *at)
			if err != nil {
				return fmt.Errorf("rules explain: --at: %w", err)
			}
			when = t
		}
		x, err := rules.New(rc).Explain(*site, *resident, when)
		if err != nil {
			return fmt.Errorf("rules explain: %s/%s: %w", *site, *resident, err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(x)
		}
		fmt.Fprintf(stdout, "%s / %s (unit %s) at %s\nnight window %s (now night: %v); geofences %v\n\n",
			x.Site, x.Resident, x.Unit, x.At.In(rc.Location).Format("2006-01-02 15:04 MST"), x.Night, x.NightNow, x.Fences)
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tRUNS\tHOLD\tSTATE\tWHY")
		for _, r := range x.Rules {
			fmt.Fprintf(tw, "%s (%s)\t%v\t%s\t%s\t%s\n", r.Rule, r.SV, r.Runs, r.HoldText, r.State, r.Why)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		explainTillsyn(stdout, &cfg, *site, *resident, when)
		return nil
	case "replay":
		if *events == "" {
			return errors.New("rules replay: --events FILE is required")
		}
		for name, d := range holds {
			for _, s := range rc.Sites {
				override := map[string]rules.Override{name: {Hold: &d}}
				s.Plan = s.Plan.With("--hold", override)
				for u, p := range s.UnitPlans {
					s.UnitPlans[u] = p.With("--hold", override)
				}
				for _, r := range s.Residents {
					r.Plan = r.Plan.With("--hold", override)
				}
			}
		}
		f, err := os.Open(*events)
		if err != nil {
			return fmt.Errorf("rules replay: %w", err)
		}
		defer f.Close()
		evs, skipped, err := rules.ReadEvents(f)
		if err != nil {
			return err
		}
		rep := rules.Replay(rc, evs)
		rep.Skipped = skipped
		if *asJSON {
			plans := cfg.TillsynPlans()
			if err := tf.apply(plans, *site, *resident); err != nil {
				return err
			}
			return json.NewEncoder(stdout).Encode(struct {
				rules.ReplayReport
				Tillsyn []tillsyn.Record `json:"tillsyn"`
			}{rep, rules.ReplayTillsyn(rc, plans, evs)})
		}
		fmt.Fprintf(stdout, "%d events (%d lines skipped) from %s to %s\n\n", rep.Events, rep.Skipped,
			rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339))
		names := make([]string, 0, len(rep.PerRule))
		for n := range rep.PerRule {
			names = append(names, n)
		}
		sort.Strings(names)
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tALARMS\tRESTORED")
		for _, n := range names {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", n, rep.PerRule[n], rep.Restores[n])
		}
		tw.Flush()
		fmt.Fprintln(stdout)
		for _, a := range rep.Alarms {
			fmt.Fprintf(stdout, "%s  %-20s %s/%s %s\n", a.At.In(rc.Location).Format("2006-01-02 15:04:05"), a.Rule, a.Site, a.Resident, a.Device)
		}
		return replayTillsyn(stdout, &cfg, rc, tf, *site, *resident, evs)
	}
	fmt.Fprint(stdout, rulesUsage)
	return fmt.Errorf("rules: unknown subcommand %q", args[0])
}
