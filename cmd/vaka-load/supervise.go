package main

// The supervised-fleet scenario (issue 7, "250,000 supervised devices"):
// the hub supervises a region's call buttons, each sending a radio test
// every -beat, while a few residents press their button. Some buttons fall
// silent part-way; each must raise its device_silent alarm (SCAIP 0123,
// radio test missing) on the staff stream close to its deadline (last radio
// test + the supervision period), no button that keeps beating may raise
// one, and the presses must still reach the staff screen quickly. It also
// reports what the fleet costs the hub: heap, start-up time, CPU.
//
//	vaka-load supervise [-devices 250000] [-gateways 500] [-beat 60s] [-silent 100] [-press-rate 5] [-out FILE.json]
//
// Devices are spread over the gateways' MQTT connections (a home's alarm
// unit or a unit's gateway reports many buttons): this measures 250,000
// supervised devices, not 250,000 TCP connections.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/freeport"
	"github.com/vaka-care/vaka/service"
)

type supOptions struct {
	Devices   int           `json:"devices"`
	Gateways  int           `json:"gateways"`
	Beat      time.Duration `json:"beat_ns"`
	Grace     time.Duration `json:"grace_ns"`
	Silent    int           `json:"silent"`
	StopAt    time.Duration `json:"stop_at_ns"`
	PressRate float64       `json:"press_rate"`
	// The storm (storm.go): the silent buttons' last radio tests spread
	// over Spread; from AllAt on the rest of the fleet falls silent too
	// (over Spread); the presses go to PressButtons more buttons that keep
	// beating; Notify routes every alarm to the staff user.
	Spread       time.Duration `json:"spread_ns,omitempty"`
	AllAt        time.Duration `json:"all_at_ns,omitempty"`
	PressButtons int           `json:"press_buttons,omitempty"`
	Notify       bool          `json:"notify,omitempty"`
	Storm        bool          `json:"storm,omitempty"`
	Label        string        `json:"label,omitempty"`
	Command      string        `json:"command"`

	HubBin string `json:"hub_bin,omitempty"`
	PinGen string `json:"pin_gen,omitempty"`
	PinSUT string `json:"pin_sut,omitempty"`

	// WriteEvery is each gateway connection's write interval (its radio
	// tests due meanwhile go out in one write); 0: writeInterval's default.
	WriteEvery time.Duration `json:"write_every_ns,omitempty"`

	memprofile string
	pressDump  string // -press-dump: one CSV line per press
}

// SupResult is the machine-readable result of one supervise run.
type SupResult struct {
	Scenario string     `json:"scenario"`
	Options  supOptions `json:"options"`
	Machine  machine    `json:"machine"`
	Started  time.Time  `json:"started"`

	LoadSeconds  float64 `json:"config_load_s"`  // write and load the YAML and the CSV inventory (config.Load)
	StartSeconds float64 `json:"start_s"`        // service.Start with the fleet's config
	HeapMiB      float64 `json:"hub_heap_mib"`   // live heap the started hub added (after GC)
	PeakRSSMiB   float64 `json:"peak_rss_mib"`   // the hub process's high-water RSS (in-process: hub and generator)
	HubCPU       float64 `json:"hub_cpu_per_s"`  // -hub-bin: the hub process's CPU seconds per wall second
	ConnectSecs  float64 `json:"connect_s"`      // all gateways connected
	RunSeconds   float64 `json:"run_s"`          // measured phase
	Beats        int64   `json:"beats"`          // radio tests published
	BeatsPerSec  float64 `json:"beats_per_s"`    // achieved
	PubErrors    int64   `json:"publish_errors"` // PUBACK missing or refused
	CPUPerSecond float64 `json:"cpu_per_s"`      // process CPU seconds per wall second (2 = both cores)
	CPUPerEvent  float64 `json:"cpu_us_per_event"`

	Detected     int      `json:"detected"`     // silent buttons whose alarm arrived
	Missed       int      `json:"missed"`       // silent buttons with no alarm by the end
	FalseAlarms  int      `json:"false_alarms"` // device_silent for a button that kept beating
	DetectP50    float64  `json:"detect_p50_s"` // alarm on stream − deadline (last beat + period)
	DetectMax    float64  `json:"detect_max_s"`
	DetectEarly  int      `json:"detect_early"` // raised before the deadline (must be 0)
	Presses      int      `json:"presses"`
	PressesLost  int      `json:"presses_lost"`
	PressLatency pct      `json:"press_latency_ms"`
	SlowPresses  []string `json:"slow_presses,omitempty"` // "at 12.3 s: 450 ms": the 10 slowest over 20 ms
	// The generator's own part (stormgen.go), so a reader can tell it from
	// the hub's: PressSendLag is scheduled → written; PressHub written →
	// read on the stream; PressToRaise written → the alarm's raised_at;
	// PressRaiseToScreen raised_at → read on the stream (journal, notify,
	// stream, and the reader in this process). RadioLag is each fleet
	// write's lateness against its slot; GenSchedP99Ms how long this
	// process's runnable goroutines waited for its processor (p99).
	PressSendLag       pct     `json:"press_send_lag_ms"`
	PressHub           pct     `json:"press_hub_ms"`
	PressToRaise       pct     `json:"press_to_raise_ms"`
	PressRaiseToScreen pct     `json:"press_raise_to_screen_ms"`
	RadioLag           pct     `json:"radio_write_lag_ms"`
	WriteEveryMs       float64 `json:"write_every_ms"`
	GenSchedP99Ms      float64 `json:"gen_sched_p99_ms"`
	GenSchedMaxMs      float64 `json:"gen_sched_max_ms"`
	GenCPU             float64 `json:"gen_cpu_per_s"` // this process's CPU seconds per wall second
	GenError           string  `json:"gen_error,omitempty"`
	// How long each process's threads waited, runnable, while the kernel
	// ran other processes on their CPUs (schedstat): seconds per second
	// over the run, and the worst one-second window in ms. Not zero on a
	// shared machine; a press slow while the hub waited there waited for
	// the machine.
	GenRunWait      float64 `json:"gen_run_wait_per_s"`
	HubRunWait      float64 `json:"hub_run_wait_per_s"`
	GenRunWaitMaxMs float64 `json:"gen_run_wait_max_ms_per_s"`
	HubRunWaitMaxMs float64 `json:"hub_run_wait_max_ms_per_s"`
	// GenValid: the generator kept its schedule (press send lag p99 ≤
	// genLagValidMs, every fleet write within one write interval of its
	// slot, no write error), so the press figures are the hub's.
	GenValid     bool    `json:"gen_valid"`
	GenNote      string  `json:"gen_note,omitempty"`
	StreamCut    string  `json:"stream_cut,omitempty"`
	MochiDropped float64 `json:"mochi_dropped"`
	Verdict      string  `json:"verdict"`

	// Storm figures (storm.go), from the staff stream and the hub's /metrics.
	Storm *StormFigures `json:"storm,omitempty"`
}

