package main

import (
	"bytes"
	"fmt"
)

// clusterGoalMs is issue 19's goal: alarm p99 at 1,000 events/s with the
// journal on 3 replicas.
const clusterGoalMs = 5.0

// writeClusterSummary writes the "Redundant group: alarm latency" section:
// each scenario run with -cluster beside the same scenario on the single
// hub (local journal), medians of their rounds. Nothing when no run used
// -cluster.
func writeClusterSummary(out *bytes.Buffer, groups []*group) {
	p := func(format string, a ...any) { fmt.Fprintf(out, format, a...) }
	header := false
	shown := map[*group]bool{} // a single hub's row once, beside its first replicated setup
	for _, g := range groups {
		if g.o.Cluster == 0 || len(g.runs) == 0 {
			continue
		}
		var single *group
		for _, s := range groups {
			if s.o.Cluster == 0 && s.o.Mode == g.o.Mode && s.o.Rate == g.o.Rate && s.o.Duration == g.o.Duration &&
				s.o.AlarmEvery == g.o.AlarmEvery && s.o.Gateways == g.o.Gateways && !s.o.Stall && s.o.SyncEvery == 0 &&
				byPeerCount(s, peerVaka) > 0 {
				single = s
				break
			}
		}
		if !header {
			header = true
			p("## Redundant group: alarm latency (issue 19)\n\n")
			p("The hub (A) with its journal on a NATS JetStream stream with 3 replicas (`cluster:`, docs/scale-out.md): every transition acknowledged by a quorum ")
			p("before the event's PUBACK. The three NATS nodes run in one child process of vaka-load (`-serve-nats`), pinned with the hub, so their CPU is the peer's; ")
			p("on one machine the replicas share its cores and disk. ")
			if anyNATSApart(groups) {
				p("A setup \"NATS off the hub's CPU\" pins them to another CPU (`-pin-nats`): in a real group the active hub's machine ")
				p("carries one follower node and the others run on machines of their own. ")
			}
			p("Medians of the rounds above; the single hub is the same scenario with its local journal. ")
			p("**journal msgs/event**: stream messages (one quorum round trip each) per event sent; below 1 when events handled at the same time share one (hub/pending.go).\n\n")
			p("| scenario | setup | p50 | p99 | max | lost | dup | CPU µs/event peer | journal msgs/event |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		}
		row := func(name, setup string, s *group) {
			pg := &group{runs: byPeer(s.runs, peerVaka)}
			msgs := "–"
			if m := pg.med(func(r *Result) float64 { return r.JournalMsgsPerEvent }); s.o.Cluster > 0 && m > 0 {
				msgs = fmt.Sprintf("%.2f", m) // 0: a result from before vaka-load counted them
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %.1f | %s |\n", name, setup, ms(pg.med(func(r *Result) float64 { return r.Latency.P50 })),
				ms(pg.p99()), ms(pg.med(func(r *Result) float64 { return r.Latency.Max })),
				count(pg.medInt(func(r *Result) int { return r.Lost })), count(pg.medInt(func(r *Result) int { return r.Duplicated })),
				pg.med(func(r *Result) float64 { return r.SUTCPUPerEventUs }), msgs)
		}
		name := fmt.Sprintf("%g events/s", g.o.Rate)
		if g.o.AlarmEvery > 1 {
			name += fmt.Sprintf(", 1 in %d an alarm", g.o.AlarmEvery)
		}
		if single != nil && !shown[single] {
			shown[single] = true
			row(name, "single hub", single)
		}
		row(name, clusterSetup(g.o), g)
	}
	if !header {
		return
	}
	p("\n")
	for _, g := range groups {
		if g.o.Cluster != 3 || g.o.Rate != 1000 || g.o.AlarmEvery > 1 || g.o.Mode != "rate" {
			continue
		}
		pg := &group{runs: byPeer(g.runs, peerVaka)}
		v := "met"
		if pg.p99() > clusterGoalMs {
			v = "**not met**"
		}
		p("Goal (issue 19): alarm p99 ≤ %.0f ms at 1,000 events/s with %s: %s (median p99 %s ms, runs: %d).\n\n", clusterGoalMs, clusterSetup(g.o), v, ms(pg.p99()), len(pg.runs))
	}
}

// anyNATSApart reports whether a replicated run had its NATS nodes apart.
func anyNATSApart(groups []*group) bool {
	for _, g := range groups {
		if g.o.Cluster > 0 && g.o.natsApart() {
			return true
		}
	}
	return false
}

// clusterSetup names a replicated run's setup in the table and the goal.
func clusterSetup(o options) string {
	s := fmt.Sprintf("%d replicas", o.Cluster)
	if o.natsApart() {
		s += ", NATS off the hub's CPU"
	}
	return s
}

func byPeerCount(g *group, pn string) int { return len(byPeer(g.runs, pn)) }

// rampClusterLabel marks the redundant group's ramp steps (make
// bench-cluster): every event a care alarm, the journal on 3 replicas.
const rampClusterLabel = "ramp-cluster"

// writeClusterRamp writes the "Redundant group: ramp" section: each step
// (every run, retries included) and the knee, the first rate where every
// run of the step was over kneeMs p99 or lost or duplicated an alarm.
// Nothing without ramp runs.
func writeClusterRamp(out *bytes.Buffer, rs []*Result) {
	if len(rs) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(out, format, a...) }
	p("## Redundant group: ramp (issue 19)\n\n")
	p("The hub with its journal on %s, every event a care alarm (a call-button press on a button of its own), ", clusterSetup(rs[0].Options))
	p("5 s a step, rising until the knee: the first step with p99 over %.0f ms or an alarm lost or duplicated in every run of it ", kneeMs)
	p("(a step over it runs once more: a burst of other work on a shared machine is not a knee). Each step starts after `settle`. ")
	p("**other work** is CPU the rest of the machine took meanwhile (the host's steal included): a step beside much of it measures the machine, not the group.\n\n")
	p("| offered/s | achieved/s | p50 | p99 | max | alarms | lost | dup | CPU µs/event peer | journal msgs/event | send lag p99 | other work |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		p("| %.0f%s | %s | %s | %s | %s | %d | %d | %d | %s | %.2f | %s | %.0f%% |\n", r.OfferedRate, notes(r), rate(r),
			ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.Max), r.Received+r.Lost, r.Lost, r.Duplicated, peerCPU(r),
			r.JournalMsgsPerEvent, ms(r.SendLag.P99), r.OtherCPUPct)
	}
	k, top := knee(rs, peerVaka)
	p("\n")
	switch {
	case k > 0:
		p("Knee: **%.0f alarms/s** (%s).\n\n", k, lastClean(top))
	default:
		p("No knee within the steps run (%s).\n\n", lastClean(top))
	}
}
