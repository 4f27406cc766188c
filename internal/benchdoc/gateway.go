package benchdoc

import "fmt"

// The gateway's footprint budget (docs/raspberry-pi.md promises "under
// 25 MB"; a gateway shares a small board with other services): resident
// memory and CPU of one `vaka gateway` process with 20 simulated sensors.
const (
	GatewayRSSBudgetMB  = 25.0
	GatewayCPUBudgetPct = 1.0
)

const (
	benchFootprint = "BenchmarkIntegrationGatewayFootprint"
	benchSpool     = "BenchmarkSpoolPushPop"
	benchForward   = "BenchmarkGatewayForward"
)

// Gateway writes docs/benchmarks-gateway.md: the footprint budget of one
// gateway process (a budget: its report fails the run when exceeded) and
// the disk spool's write and forward throughput.
func Gateway(in Input) Report {
	var d doc
	d.header("Gateway benchmarks", "make bench-gateway", "gateway",
		"What one edge gateway costs, and how fast its disk spool writes and forwards. The hub's benchmarks are in "+
			"[benchmarks.md](benchmarks.md). A Raspberry Pi 4 with an SD card is slower on fsync than this machine (expect a few "+
			"hundred events/s through the spool, still far above what a home or a unit produces).", in)

	d.p("## Footprint: 20 simulated sensors\n\n")
	d.p("`%s` (cmd/vaka/gateway_footprint_test.go) builds `vaka` as a gateway is built (`-tags nocluster`: without the hub's redundancy, as `make build-pi`), starts a Mosquitto of its own on a loopback port and ", benchFootprint)
	d.p("runs `vaka gateway --config …` as its own process with 20 simulated devices (6 residents × bed mat, call button and room ")
	d.p("door, a corridor PIR and the exit door; every scenario – night wander, call button, bed exit – every 40 s, telemetry every ")
	d.p("20 s) and the disk spool on. After 5 s of start-up it samples `VmRSS` (`/proc/<pid>/status`) every second for the ")
	d.p("measured time (`VAKA_BENCH_GATEWAY`, default 60 s), then reads `VmHWM`, and computes CPU as the change in `utime + stime` ")
	d.p("(`/proc/<pid>/stat`, 100 ticks a second) over the wall time. A budget is a ceiling, so the verdicts use the worst run.\n\n")
	d.p("| run | measured s | VmRSS peak MB | VmHWM MB | CPU %% of one core | CPU ticks |\n|---|---:|---:|---:|---:|---:|\n")
	fp := in.Out.Select(benchFootprint, nil)
	for i, r := range fp {
		d.p("| %d | %s | %s | %s | %s | %s |\n", i+1, opt(r, "measured-s", scaled(1, 0)), opt(r, "rss-peak-MB", scaled(1, 1)),
			opt(r, "hwm-MB", scaled(1, 1)), opt(r, "cpu-pct", scaled(1, 3)), opt(r, "cpu-ticks", scaled(1, 0)))
	}
	if len(fp) == 0 {
		d.p("| no run | | | | | |\n")
	}
	d.p("\n")
	rss := Goal{Text: fmt.Sprintf("Resident memory ≤ %s MB (VmRSS peak and VmHWM, worst run)", num(GatewayRSSBudgetMB, 0)), Budget: true}
	cpu := Goal{Text: fmt.Sprintf("CPU ≤ %s %% of one core (worst run)", num(GatewayCPUBudgetPct, 0)), Budget: true}
	peak := append(fp.Values("rss-peak-MB"), fp.Values("hwm-MB")...)
	if len(peak) == 0 {
		rss.Detail = notMeasured(benchFootprint)
	} else {
		w := maxOf(peak)
		rss.State = cond(w <= GatewayRSSBudgetMB, Met, NotMet)
		rss.Detail = fmt.Sprintf("%s MB at most over %s", num(w, 1), runsNote(len(fp)))
	}
	if c := fp.Values("cpu-pct"); len(c) == 0 {
		cpu.Detail = notMeasured(benchFootprint)
	} else {
		w := maxOf(c)
		cpu.State = cond(w <= GatewayCPUBudgetPct, Met, NotMet)
		cpu.Detail = fmt.Sprintf("%s %% at most over %s", num(w, 3), runsNote(len(c)))
	}
	d.goal(rss)
	d.goal(cpu)
	d.p("It covers the gateway with the sim driver; the gpio, nmea and zigbee2mqtt drivers add one goroutine per pin, per serial ")
	d.p("port, or one MQTT client, each idle between events.\n\n")

	d.p("## Spool write and forward throughput\n\n")
	d.p("| benchmark | what | runs (events/s) | median events/s | median µs/op | B/op | allocs/op |\n|---|---|---|---:|---:|---:|---:|\n")
	for _, b := range []struct{ name, what string }{
		{benchSpool, "push one event (a checksummed record, **one fsync**), then pop it (a done record, no fsync)"},
		{benchForward, "`Publish` end to end: spool write with fsync, publish at QoS 1 to an embedded broker over loopback, wait for the PUBACK, done record"},
	} {
		rs := in.Out.Select(b.name, nil)
		v := rs.Values("events/s")
		d.p("| `%s` | %s | %s | %s | %s | %s | %s |\n", b.name, b.what, list(v, scaled(1, 0)), med(v, scaled(1, 0)),
			med(rs.Values("ns/op"), scaled(1e-3, 0)), med(rs.Values("B/op"), scaled(1, 0)), med(rs.Values("allocs/op"), scaled(1, 0)))
	}
	d.p("\nBoth are bound by the fsync per event, which is the point: an event is on disk before the gateway tries to send it. ")
	d.p("One event is in flight at a time, which keeps the order strict across reconnects.\n\n")
	d.p("The outage drain is a test, not a benchmark: `TestIntegrationHubOutageSpoolDeliversInOrder` (`go test -run HubOutage -v ./gateway/`) ")
	d.p("stops the broker for 20 s while sensors fire 200 events/s and logs how many events the spool held and how long it took to ")
	d.p("drain; it fails if any event is lost, duplicated after de-duplication or out of order.\n\n")
	return d.finish(in)
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = max(m, x)
	}
	return m
}
