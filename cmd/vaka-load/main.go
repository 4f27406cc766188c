// Command vaka-load measures Vaka's end-to-end alarm latency: a gateway
// event published over MQTT until its alarm is read on the staff stream
// (GET /api/v1/stream). It starts an in-process hub on loopback, a stream
// reader and G paho gateway publishers, and sends events open loop on a
// fixed schedule, so queueing delay counts. `make bench` runs it through
// scripts/bench.sh, which also turns the JSON results into
// docs/benchmarks.md with -report.
//
//	vaka-load -mode oneatatime [-n 1000]
//	vaka-load -mode rate -rate 1000 -duration 10s [-gateways 4] [-sync-each-write] [-out FILE.json]
//	vaka-load -mode ceiling -rate 5000 -duration 10s   (heartbeats, PUBACK only: generator + broker ceiling)
//	vaka-load -peer sink -mode ceiling -rate 50000 -duration 5s   (a trivial MQTT sink: the generator's own ceiling)
//	vaka-load -hub-bin ./vaka -pin-gen 1 -pin-sut 0 …   (the hub as its own `vaka hub` process, pinned apart)
//	vaka-load -peer vaka|mosquitto-ext|nodered …   (A: this hub; B: Mosquitto + the hub as external client;
//	                                               C: Mosquitto + Node-RED posting to an HTTP sink; see peers.go)
//	vaka-load -mode rate -rate 500 -duration 10s -stall   (a second alarm consumer stops reading)
//	vaka-load -mode rate -rate 20000 -duration 5s -knee 10ms   (exit status 3 over the knee)
//	vaka-load scaip -hub-bin ./vaka -mode rate -rate 1000 -duration 10s   (SCAIP alarms over SIP; scaip.go)
//	vaka-load -report [-gobench FILE] [-commands FILE] [-svg FILE] results/*.json > docs/benchmarks.md
//
// Every loop is bounded in count and time, and all traffic stays on loopback.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "supervise" {
		return runSupervise(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "storm" {
		return runStorm(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "scaip" {
		return runSCAIP(args[1:], stdout, stderr)
	}
	if len(args) == 1 && args[0] == "-serve-sink" {
		return serveSink(stdout)
	}
	if len(args) > 0 && args[0] == "-serve-nats" {
		return serveNATS(args[1:], stdout) // cluster.go
	}
	if len(args) > 0 && args[0] == "failover" {
		return runFailover(args[1:], stdout, stderr) // cluster.go
	}
	fs := flag.NewFlagSet("vaka-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.Mode, "mode", "rate", "oneatatime | rate | ceiling (heartbeats, PUBACK latency: the generator's and broker's ceiling)")
	fs.Float64Var(&o.Rate, "rate", 1000, "events per second (rate and ceiling modes)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send (rate and ceiling modes)")
	fs.IntVar(&o.N, "n", 1000, "events (oneatatime mode)")
	fs.IntVar(&o.Gateways, "gateways", 4, "gateway publishers (one MQTT connection each)")
	fs.IntVar(&o.AlarmEvery, "alarm-every", 1, "rate mode: only every Nth event is an alarm (above 1: call-button presses and exit doors opened at night, alternately); the rest are background motion reports that raise nothing (latency and loss are measured on the alarms)")
	fs.BoolVar(&o.SyncEachWrite, "sync-each-write", false, "store.sync_each_write: fsync the journal before every PUBACK")
	fs.DurationVar(&o.SyncEvery, "sync-every", 0, "store.sync_every: the journal's group-commit window (0: the hub's default)")
	fs.BoolVar(&o.BufferedReads, "buffered-reads", false, "-gen paho: wrap the publishers' connections in a bufio.Reader (paho reads each packet with several small reads)")
	fs.StringVar(&o.Gen, "gen", genRaw, "load generator: raw (own MQTT 3.1.1 QoS 1 encoder; every message due is written in one write per connection, PUBACKs read through a 64 KiB buffer) | paho (paho.mqtt.golang, one write per message)")
	fs.DurationVar(&o.Tick, "tick", 200*time.Microsecond, "-gen raw: wake at most this often to send (0: at every event's due time); events due meanwhile go out together, and the wait counts in the latency")
	fs.StringVar(&o.HubBin, "hub-bin", "", "run the hub (A, B) as its own process: this `vaka` binary with `hub --config` and a generated config (default: in this process)")
	fs.StringVar(&o.PinGen, "pin-gen", "", "pin this process (generator, stream reader) to these CPUs, e.g. 1 (taskset)")
	fs.StringVar(&o.PinSUT, "pin-sut", "", "pin the peer's processes (hub process, Mosquitto, Node-RED, sink) to these CPUs, e.g. 0 (taskset)")
	fs.BoolVar(&o.GoSleep, "go-sleep", false, "pace with time.Sleep instead of a timerfd (shows Go's timer lateness in the generator)")
	fs.StringVar(&o.DataParent, "data-parent", "", "directory for the temporary data dir (default $TMPDIR; /dev/shm takes fsync cost out)")
	fs.StringVar(&o.Dump, "dump", "", "write per-event times (CSV) to this file, to see where tails cluster")
	fs.StringVar(&o.Peer, "peer", peerVaka, "system under test: vaka (A: embedded broker, rules inline) | mosquitto-ext (B: Mosquitto, the hub as external client) | nodered (C: Mosquitto + Node-RED flow posting to an HTTP sink)")
	fs.StringVar(&o.NodeRED, "nodered-dir", ".cache/node-red", "where scripts/bench-deps.sh installed node-red "+nodeREDWant)
	fs.StringVar(&o.PinNATS, "pin-nats", "", "with -cluster: pin the NATS nodes' process to these CPUs instead of -pin-sut's, e.g. 1: the replicas off the hub's CPU, as on machines of their own")
	fs.IntVar(&o.Cluster, "cluster", 0, "with -hub-bin and -peer vaka: the hub's journal replicated on this many NATS JetStream nodes (3: a redundant group's quorum; cluster.go)")
	fs.BoolVar(&o.Stall, "stall", false, "stalled consumer: a second alarm consumer stops reading for the whole run (A, B: a staff stream; C: a second HTTP endpoint that never answers)")
	lagStatus := fs.Bool("lag-status", false, fmt.Sprintf("exit with status 4 if the generator's send lag p99 exceeded %.0f ms (the run measured the generator, not the peer: a script may run it again)", genLagValidMs))
	knee := fs.Duration("knee", 0, "exit with status 3 if p99 exceeds this or any alarm is lost or duplicated (the ramp stops a peer there)")
	fs.StringVar(&o.Label, "label", "", "free text stored with the result (e.g. run 1)")
	out := fs.String("out", "", "write the machine-readable result to this JSON file")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the measured phase")
	fs.StringVar(&o.HubProfile, "hub-cpuprofile", "", "with -hub-bin: write a CPU profile of the hub process during the measured phase to this file (VAKA_CPUPROFILE, SIGUSR1/SIGUSR2)")
	tracefile := fs.String("trace", "", "write a runtime execution trace of the measured phase")
	report := fs.Bool("report", false, "write docs/benchmarks.md (markdown) to stdout from the JSON result files given as arguments")
	gobench := fs.String("gobench", "", "with -report: `go test -bench` output to include")
	commands := fs.String("commands", "", "with -report: file listing the exact commands that were run")
	svg := fs.String("svg", "", "with -report: write the plot of p99 against offered rate (ramp runs) to this SVG file")
	svgLink := fs.String("svg-link", "benchmarks-ramp.svg", "with -report: how the report links the SVG")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *report {
		if err := writeReport(stdout, fs.Args(), *gobench, *commands, *svg, *svgLink); err != nil {
			fmt.Fprintln(stderr, "vaka-load:", err)
			return 1
		}
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "vaka-load: unexpected arguments:", strings.Join(fs.Args(), " "))
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "vaka-load:", err)
		return 2
	}
	o.Command = "vaka-load " + strings.Join(args, " ")
	if err := pinSelf(o.PinGen); err != nil {
		fmt.Fprintln(stderr, "vaka-load: -pin-gen:", err)
		return 1
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "vaka-load:", err)
			return 1
		}
		defer f.Close()
		o.startProfile = func() error { return pprof.StartCPUProfile(f) }
		o.stopProfile = pprof.StopCPUProfile
	}
	if *tracefile != "" {
		f, err := os.Create(*tracefile)
		if err != nil {
			fmt.Fprintln(stderr, "vaka-load:", err)
			return 1
		}
		defer f.Close()
		start, stop := o.startProfile, o.stopProfile
		o.startProfile = func() error {
			if start != nil {
				if err := start(); err != nil {
					return err
				}
			}
			return trace.Start(f)
		}
		o.stopProfile = func() {
			trace.Stop()
			if stop != nil {
				stop()
			}
		}
	}
	res, err := runBench(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vaka-load:", err)
		return 1
	}
	fmt.Fprintln(stdout, res.summary())
	overKnee := *knee > 0 && (res.Latency.P99 > float64(*knee)/1e6 || res.Lost > 0 || res.Duplicated > 0 || res.Aborted != "")
	if *out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "vaka-load:", err)
			return 1
		}
	}
	if overKnee {
		fmt.Fprintf(stdout, "knee: p99 over %v or loss\n", *knee)
		return 3
	}
	if *lagStatus && res.genLagged() {
		fmt.Fprintf(stdout, "generator lagged: send lag p99 %.2f ms over %.0f ms, the run is not valid\n", res.SendLag.P99, genLagValidMs)
		return 4
	}
	return 0
}