const (
	maxFleet     = 1_000_000
	maxFleetGW   = 2_000
	supSite      = site
	supPressBase = "press-"
)

func runSupervise(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vaka-load supervise", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o supOptions
	fs.IntVar(&o.Devices, "devices", 250_000, "supervised call buttons")
	fs.IntVar(&o.Gateways, "gateways", 500, "MQTT connections the buttons report through")
	fs.DurationVar(&o.Beat, "beat", 60*time.Second, "radio test interval of every button")
	fs.DurationVar(&o.Grace, "grace", 10*time.Second, "supervision period = beat + grace")
	fs.IntVar(&o.Silent, "silent", 100, "buttons that stop sending radio tests at -stop-at")
	fs.DurationVar(&o.StopAt, "stop-at", 10*time.Second, "when the silent buttons send their last radio test")
	fs.Float64Var(&o.PressRate, "press-rate", 5, "call-button presses per second on other buttons (alarm latency under the fleet's traffic)")
	fs.StringVar(&o.Label, "label", "", "free text stored with the result")
	out := fs.String("out", "", "write the machine-readable result to this JSON file")
	tracefile := fs.String("trace", "", "write a runtime execution trace of the whole run")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (with the hub in this process, both show)")
	fs.StringVar(&o.HubBin, "hub-bin", "", "run the hub as its own process, this `vaka` binary with hub --config (as in production; default: in this process)")
	fs.StringVar(&o.PinGen, "pin-gen", "", "pin this process (generator, stream reader) to these CPUs, e.g. 1 (taskset)")
	fs.StringVar(&o.PinSUT, "pin-sut", "", "with -hub-bin: pin the hub process to these CPUs, e.g. 0")
	fs.DurationVar(&o.WriteEvery, "write-every", 0, "each gateway connection writes the radio tests due once per this, in one write, the connections staggered evenly (0: min(1s, beat/10, grace/4))")
	fs.StringVar(&o.memprofile, "memprofile", "", "write a heap profile of the started hub (before any load)")
	report := fs.Bool("report", false, "write the markdown section of docs/benchmarks.md from the JSON result files given as arguments")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *report {
		if err := writeSupReport(stdout, fs.Args()); err != nil {
			fmt.Fprintln(stderr, "vaka-load supervise:", err)
			return 1
		}
		return 0
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "vaka-load supervise:", err)
		return 2
	}
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "vaka-load supervise:", err)
			return 1
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintln(stderr, "vaka-load supervise:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *tracefile != "" {
		tf, err := os.Create(*tracefile)
		if err != nil {
			fmt.Fprintln(stderr, "vaka-load supervise:", err)
			return 1
		}
		defer tf.Close()
		if err := trace.Start(tf); err != nil {
			fmt.Fprintln(stderr, "vaka-load supervise:", err)
			return 1
		}
		defer trace.Stop()
	}
	o.Command = "vaka-load supervise " + strings.Join(args, " ")
	return runFleet("supervise", o, *out, stdout, stderr, (*SupResult).summary)
}

