package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/tillsyn"
)

// tillsynFlags are the replay's plan changes ("what if the 02:00 look-in
// were at 01:30, or needed 10 min of stillness"), applied to every plan
// or to --resident's.
type tillsynFlags struct {
	times     string
	tolerance time.Duration
	inBedFor  time.Duration
	presence  time.Duration
}

func (f tillsynFlags) set() bool {
	return f.times != "" || f.tolerance > 0 || f.inBedFor > 0 || f.presence > 0
}

// apply changes the plans as the flags say and checks them.
func (f tillsynFlags) apply(plans []*tillsyn.Plan, site, resident string) error {
	var times []int
	if f.times != "" {
		for _, s := range strings.Split(f.times, ",") {
			m, err := tillsyn.ParseClock(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("rules replay: --tillsyn-times: %w", err)
			}
			times = append(times, m)
		}
	}
	for _, p := range plans {
		if resident != "" && (p.Resident != resident || site != "" && p.Site != site) {
			continue
		}
		if times != nil {
			p.Times, p.Every = times, 0
			p.Replaces = nil // the replaced visits were the old times'
		}
		if f.tolerance > 0 {
			p.Tolerance = f.tolerance
		}
		if f.inBedFor > 0 {
			p.Criteria.InBed, p.Criteria.InBedFor = true, f.inBedFor
		}
		if f.presence > 0 {
			p.Criteria.PresenceWithin = f.presence
		}
		if errs := p.Check(); len(errs) > 0 {
			return fmt.Errorf("rules replay: the changed plan of %s/%s: %w", p.Site, p.Resident, errors.Join(errs...))
		}
	}
	return nil
}

// explainTillsyn prints a resident's look-ins of the night at when.
func explainTillsyn(stdout io.Writer, cfg *hub.Config, site, resident string, when time.Time) {
	for _, p := range cfg.TillsynPlans() {
		if p.Site != site || p.Resident != resident {
			continue
		}
		night := tillsyn.NightOf(when, cfg.Loc, p.NightStart)
		fmt.Fprintf(stdout, "\nDigital tillsyn / night look-ins, night of %s (%s–%s), consent %v\n", night.Format("2006-01-02"),
			tillsyn.Clock(p.NightStart), tillsyn.Clock(p.NightEnd), p.Consent)
		var all []string
		if p.Criteria.InBed {
			s := "in bed (bed/mat occupied, no bed exit pending)"
			if p.Criteria.InBedFor > 0 {
				s += fmt.Sprintf(" for %s", p.Criteria.InBedFor)
			}
			all = append(all, s)
		}
		if p.Criteria.PresenceWithin > 0 {
			all = append(all, fmt.Sprintf("movement within %s", p.Criteria.PresenceWithin))
		}
		if p.Criteria.DoorClosed {
			all = append(all, "door closed")
		}
		if p.Criteria.NoAlarmOpen {
			all = append(all, "no alarm open")
		}
		var sensors []string
		for _, s := range p.Sensors {
			sensors = append(sensors, s.Device+" ("+string(s.Role)+")")
		}
		fmt.Fprintf(stdout, "all right = %s; sensors %s; tolerance %s; not all right → %s", strings.Join(all, ", "),
			strings.Join(sensors, ", "), p.Tolerance, p.Action.Kind)
		if p.Action.Kind == tillsyn.DoAlarm {
			fmt.Fprintf(stdout, " (%s, priority %d)", p.Action.AlarmKind, p.Action.Priority)
		}
		fmt.Fprintln(stdout, "; cannot tell → visit")
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LOOK-IN\tAT\tUNTIL\tREPLACES VISIT\tNOTE")
		for _, l := range p.Schedule(night, cfg.Loc) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", l.Wall, l.Planned.In(cfg.Loc).Format("2006-01-02 15:04 MST"),
				l.Deadline.In(cfg.Loc).Format("15:04"), l.Replaces, l.Note)
		}
		tw.Flush()
	}
}

// replayTillsyn re-runs the night's look-ins over the events and prints
// each result.
func replayTillsyn(stdout io.Writer, cfg *hub.Config, rc rules.Config, f tillsynFlags, site, resident string, evs []event.Event) error {
	plans := cfg.TillsynPlans()
	if len(plans) == 0 {
		if f.set() {
			return errors.New("rules replay: --tillsyn-* given but no resident has a tillsyn plan")
		}
		return nil
	}
	if err := f.apply(plans, site, resident); err != nil {
		return err
	}
	recs := rules.ReplayTillsyn(rc, plans, evs)
	fmt.Fprintf(stdout, "\nDigital tillsyn / night look-ins (%d)\n", len(recs))
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLANNED\tRESIDENT\tRESULT\tAT\tWHY")
	for _, r := range recs {
		why := strings.Join(r.Reasons, "; ")
		if r.Cause != "" {
			why = string(r.Cause) + ": " + why
		}
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\n", r.Planned.In(rc.Location).Format("2006-01-02 15:04"), r.Site, r.Resident,
			r.Outcome, r.At.In(rc.Location).Format("15:04:05"), why)
	}
	return tw.Flush()
}