type options struct {
	// Cluster is -cluster: NATS nodes the hub's journal is replicated on
	// (0: the local journal).
	Cluster       int           `json:"cluster,omitempty"`
	PinNATS       string        `json:"pin_nats,omitempty"`
	Mode          string        `json:"mode"`
	Rate          float64       `json:"rate"`
	Duration      time.Duration `json:"duration_ns"`
	N             int           `json:"n"`
	Gateways      int           `json:"gateways"`
	AlarmEvery    int           `json:"alarm_every,omitempty"`
	SyncEachWrite bool          `json:"sync_each_write"`
	SyncEvery     time.Duration `json:"sync_every_ns,omitempty"`
	BufferedReads bool          `json:"buffered_reads"`
	GoSleep       bool          `json:"go_sleep,omitempty"`
	DataParent    string        `json:"data_parent,omitempty"`
	Dump          string        `json:"-"`
	Label         string        `json:"label,omitempty"`
	Peer          string        `json:"peer"`
	Gen           string        `json:"gen"`
	Tick          time.Duration `json:"tick_ns,omitempty"`
	HubBin        string        `json:"hub_bin,omitempty"`
	PinGen        string        `json:"pin_gen,omitempty"`
	PinSUT        string        `json:"pin_sut,omitempty"`
	NodeRED       string        `json:"-"`
	Stall         bool          `json:"stall,omitempty"`
	Command       string        `json:"command"`
	HubProfile    string        `json:"hub_cpuprofile,omitempty"`

	startProfile func() error
	stopProfile  func()
}