// runFleet runs the supervised-fleet scenario (supervise, or the storm
// that is built on it), prints its summary, writes the JSON result to out
// if set, and returns the exit code: 3 when a goal was not met.
func runFleet(name string, o supOptions, out string, stdout, stderr io.Writer, summary func(*SupResult) string) int {
	if err := pinSelf(o.PinGen); err != nil {
		fmt.Fprintf(stderr, "vaka-load %s: -pin-gen: %v\n", name, err)
		return 1
	}
	res, err := superviseRun(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vaka-load %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintln(stdout, summary(res))
	if out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "vaka-load %s: %v\n", name, err)
			return 1
		}
	}
	if res.Verdict != "ok" {
		return 3
	}
	return 0
}

func (o *supOptions) check() error {
	switch {
	case o.Devices < 1 || o.Devices > maxFleet:
		return fmt.Errorf("-devices must be 1..%d", maxFleet)
	case o.Gateways < 1 || o.Gateways > maxFleetGW || o.Gateways > o.Devices:
		return fmt.Errorf("-gateways must be 1..%d and at most -devices", maxFleetGW)
	case o.Beat < time.Second || o.Beat > 10*time.Minute:
		return errors.New("-beat must be 1s..10m")
	case o.Beat+o.Grace < 10*time.Second:
		return errors.New("-beat + -grace must be at least 10s (the hub's least supervision period)")
	case o.Silent < 0 || o.Silent > o.Devices/2:
		return errors.New("-silent must be 0..devices/2")
	case o.StopAt < 0 || o.StopAt > 5*time.Minute:
		return errors.New("-stop-at must be 0..5m")
	case o.PressRate < 0 || o.PressRate > 1000:
		return errors.New("-press-rate must be 0..1000")
	case o.WriteEvery < 0 || o.WriteEvery > 0 && (o.WriteEvery < time.Millisecond || o.WriteEvery > o.Beat/2):
		return errors.New("-write-every must be 0 (default) or 1ms..beat/2")
	case float64(o.Devices)/o.Beat.Seconds() > maxRate:
		return fmt.Errorf("devices/beat must stay under %d radio tests per second", maxRate)
	}
	return o.checkStorm()
}

func (r *SupResult) summary() string {
	return fmt.Sprintf("%s: %d devices on %d gateways, beat %v: %.0f radio tests/s, hub heap %.0f MiB, config load %.1f s, start %.1f s, CPU %.2f cores (%.1f µs/event); "+
		"silent %d: detected %d, missed %d, early %d, false %d, detection after deadline p50 %.2f s max %.2f s; presses %d lost %d p50 %.3g ms p99 %.3g ms: %s",
		r.Scenario, r.Options.Devices, r.Options.Gateways, r.Options.Beat, r.BeatsPerSec, r.HeapMiB, r.LoadSeconds, r.StartSeconds,
		r.CPUPerSecond, r.CPUPerEvent, r.Options.Silent, r.Detected, r.Missed, r.DetectEarly, r.FalseAlarms,
		r.DetectP50, r.DetectMax, r.Presses, r.PressesLost, r.PressLatency.P50, r.PressLatency.P99, r.Verdict)
}

// fleetDevice is button i's id; it reports through gateway i % G.
func fleetDevice(i int) string { return "k" + strconv.Itoa(i) }

