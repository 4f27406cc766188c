package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/notify"
)

const routesUsage = `Usage:
  vaka routes test --config FILE [--at TIME] [--json] LABEL=VALUE...
      who an alarm with these labels would alert now (or at TIME: RFC 3339
      or "2006-01-02 15:04" in the hub's time zone), and after each
      escalation step if nobody accepts, and how technical alarms are
      grouped (group_by). Labels: site, unit, room, kind, priority, rule,
      gateway. Example:
        vaka routes test --config hub.yaml site=solrosen unit=avd-a kind=call
`

func runRoutes(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprint(stdout, routesUsage)
		return errors.New("routes: want: routes test")
	}
	var cfgPath, atStr string
	var asJSON bool
	labels := map[string]string{}
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		flagVal := func(name string) (string, error) {
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v, nil
			}
			if i+1 >= len(rest) {
				return "", fmt.Errorf("routes: %s needs a value", name)
			}
			i++
			return rest[i], nil
		}
		var err error
		switch {
		case a == "-h" || a == "--help":
			fmt.Fprint(stdout, routesUsage)
			return nil
		case a == "--json" || a == "-json":
			asJSON = true
		case strings.HasPrefix(a, "--config") || strings.HasPrefix(a, "-config"):
			cfgPath, err = flagVal(strings.SplitN(a, "=", 2)[0])
		case strings.HasPrefix(a, "--at") || strings.HasPrefix(a, "-at"):
			atStr, err = flagVal(strings.SplitN(a, "=", 2)[0])
		case strings.Contains(a, "=") && !strings.HasPrefix(a, "-"):
			k, v, _ := strings.Cut(a, "=")
			if !slices.Contains(notify.Labels, k) {
				return fmt.Errorf("routes: %q is not a label; labels: %s", k, strings.Join(notify.Labels, ", "))
			}
			labels[k] = v
		default:
			return fmt.Errorf("routes: unexpected argument %q\n\n%s", a, routesUsage)
		}
		if err != nil {
			return err
		}
	}
	if cfgPath == "" {
		return errors.New("routes: --config FILE is required")
	}
	var cfg hub.Config
	if err := config.Load(cfgPath, &cfg); err != nil {
		return err
	}
	tree, err := cfg.RouteTree()
	if err != nil {
		return err
	}
	// Receivers with roster: on_duty resolve through the roster file and
	// the shifts set through the API (kept in data_dir, if readable here).
	ros, err := cfg.OpenRoster()
	if err != nil {
		return err
	}
	tree = tree.WithRoster(ros)
	at := time.Now().In(cfg.Loc)
	if atStr != "" {
		if at, err = parseAt(atStr); err != nil {
			if at, err = time.ParseInLocation("2006-01-02 15:04", atStr, cfg.Loc); err != nil {
				return fmt.Errorf("routes: --at %q: want RFC 3339 or \"2006-01-02 15:04\"", atStr)
			}
		}
	}
	plans := tree.Match(labels, at)
	if asJSON {
		type out struct {
			notify.Plan
			Schedule []notify.Schedule `json:"schedule"`
		}
		var list []out
		for _, p := range plans {
			list = append(list, out{p, p.Schedule()})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"labels": labels, "at": at, "plans": list})
	}
	printRoutes(stdout, labels, at.In(cfg.Loc), plans)
	return nil
}

// parseAt reads --at as RFC 3339, with or without seconds
// (2026-03-29T02:30+02:00).
func parseAt(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t, err = time.Parse("2006-01-02T15:04Z07:00", s)
	}
	return t, err
}

func printRoutes(w io.Writer, labels map[string]string, at time.Time, plans []notify.Plan) {
	var ls []string
	for _, k := range notify.Labels {
		if v, ok := labels[k]; ok {
			ls = append(ls, k+"="+v)
		}
	}
	fmt.Fprintf(w, "alarm {%s} at %s\n", strings.Join(ls, " "), at.Format("2006-01-02 15:04 MST"))
	if len(plans) == 0 {
		fmt.Fprintln(w, "  nobody: there are no users to alert")
		return
	}
	for _, p := range plans {
		fmt.Fprintf(w, "\nroute %s\n", p.Route)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range p.Schedule() {
			when := "now"
			if s.Tier > 0 {
				when = "after " + s.After.String()
			}
			if grouped(labels, p) {
				// The group is notified group_wait after its first member.
				when = "after " + (s.After + p.GroupWait).String()
			}
			who := strings.Join(s.Users, ", ")
			if s.Webhook != "" {
				who = "webhook " + s.Webhook
			}
			if s.SCAIP != "" {
				who = "alarm centre (SCAIP) " + s.SCAIP
			}
			if r := p.Tiers[s.Tier]; r.Roster != "" {
				switch {
				case r.Fallback && len(r.Users) > 0:
					who += "  (nobody on duty by the roster: everyone listed)"
				case r.Fallback:
					who = "NOBODY: nobody on duty by the roster and no users to fall back on"
				default:
					who += "  (on duty by the roster)"
				}
			}
			fmt.Fprintf(tw, "  %s\ttier %d\t%s\t%s\n", when, s.Tier, s.Receiver, who)
		}
		tw.Flush()
		if len(p.Tiers) > 1 {
			if p.AcceptTimeout > 0 {
				fmt.Fprintf(w, "  next tier when nobody accepts within %v", p.AcceptTimeout)
				if p.DeliveryTimeout > 0 {
					fmt.Fprintf(w, ", or sooner when no phone confirms the alert within %v", p.DeliveryTimeout)
				}
				fmt.Fprintln(w)
			} else if p.DeliveryTimeout > 0 {
				fmt.Fprintf(w, "  next tier only when no phone confirms the alert within %v\n", p.DeliveryTimeout)
			}
		}
		if rem := p.RemindEvery; rem > 0 {
			if grouped(labels, p) && rem < p.GroupInterval {
				rem = p.GroupInterval // a group is notified at most once per interval
			}
			fmt.Fprintf(w, "  reminders every %v to everyone alerted so far, until someone accepts\n", rem)
		}
		printGrouping(w, labels, p)
	}
}

// grouped reports whether an alarm with labels is grouped on plan p.
func grouped(labels map[string]string, p notify.Plan) bool {
	k := labels["kind"]
	return len(p.GroupBy) > 0 && (k == "" || k == "technical")
}

// printGrouping says how the route groups technical alarms, and that it
// never groups a care alarm.
func printGrouping(w io.Writer, labels map[string]string, p notify.Plan) {
	kind := labels["kind"]
	switch {
	case len(p.GroupBy) == 0:
		if kind == "" || kind == "technical" {
			fmt.Fprintln(w, "  not grouped: each technical alarm is notified on its own")
		}
	case kind != "" && kind != "technical":
		fmt.Fprintf(w, "  not grouped: a %s alarm is never grouped; group_by (%s) applies to technical alarms only\n", kind, strings.Join(p.GroupBy, ", "))
	default:
		var key []string
		for _, l := range p.GroupBy {
			v, ok := labels[l]
			if !ok {
				v = "?"
			}
			key = append(key, l+"="+v)
		}
		fmt.Fprintf(w, "  technical alarms grouped by %s into one group alarm {%s}: notified %v after its first alarm, then at most once per %v\n",
			strings.Join(p.GroupBy, ", "), strings.Join(key, " "), p.GroupWait, p.GroupInterval)
	}
}