// Bounds keep every run finite and the generated config sane.
const (
	maxEvents   = 1_000_000
	maxGateways = 64
	maxRate     = 100_000
	maxDuration = 5 * time.Minute
	drainWait   = 5 * time.Second  // an alarm later than this after the end counts as lost
	maxBehind   = 10 * time.Second // the sender gives up when this far behind its schedule
)

func (o *options) check() error {
	if o.Cluster != 0 && (o.Cluster < 1 || o.Cluster > 5 || o.HubBin == "" || o.Peer != peerVaka) {
		return errors.New("-cluster: 1 to 5 NATS nodes, with -hub-bin and -peer vaka")
	}
	switch o.Mode {
	case "oneatatime":
		if o.N < 1 || o.N > maxEvents {
			return fmt.Errorf("-n must be 1..%d", maxEvents)
		}
	case "rate", "ceiling":
		if o.Rate <= 0 || o.Rate > maxRate {
			return fmt.Errorf("-rate must be in (0, %d]", maxRate)
		}
		if o.Duration <= 0 || o.Duration > maxDuration {
			return fmt.Errorf("-duration must be in (0, %v]", maxDuration)
		}
		n := int(o.Rate * o.Duration.Seconds())
		if n < 1 || n > maxEvents {
			return fmt.Errorf("rate × duration must give 1..%d events, not %d", maxEvents, n)
		}
		o.N = n
	default:
		return errors.New("-mode must be oneatatime, rate or ceiling")
	}
	if o.AlarmEvery < 1 || o.AlarmEvery > 100000 || (o.AlarmEvery > 1 && o.Mode != "rate") {
		return errors.New("-alarm-every must be 1..100000, and above 1 only in rate mode")
	}
	if !slices.Contains(peerNames, o.Peer) {
		return fmt.Errorf("-peer must be one of %s", strings.Join(peerNames, ", "))
	}
	if o.Peer == peerNodeRED && o.Mode == "ceiling" {
		return errors.New("-mode ceiling times the hub's PUBACK; use it with -peer vaka, mosquitto-ext or sink")
	}
	if o.Peer == peerSink && o.Mode != "ceiling" {
		return errors.New("-peer sink only acknowledges: use it with -mode ceiling (the generator's own ceiling)")
	}
	if o.Gen == "" {
		o.Gen = genRaw
	}
	if o.Gen != genRaw && o.Gen != genPaho {
		return errors.New("-gen must be raw or paho")
	}
	if o.Tick < 0 || o.Tick > time.Second {
		return errors.New("-tick must be 0..1s")
	}
	if o.PinNATS != "" && o.Cluster == 0 {
		return errors.New("-pin-nats needs -cluster")
	}
	for _, c := range []string{o.PinGen, o.PinSUT, o.PinNATS} {
		if c == "" {
			continue
		}
		if _, _, err := parseCPUs(c); err != nil {
			return err
		}
		if _, err := exec.LookPath("taskset"); err != nil {
			return errors.New("-pin-gen/-pin-sut/-pin-nats need taskset (util-linux)")
		}
	}
	if o.HubBin != "" {
		if _, err := os.Stat(o.HubBin); err != nil {
			return fmt.Errorf("-hub-bin: %w", err)
		}
	}
	if o.HubProfile != "" && (o.HubBin == "" || o.Peer != peerVaka) {
		return errors.New("-hub-cpuprofile needs -hub-bin and -peer vaka (the hub as its own process)")
	}
	if o.Gateways < 1 || o.Gateways > maxGateways {
		return fmt.Errorf("-gateways must be 1..%d", maxGateways)
	}
	return nil
}