// fleetConfig writes the fleet's config the way a region would keep it,
// the gateways in YAML and the buttons in a CSV inventory
// (sites[].devices_file), and loads it through the hub's strict loader.
func fleetConfig(o supOptions, dir, mqttAddr, httpAddr string) (string, *hub.Config, error) {
	gwHash, err := bcrypt.GenerateFromPassword([]byte(gwPass), bcrypt.MinCost)
	if err != nil {
		return "", nil, err
	}
	userHash, err := bcrypt.GenerateFromPassword([]byte(staffPass), bcrypt.MinCost)
	if err != nil {
		return "", nil, err
	}
	var y bytes.Buffer
	// Every gateway connects from 127.0.0.1 here; in a region each has an
	// address of its own, so the per-address limit (issue 12) is raised
	// to the fleet's gateways, never above max_connections.
	perAddr := o.fleetGateways() + 64
	fmt.Fprintf(&y, "data_dir: %s\ntimezone: Europe/Stockholm\nmqtt: {tcp: %q, limits: {max_connections: %d, max_connections_per_address: %d}}\nhttp: {address: %q}\n",
		filepath.Join(dir, "data"), mqttAddr, max(4096, perAddr), perAddr, httpAddr)
	fmt.Fprintf(&y, "users:\n  - {username: %s, name: Bench Staff, role: staff, password_hash: %q}\n", staffUser, userHash)
	fmt.Fprintf(&y, "sites:\n  - id: %s\n    name: Region\n    night: {start: \"22:00\", end: \"06:30\"}\n", supSite)
	fmt.Fprintf(&y, "    units: [{id: hemtjanst, name: Hemtjänst}]\n    supervision: {personal_trigger: %s}\n", o.Beat+o.Grace)
	fmt.Fprintf(&y, "    devices_file: inventory.csv\n    gateways:\n")
	// In the storm the press buttons report through a gateway of their own
	// (fleetGateways), so presses never share a connection with the fleet.
	for g := range o.fleetGateways() {
		fmt.Fprintf(&y, "      - {id: %s, password_hash: %q, heartbeat: 1h}\n", gatewayID(g), gwHash)
	}
	c := bytes.NewBufferString("gateway,id,type,resident,unit\n")
	for i := range o.Devices + o.PressButtons {
		fmt.Fprintf(c, "%s,%s,personal_trigger,r%d,hemtjanst\n", gatewayID(o.gatewayOf(i)), fleetDevice(i), i)
	}
	if o.Notify {
		// Every alarm to the staff user: what a storm costs in notifications.
		fmt.Fprintf(&y, "routing:\n  receivers:\n    - {name: personal, users: [%s]}\n  route: {receiver: personal}\n", staffUser)
	}
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, y.Bytes(), 0o600); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.csv"), c.Bytes(), 0o600); err != nil {
		return "", nil, err
	}
	var cfg hub.Config
	if err := config.Load(path, &cfg); err != nil {
		return "", nil, err
	}
	return path, &cfg, nil
}

// fleet is one supervise run's shared state.
type fleet struct {
	o    supOptions
	base time.Time

	lastBeat   []atomic.Int64 // per silent button: ns of its last radio test
	silentSeen []atomic.Int64 // per silent button: ns its alarm arrived
	falseAlarm atomic.Int64
	falseSeen  map[int]bool   // stream reader only: buttons counted in falseAlarm from group frames
	pressSched []int64        // per press: scheduled ns
	pressRecv  []atomic.Int64 // per press: ns its alarm arrived
	pressSent  []int64        // per press: ns the generator published it
	// pressRaised: per press, ns of its alarm's raised_at (the hub's clock
	// when its rules raised it), to split the hub's part in two.
	pressRaised []atomic.Int64
	beats       atomic.Int64
	pubErrs     atomic.Int64
	streamEnd   atomic.Pointer[string]
	cards       *cardCount // the storm: alarms staff see (storm.go)
	groups      groupFrames
	memberMu    sync.Mutex // memberSeen: the stream reader and the end-of-run fetch
}

func (f *fleet) now() int64 { return int64(time.Since(f.base)) }

