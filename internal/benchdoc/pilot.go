package benchdoc

import "fmt"

// Pilot goal: the exporter keeps up with a whole municipality's sensors
// with room to spare: at least 100,000 points/s into InfluxDB 1.8.10 on
// this machine (median of the runs), none dropped.
const PilotPointsGoal = 100000

const (
	benchPoints    = "BenchmarkIntegrationInfluxPointsPerSecond"
	benchPoints1   = "BenchmarkIntegrationInfluxPointsPerSecondOneWriter"
	benchObserve   = "BenchmarkObserveEvent"
	benchUpVsDown  = "BenchmarkIntegrationAlarmPathInfluxUpVsDown"
	pilotBenchFile = "pilot/influx/bench_test.go"
)

// Pilot writes docs/benchmarks-pilot.md: the pilot export into a real
// InfluxDB 1.8.10 (points/s), its cost on the alarm path, and the alarm
// path's latency with InfluxDB running and stopped.
func Pilot(in Input) Report {
	var d doc
	d.header("Benchmarks: pilot export to InfluxDB", "make bench-pilot", "pilot",
		"InfluxDB 1.8.10 (built by `make test-deps` into `.cache/bin`) runs on loopback with its default storage settings and its "+
			"data in a temp dir, on the same cores as the exporter; most of the CPU of the points/s runs is influxd's own ingest.", in)

	d.p("## Sustained points/s from the hub's observer into InfluxDB\n\n")
	d.p("`%s` (%s): b.N `vaka_event` points offered through `Exporter.ObserveEvent` (the producer waits only when the ", benchPoints, pilotBenchFile)
	d.p("queue is 90 %% full), through the durable spool, posted to `/api/v2/write` in batches with two batches in flight, timed until ")
	d.p("InfluxDB has answered for all of them; then a Flux `count()` checks that every point is there and none was dropped (the ")
	d.p("benchmark fails otherwise). `…OneWriter` is the same with one write in flight, to compare.\n\n")
	d.p("| benchmark | points per run | runs (points/s) | median points/s | runs ≥ %s/s |\n|---|---:|---|---:|---:|\n", num(PilotPointsGoal, 0))
	var main []float64
	for _, name := range []string{benchPoints, benchPoints1} {
		rs := in.Out.Select(name, nil)
		v := rs.Values("points/s")
		n := "–"
		if len(rs) > 0 {
			n = num(float64(rs[0].N), 0)
		}
		above := 0
		for _, x := range v {
			if x >= PilotPointsGoal {
				above++
			}
		}
		d.p("| `%s` | %s | %s | %s | %d of %d |\n", name, n, list(v, scaled(1, 0)), med(v, scaled(1, 0)), above, len(v))
		if name == benchPoints {
			main = v
		}
	}
	d.p("\n")
	g := Goal{Text: fmt.Sprintf("At least %s points/s into InfluxDB with none dropped (median of the runs, two writes in flight)", num(PilotPointsGoal, 0))}
	if len(main) == 0 {
		g.Detail = notMeasured(benchPoints)
	} else {
		m := Median(main)
		g.State = cond(m >= PilotPointsGoal, Met, NotMet)
		g.Detail = fmt.Sprintf("median %s points/s over %s (%s)", num(m, 0), runsNote(len(main)), list(main, scaled(1, 0)))
	}
	d.goal(g)

	d.p("## Cost on the alarm path\n\n")
	d.p("`%s`: one `ObserveEvent` (copy the event, non-blocking channel send) with the pump and writer running beside it ", benchObserve)
	d.p("and a sink that discards. It offers far faster than the pump drains, so most calls take the \"queue full: count and drop\" ")
	d.p("path (the *dropped* column: benchmark traffic, not alarms); ns/op is wall time, so it also shows how much CPU the pump ")
	d.p("leaves the producer.\n\n")
	d.p("| run | ns/op | B/op | allocs/op | dropped |\n|---|---:|---:|---:|---:|\n")
	obs := in.Out.Select(benchObserve, nil)
	for i, r := range obs {
		d.p("| %d | %s | %s | %s | %s |\n", i+1, opt(r, "ns/op", scaled(1, 1)), opt(r, "B/op", scaled(1, 0)),
			opt(r, "allocs/op", scaled(1, 0)), opt(r, "dropped", scaled(1, 0)))
	}
	if len(obs) > 1 {
		d.p("| **median** of %d | %s | %s | %s | %s |\n", len(obs), med(obs.Values("ns/op"), scaled(1, 1)),
			med(obs.Values("B/op"), scaled(1, 0)), med(obs.Values("allocs/op"), scaled(1, 0)), med(obs.Values("dropped"), scaled(1, 0)))
	}
	if len(obs) == 0 {
		d.p("| no run | | | | |\n")
	}
	d.p("\n")

	d.p("## Alarm-path latency with InfluxDB running vs stopped\n\n")
	d.p("`%s`: one `ObserveEvent` + one `ObserveTransition` (what the hub calls per event and per transition) at 5,000/s, ", benchUpVsDown)
	d.p("b.N samples (at least 20,000) with InfluxDB running, then InfluxDB stopped (the writer failing and backing off, the spool ")
	d.p("growing), in the same run. Times in µs; *dropped* counts observer calls the exporter dropped.\n\n")
	d.p("| run | up p50 | up p99 | up max | down p50 | down p99 | down max | dropped |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	ud := in.Out.Select(benchUpVsDown, nil)
	us := scaled(1e-3, 2)
	units := []string{"up-p50-ns", "up-p99-ns", "up-max-ns", "down-p50-ns", "down-p99-ns", "down-max-ns"}
	for i, r := range ud {
		d.p("| %d ", i+1)
		for _, u := range units {
			d.p("| %s ", opt(r, u, us))
		}
		d.p("| %s |\n", opt(r, "dropped", scaled(1, 0)))
	}
	if len(ud) > 1 {
		d.p("| **median** of %d ", len(ud))
		for _, u := range units {
			d.p("| %s ", med(ud.Values(u), us))
		}
		d.p("| %s |\n", med(ud.Values("dropped"), scaled(1, 0)))
	}
	if len(ud) == 0 {
		d.p("| no run | | | | | | | |\n")
	}
	d.p("\n")
	g = Goal{Text: "Nothing dropped on the alarm path while InfluxDB is stopped (every run)"}
	if dr := ud.Values("dropped"); len(dr) == 0 {
		g.Detail = notMeasured(benchUpVsDown)
	} else {
		sum := 0.0
		for _, x := range dr {
			sum += x
		}
		g.State = cond(sum == 0, Met, NotMet)
		g.Detail = fmt.Sprintf("%s dropped in all %s", num(sum, 0), runsNote(len(dr)))
		if up, down := ud.Values("up-p50-ns"), ud.Values("down-p50-ns"); len(up) > 0 && len(down) > 0 {
			g.Detail += fmt.Sprintf("; median p50 %s µs running, %s µs stopped", num(Median(up)/1e3, 2), num(Median(down)/1e3, 2))
		}
	}
	d.goal(g)
	d.p("The outage itself is a test, not a benchmark: `TestIntegrationInfluxOutageLosesNothing` (`go test -run InfluxOutage -v ./pilot/influx/`) ")
	d.p("stops InfluxDB while points keep coming and checks that every point is in InfluxDB after it is back.\n\n")
	return d.finish(in)
}