func superviseRun(o supOptions, logw io.Writer) (*SupResult, error) {
	res := &SupResult{Scenario: "supervised fleet", Options: o, Machine: machineInfo(), Started: time.Now().UTC()}
	tmp, err := os.MkdirTemp("", "vaka-supervise-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	mqttAddr, httpAddr := "127.0.0.1:0", "127.0.0.1:0"
	if o.HubBin != "" {
		if mqttAddr, err = freeport.Addr(); err != nil {
			return nil, err
		}
		if httpAddr, err = freeport.Addr(); err != nil {
			return nil, err
		}
	}
	tl := time.Now()
	path, cfg, err := fleetConfig(o, tmp, mqttAddr, httpAddr)
	if err != nil {
		return nil, err
	}
	res.LoadSeconds = time.Since(tl).Seconds()
	var (
		svc    *service.Hub
		hubPid int
		reg    func(name string) float64
		regL   func(name, label string) float64 // one labelled series, e.g. `action="notify"`
	)
	t0 := time.Now()
	if o.HubBin == "" {
		log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if svc, err = service.Start(cfg, log); err != nil {
			return nil, fmt.Errorf("start hub: %w", err)
		}
		defer svc.Close()
		mqttAddr, httpAddr = svc.MQTTAddr(), svc.HTTPAddr()
		reg = func(name string) float64 { return metricValue(svc.Registry(), name) }
		regL = func(name, label string) float64 { return labelledValue(svc.Registry(), name, label) }
	} else {
		cmd := pinned(exec.Command(o.HubBin, "hub", "--config", path), o.PinSUT)
		cmd.Stdout, cmd.Stderr = logw, logw
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", o.HubBin, err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}()
		hubPid = cmd.Process.Pid
		if err := waitHTTP("http://"+httpAddr+"/healthz", 60*time.Second); err != nil {
			return nil, fmt.Errorf("hub process: %w", err)
		}
		reg = func(name string) float64 { return scrapeMetric("http://"+httpAddr+"/metrics", name) }
		regL = func(name, label string) float64 { return scrapeLabelled("http://"+httpAddr+"/metrics", name, label) }
	}
	res.StartSeconds = time.Since(t0).Seconds()
	cfg = nil // the hub keeps what it needs; let this copy go
	if svc != nil {
		runtime.GC()
		runtime.ReadMemStats(&m1)
		res.HeapMiB = float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / (1 << 20)
	} else {
		res.HeapMiB = scrapeMetric("http://"+httpAddr+"/metrics", "go_memstats_heap_alloc_bytes") / (1 << 20)
	}
	if o.memprofile != "" && svc != nil {
		mf, err := os.Create(o.memprofile)
		if err != nil {
			return nil, err
		}
		err = pprof.Lookup("heap").WriteTo(mf, 0)
		mf.Close()
		if err != nil {
			return nil, err
		}
	}
	for _, a := range []string{mqttAddr, httpAddr} {
		if h, _, _ := net.SplitHostPort(a); !net.ParseIP(h).IsLoopback() {
			return nil, fmt.Errorf("refusing non-loopback address %s", a)
		}
	}

	nPress := o.presses()
	f := &fleet{o: o, base: time.Now(), lastBeat: make([]atomic.Int64, o.silentCount()), silentSeen: make([]atomic.Int64, o.silentCount()),
		pressSched: make([]int64, nPress), pressRecv: make([]atomic.Int64, nPress), pressSent: make([]int64, nPress),
		pressRaised: make([]atomic.Int64, nPress)}
	if o.Storm {
		f.cards = newCardCount()
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamDone, err := f.openStream(ctx, "http://"+httpAddr)
	if err != nil {
		return nil, err
	}

	tc := time.Now()
	conns := make([]*fleetConn, o.fleetGateways())
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.shutdown()
			}
		}
	}()
	for g := range conns {
		if conns[g], err = dialFleet(mqttAddr, g); err != nil {
			return nil, fmt.Errorf("gateway %d: %w", g, err)
		}
	}
	res.ConnectSecs = time.Since(tc).Seconds()
	plan, err := newFleetPlan(o, conns)
	if err != nil {
		return nil, err
	}

	// Radio tests: button i is due at phase(i) + k·beat, spread evenly over
	// one beat so the offered rate is steady, and goes out in its
	// connection's next write slot (stormgen.go). Presses run on their own
	// goroutine (and in the storm their own connection), from a schedule.
	end := o.lastStop() + o.Beat + o.Grace + 5*time.Second
	stopSampler := sampleHeap(reg)
	cpu0 := procCPU(os.Getpid())
	hubCPU0 := procCPU(hubPid)
	sched0 := schedLatency()
	wait0, hubWait0 := procRunWait(os.Getpid()), procRunWait(hubPid)
	stopWaits := runWaitSampler(hubPid, f.now)
	// Times are ns since f.base (set before the stream reader started);
	// the schedule counts from off, the start of the measured phase.
	runStart := time.Now()
	off := f.now()
	for p := range f.pressSched {
		f.pressSched[p] = off + int64(float64(p)/o.PressRate*1e9) + int64(time.Second)
	}
	stop := make(chan struct{})
	var (
		press    int
		pressErr error
		pressed  = make(chan struct{})
	)
	go func() {
		defer close(pressed)
		press, pressErr = plan.sendPresses(f, stop)
	}()
	lags, fleetErr := plan.sendFleet(f, off, end.Nanoseconds(), nil)
	if fleetErr != nil {
		close(stop)
	}
	<-pressed
	run := time.Since(runStart)
	heapPeak := stopSampler()
	sched1 := schedLatency()
	res.GenRunWait = (procRunWait(os.Getpid()) - wait0).Seconds() / run.Seconds()
	res.HubRunWait = (procRunWait(hubPid) - hubWait0).Seconds() / run.Seconds()
	waits := stopWaits()
	res.GenRunWaitMaxMs, res.HubRunWaitMaxMs = waits.genMax, waits.hubMax
	cpu := procCPU(os.Getpid()) - cpu0
	res.GenCPU = cpu.Seconds() / run.Seconds()
	if hubPid != 0 {
		hc := procCPU(hubPid) - hubCPU0
		res.HubCPU = hc.Seconds() / run.Seconds()
		cpu += hc
	}
	for _, e := range []error{fleetErr, pressErr} {
		if e != nil {
			res.GenError = cond(res.GenError == "", "", res.GenError+"; ") + e.Error()
		}
	}
	ackBy := time.Now().Add(10 * time.Second)
	for _, c := range conns {
		f.pubErrs.Add(c.waitAcks(ackBy))
	}
	res.RadioLag = percentiles(lags)
	res.WriteEveryMs = float64(plan.writeEvery) / 1e6
	res.GenSchedP99Ms = histQuantile(sched0, sched1, 0.99)
	res.GenSchedMaxMs = histQuantile(sched0, sched1, 1)
	// Members a group card does not list (past its first 50), as a
	// technician would open them from the card.
	if err := f.groups.fetchMembers(ctx, "http://"+httpAddr, f.base, f.memberSeen); err != nil {
		fmt.Fprintf(logw, "warning: %v\n", err)
	}
	cancel()
	<-streamDone

	res.RunSeconds = run.Seconds()
	res.Beats = f.beats.Load()
	res.BeatsPerSec = float64(res.Beats) / run.Seconds()
	res.PubErrors = f.pubErrs.Load()
	res.CPUPerSecond = cpu.Seconds() / run.Seconds()
	if n := res.Beats + int64(press); n > 0 {
		res.CPUPerEvent = float64(cpu.Microseconds()) / float64(n)
	}
	res.PeakRSSMiB = peakRSSMiB("self")
	if hubPid != 0 {
		res.PeakRSSMiB = peakRSSMiB(strconv.Itoa(hubPid))
	}
	if p := f.streamEnd.Load(); p != nil {
		res.StreamCut = *p
	}
	res.MochiDropped = reg("vaka_mqtt_publish_dropped_total") + reg("vaka_mqtt_qos_dropped_total")
	deadline := (o.Beat + o.Grace).Nanoseconds()
	var detect []int64
	for i := range f.silentSeen {
		at := f.silentSeen[i].Load()
		if at == 0 {
			res.Missed++
			continue
		}
		res.Detected++
		d := at - (f.lastBeat[i].Load() + deadline)
		if d < 0 {
			res.DetectEarly++
			d = 0
		}
		detect = append(detect, d)
	}
	if len(detect) > 0 {
		slices.Sort(detect)
		res.DetectP50 = float64(detect[len(detect)/2]) / 1e9
		res.DetectMax = float64(detect[len(detect)-1]) / 1e9
	}
	res.FalseAlarms = int(f.falseAlarm.Load())
	res.Presses = press
	var lat, lag, hub, toRaise, toScreen []int64
	for p := range press {
		sent := f.pressSent[p]
		lag = append(lag, sent-f.pressSched[p])
		at := f.pressRecv[p].Load()
		if at == 0 {
			res.PressesLost++
			continue
		}
		lat = append(lat, at-f.pressSched[p])
		hub = append(hub, at-sent)
		if r := f.pressRaised[p].Load(); r != 0 {
			toRaise = append(toRaise, max(0, r-sent))
			toScreen = append(toScreen, max(0, at-r))
		}
	}
	res.PressLatency = percentiles(lat)
	res.PressSendLag = percentiles(lag)
	res.PressHub = percentiles(hub)
	res.PressToRaise = percentiles(toRaise)
	res.PressRaiseToScreen = percentiles(toScreen)
	res.judgeGenerator()
	if o.pressDump != "" {
		if err := f.dumpPresses(o.pressDump, off, press, waits); err != nil {
			fmt.Fprintf(logw, "warning: -press-dump: %v\n", err)
		}
	}
	type slow struct{ at, d, lag, raise int64 }
	var slows []slow
	for p := range press {
		if at := f.pressRecv[p].Load(); at != 0 && at-f.pressSched[p] > int64(20*time.Millisecond) {
			r := f.pressRaised[p].Load()
			if r != 0 {
				r -= f.pressSent[p]
			}
			slows = append(slows, slow{f.pressSched[p], at - f.pressSched[p], f.pressSent[p] - f.pressSched[p], r})
		}
	}
	slices.SortFunc(slows, func(a, b slow) int { return int(b.d - a.d) })
	for _, x := range slows[:min(10, len(slows))] {
		res.SlowPresses = append(res.SlowPresses, fmt.Sprintf("at %.1f s: %.0f ms (sent %.0f ms late, raised %.0f ms after it was sent)",
			float64(x.at-off)/1e9, float64(x.d)/1e6, float64(x.lag)/1e6, float64(x.raise)/1e6))
	}
	if o.Storm {
		stormVerdict(res, f, reg, regL, heapPeak)
		return res, nil
	}
	var bad []string
	if res.Missed > 0 || res.DetectEarly > 0 || res.FalseAlarms > 0 {
		bad = append(bad, "supervision wrong")
	}
	if res.DetectMax > 2 {
		bad = append(bad, "detection more than 2 s late")
	}
	if !res.GenValid {
		bad = append(bad, "generator lagged, press figures not valid ("+res.GenNote+")")
	} else if res.PressLatency.P99 > 10 {
		bad = append(bad, "press p99 over 10 ms")
	}
	if res.PressesLost > 0 || res.PubErrors > 0 || res.MochiDropped > 0 {
		bad = append(bad, "loss")
	}
	if res.StreamCut != "" {
		bad = append(bad, "stream cut")
	}
	res.Verdict = "ok"
	if len(bad) > 0 {
		res.Verdict = strings.Join(bad, ", ")
	}
	return res, nil
}

// openStream reads the staff stream: device_silent alarms of the silent
// buttons and the presses' call alarms. The alarm's own fields come
// before its history in the JSON, so the first "rule" and "device" are its.
func (f *fleet) openStream(ctx context.Context, base string) (<-chan struct{}, error) {
	return alarmStream(ctx, base, f.now, f.onAlarm, func(msg string) { f.streamEnd.Store(&msg) })
}

var (
	ruleKey   = []byte(`"rule":"`)
	deviceKey = []byte(`"device":"`)
	raisedKey = []byte(`"raised_at":"`)
)

func (f *fleet) onAlarm(line []byte, t int64) {
	if f.cards != nil {
		f.cards.see(line)
	}
	if string(field(line, ruleKey)) == "group" {
		f.onGroup(line, t)
		return
	}
	dev := field(line, deviceKey)
	if len(dev) < 2 || dev[0] != 'k' {
		return
	}
	i, err := strconv.Atoi(string(dev[1:]))
	if err != nil {
		return
	}
	switch string(field(line, ruleKey)) {
	case "device_silent":
		if i >= len(f.silentSeen) {
			f.falseAlarm.Add(1)
			return
		}
		f.silentSeen[i].CompareAndSwap(0, t)
	case "call_button":
		// Press p went to button Silent + p mod (devices − silent); the
		// event id names p exactly.
		id := field(line, eventKey)
		k := bytes.LastIndex(id, []byte(supPressBase))
		if k < 0 {
			return
		}
		p, err := strconv.Atoi(string(id[k+len(supPressBase):]))
		if err == nil && p >= 0 && p < len(f.pressRecv) {
			if f.pressRecv[p].CompareAndSwap(0, t) {
				if at, err := time.Parse(time.RFC3339Nano, string(field(line, raisedKey))); err == nil {
					f.pressRaised[p].Store(max(1, int64(at.Sub(f.base))))
				}
			}
		}
	}
}

// peakRSSMiB is a process's high-water resident set (VmHWM); pid is a
// number or "self".
func peakRSSMiB(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// waitHTTP polls url until it answers 200, for at most limit.
func waitHTTP(url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within %v (last error: %v)", url, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeSupReport writes the supervised-fleet section of the benchmark
// report from result files.
func writeSupReport(w io.Writer, files []string) error {
	if len(files) == 0 {
		return errors.New("-report needs result files")
	}
	rs, err := readResults[SupResult](files)
	if err != nil {
		return err
	}
	o := rs[0].Options
	fmt.Fprintf(w, "\n## Supervised fleet: %d devices\n\n", o.Devices)
	fmt.Fprintf(w, "`vaka-load supervise` writes a region's config the way an operator keeps it (gateways in YAML, "+
		"the buttons in a CSV inventory, `sites[].devices_file`) and starts the hub on it%s. %d call buttons report "+
		"through %d gateway connections, each sending a radio test every %v (supervision period %v); %d of them "+
		"stop at %v and must raise their `device_silent` alarm (SCAIP 0123) on the staff stream. Meanwhile residents "+
		"press their buttons %.0f times a second (each press its own button), timed from the scheduled send to the staff stream. "+
		"The generator is vaka-load's own MQTT publisher (one connection per gateway, each writing its radio tests due in one write per interval, staggered; presses on their own goroutine)%s.\n\n",
		cond(o.HubBin != "", " as its own process (`vaka hub --config`)", " in the generator's process"),
		o.Devices, o.Gateways, o.Beat, o.Beat+o.Grace, o.Silent, o.StopAt, o.PressRate,
		cond(o.PinGen != "" && o.PinSUT != "", ", pinned to CPU "+o.PinGen+", the hub to CPU "+o.PinSUT, ""))
	fmt.Fprintln(w, "| run | radio tests/s | config load s | start s | hub heap MiB | hub peak RSS MiB | hub CPU cores | detected | missed | early | false | detection after deadline p50 / max s | presses | lost | press p50 ms | press p99 ms | press max ms | verdict |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
	for i, r := range rs {
		hubCPU := "–"
		if r.HubCPU > 0 {
			hubCPU = fmt.Sprintf("%.2f", r.HubCPU)
		}
		fmt.Fprintf(w, "| %d | %.0f | %.1f | %.1f | %.0f | %.0f | %s | %d | %d | %d | %d | %.2f / %.2f | %d | %d | %.3g | %.3g | %.3g | %s |\n",
			i+1, r.BeatsPerSec, r.LoadSeconds, r.StartSeconds, r.HeapMiB, r.PeakRSSMiB, hubCPU, r.Detected, r.Missed,
			r.DetectEarly, r.FalseAlarms, r.DetectP50, r.DetectMax, r.Presses, r.PressesLost,
			r.PressLatency.P50, r.PressLatency.P99, r.PressLatency.Max, r.Verdict)
	}
	fmt.Fprintln(w)
	for i, r := range rs {
		fmt.Fprintf(w, "- Run %d: `%s`", i+1, r.Options.Command)
		if len(r.SlowPresses) > 0 {
			fmt.Fprintf(w, "; slowest presses: %s", strings.Join(r.SlowPresses, "; "))
		}
		fmt.Fprintln(w)
	}
	return nil
}

// onGroup reads a group alarm's frame: since issue 20 the hub shows
// technical alarms as their group (site and gateway by default), listing
// the first 50 members with their device. A silent button is detected
// when it first appears in a group frame on the stream.
func (f *fleet) onGroup(line []byte, t int64) {
	listed := 0
	defer func() { f.groups.see(line, listed, t) }()
	for rest := line; ; {
		k := bytes.Index(rest, deviceKey)
		if k < 0 {
			return
		}
		rest = rest[k+len(deviceKey):]
		q := bytes.IndexByte(rest, '"')
		if q < 0 {
			continue
		}
		listed++
		f.memberSeen(string(rest[:q]), t)
	}
}

// memberSeen counts a group member's device as detected at t: a silent
// button, or a false alarm for a button that never went silent.
func (f *fleet) memberSeen(dev string, t int64) {
	if len(dev) < 2 || dev[0] != 'k' {
		return
	}
	i, err := strconv.Atoi(dev[1:])
	if err != nil {
		return
	}
	f.memberMu.Lock()
	defer f.memberMu.Unlock()
	if i >= len(f.silentSeen) {
		if f.falseSeen == nil {
			f.falseSeen = map[int]bool{}
		}
		if !f.falseSeen[i] {
			f.falseSeen[i] = true
			f.falseAlarm.Add(1)
		}
		return
	}
	f.silentSeen[i].CompareAndSwap(0, t)
}

// judgeGenerator decides whether the generator kept its schedule, so the
// press figures measure the hub: each press written within genLagValidMs
// of its schedule (p99), each fleet write within one write interval of its
// slot (else the storm offered was lighter than stated: the generator, or
// the hub not reading its connections, fell behind), the generator's own
// goroutines (the stream reader among them) not waiting long for their
// processor, and no write error.
func (r *SupResult) judgeGenerator() {
	var why []string
	if r.GenError != "" {
		why = append(why, "generator error: "+r.GenError)
	}
	if r.PressSendLag.P99 > genLagValidMs {
		why = append(why, fmt.Sprintf("press send lag p99 %.3g ms > %.0f ms", r.PressSendLag.P99, genLagValidMs))
	}
	if r.RadioLag.P99 > r.WriteEveryMs {
		why = append(why, fmt.Sprintf("fleet writes p99 %.3g ms behind their slots, more than one write interval (%.0f ms)", r.RadioLag.P99, r.WriteEveryMs))
	}
	if r.GenSchedP99Ms > genLagValidMs {
		why = append(why, fmt.Sprintf("the generator's goroutines (stream reader among them) waited p99 %.3g ms for their processor > %.0f ms", r.GenSchedP99Ms, genLagValidMs))
	}
	if len(why) > 0 && r.GenSchedMaxMs > 0 {
		why = append(why, fmt.Sprintf("its goroutines waited at most %.3g ms for its processor", r.GenSchedMaxMs))
	}
	r.GenValid = len(why) == 0
	if !r.GenValid && r.GenRunWaitMaxMs > 20 {
		// Say whether the machine, not the generator's own work, held it.
		why = append(why, fmt.Sprintf("meanwhile the kernel kept this process waiting for its CPU %.0f ms a second on average, %.0f ms in the worst second, running other processes: a busy machine",
			r.GenRunWait*1e3, r.GenRunWaitMaxMs))
	}
	r.GenNote = strings.Join(why, "; ")
}

// dumpPresses writes one CSV line per press: its scheduled, written,
// raised (the alarm's raised_at) and on-screen times in ms since the
// measured phase began (empty: never), to see where a slow press waited.
//
// hub_cpu_wait_ms is how long the hub's threads waited for a CPU the
// kernel gave to other processes in the second the press was sent (from
// the one-second samples; empty in process).
func (f *fleet) dumpPresses(file string, off int64, n int, w runWaits) error {
	var b bytes.Buffer
	b.WriteString("press,scheduled_ms,sent_ms,raised_ms,screen_ms,hub_cpu_wait_ms\n")
	ms := func(t int64) string {
		if t == 0 {
			return ""
		}
		return strconv.FormatFloat(float64(t-off)/1e6, 'f', 3, 64)
	}
	for p := range n {
		wait := ""
		if k := int((f.pressSent[p] - w.start) / int64(time.Second)); f.o.HubBin != "" && k >= 0 && k < len(w.hubSeries) {
			wait = strconv.FormatFloat(w.hubSeries[k], 'f', 0, 64)
		}
		fmt.Fprintf(&b, "%d,%s,%s,%s,%s,%s\n", p, ms(f.pressSched[p]), ms(f.pressSent[p]), ms(f.pressRaised[p].Load()), ms(f.pressRecv[p].Load()), wait)
	}
	return os.WriteFile(file, b.Bytes(), 0o644)
}
