package main

// vaka-load scaip: SCAIP alarms (issue 14) from a generator in its own
// process to the real `vaka hub` process. Each alarm is a SIP MESSAGE over
// UDP carrying an <mrq> from its own registered alarm unit (so every
// message raises its own alarm), signed with HTTP Digest (qop=auth, the
// unit reusing its nonce with a growing nonce count, as a unit does); the
// latency runs from the moment the MESSAGE was written until its alarm is
// read on a staff stream (GET /api/v1/stream). The hub process's CPU is
// read from /proc, apart from the generator's, and with -pin-gen/-pin-sut
// the two run on their own cores.
//
//	vaka-load scaip -hub-bin ./vaka -mode oneatatime -n 500
//	vaka-load scaip -hub-bin ./vaka -mode rate -rate 1000 -duration 10s [-noise 1000] [-pin-gen 1 -pin-sut 0]
//	vaka-load scaip -report results/scaip-*.json   (the SCAIP section of docs/benchmarks.md)
//
// A run whose generator wrote its messages late (send lag p99 over
// genLagValidMs) measured the generator, not the hub: it is reported as
// not valid and not judged against the goal.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/freeport"
	"github.com/vaka-care/vaka/internal/scaipgen"
)

const (
	scaipAccount  = "bench-unit"
	scaipPassword = "bench-unit-secret"
	scaipRealm    = hub.DefaultSCAIPRealm
	scaipCidBase  = 100000
	// scaipGoalMs is issue 14's goal: alarm p99 at 1,000 messages/s.
	scaipGoalMs   = 5.0
	scaipGoalRate = 1000
	scaipMaxUnits = 50_000
)

type scaipOptions struct {
	Mode       string        `json:"mode"` // oneatatime | rate
	N          int           `json:"n"`
	Rate       float64       `json:"rate,omitempty"`
	Duration   time.Duration `json:"duration_ns,omitempty"`
	Noise      float64       `json:"noise,omitempty"` // malformed (authenticated, snu 7) messages/s beside the alarms
	HubBin     string        `json:"hub_bin"`
	PinGen     string        `json:"pin_gen,omitempty"`
	PinSUT     string        `json:"pin_sut,omitempty"`
	DataParent string        `json:"data_parent,omitempty"`
	Label      string        `json:"label,omitempty"`
	Command    string        `json:"command"`
	// HubProfile: a CPU profile of the hub process over the measured
	// phase (-hub-cpuprofile, as for the MQTT runs).
	HubProfile string `json:"hub_cpuprofile,omitempty"`
	// SyncEachWrite: store.sync_each_write (snu 0 only after fsync).
	SyncEachWrite bool `json:"sync_each_write,omitempty"`
}

// SCAIPResult is one run, as the JSON result file holds it. Times in ms.
type SCAIPResult struct {
	Kind     string       `json:"kind"` // "scaip"
	Options  scaipOptions `json:"options"`
	Scenario string       `json:"scenario"`
	Started  time.Time    `json:"started"`
	Machine  machine      `json:"machine"`
	Sent     int          `json:"sent"`
	Received int          `json:"received"`
	Lost     int          `json:"lost"`
	// NoiseSent: malformed messages written beside the alarms.
	NoiseSent int `json:"noise_sent,omitempty"`
	// Latency: MESSAGE written → alarm read on the stream.
	Latency pct `json:"latency"`
	// FromSched: scheduled send time → on the stream (the generator's
	// lateness included).
	FromSched pct `json:"from_sched"`
	// ToRaise: MESSAGE written → the alarm's raised_at (the hub's clock):
	// SIP, Digest, XML and the rules; the rest is journal and stream.
	ToRaise pct `json:"to_raise"`
	// SendLag: how late the generator wrote each MESSAGE after its
	// scheduled time (its own lateness).
	SendLag pct `json:"send_lag"`
	// HubCPUPerMsgUs: the hub process's CPU (user+system, /proc) over the
	// measured phase per message it was sent (alarms and malformed).
	HubCPUPerMsgUs float64 `json:"hub_cpu_per_msg_us"`
	GenCPUPerMsgUs float64 `json:"gen_cpu_per_msg_us"`
	// HubRunqWaitMs: time the hub's threads were runnable but waited for
	// a CPU during the run (other work on a shared machine).
	HubRunqWaitMs float64 `json:"hub_runq_wait_ms"`
	// HubCtxSwPerMsg: the hub's context switches (all threads, voluntary
	// and not, /proc) over the measured phase per message it was sent:
	// the goroutine hand-offs that park and wake a thread.
	HubCtxSwPerMsg    float64 `json:"hub_ctxsw_per_msg"`
	HubVolCtxSwPerMsg float64 `json:"hub_vol_ctxsw_per_msg"`
	// OtherCPUPct: CPU the rest of the machine used during the measured
	// phase, in % of all CPUs.
	OtherCPUPct  float64 `json:"other_cpu_pct"`
	AchievedRate float64 `json:"achieved_rate,omitempty"`
	// UDPDrops: datagrams the kernel dropped at the hub's SIP socket
	// during the run (its receive buffer full: /proc/net/udp). A real unit
	// resends a MESSAGE without an answer (SIP timer T1), so there a drop
	// is a delay; this generator does not resend, so it shows as lost.
	UDPDrops int64 `json:"udp_drops"`
	// Valid is false when the generator lagged (SendLag p99 over
	// genLagValidMs): then the figure is not the hub's and not judged.
	Valid    bool   `json:"valid"`
	NotValid string `json:"not_valid,omitempty"`
	Aborted  string `json:"aborted,omitempty"`
	// Timeline: the latency per second of the measured phase, by when
	// the MESSAGE was scheduled, so a slow run shows WHEN it was slow
	// (the first second after start, or periodically).
	Timeline []scaipSecond `json:"timeline,omitempty"`
	// Slowest: the slowest alarms, with when they were sent (ms after the
	// measured phase began), to tell a start-up cost or a periodic one
	// (GC, a timer, the hub's tick) from scattered delays.
	Slowest []scaipSlow `json:"slowest,omitempty"`
}

// scaipSlow is one slow alarm: when it was sent and its latency (ms).
type scaipSlow struct {
	SentMs    float64 `json:"sent_ms"`
	LatencyMs float64 `json:"latency_ms"`
	RaiseMs   float64 `json:"raise_ms"` // to raised_at; 0 if unknown
}

// scaipSecond is one second of a run's timeline (times in ms).
type scaipSecond struct {
	Second   int     `json:"second"`
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	P50      float64 `json:"p50"`
	P99      float64 `json:"p99"`
	Max      float64 `json:"max"`
}

func runSCAIP(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vaka-load scaip", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o scaipOptions
	fs.StringVar(&o.Mode, "mode", "rate", "oneatatime (send, wait for the alarm, next) | rate (open loop)")
	fs.IntVar(&o.N, "n", 500, "alarms (oneatatime mode)")
	fs.Float64Var(&o.Rate, "rate", 1000, "alarms per second (rate mode)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send (rate mode)")
	fs.Float64Var(&o.Noise, "noise", 0, "malformed messages per second beside the alarms (authenticated, answered snu 7)")
	fs.StringVar(&o.HubBin, "hub-bin", "", "the `vaka` binary to run as `vaka hub --config` (required)")
	fs.StringVar(&o.PinGen, "pin-gen", "", "pin this process (generator, stream reader) to these CPUs (taskset)")
	fs.StringVar(&o.PinSUT, "pin-sut", "", "pin the hub process to these CPUs (taskset)")
	fs.StringVar(&o.DataParent, "data-parent", "", "directory for the temporary data dir (default $TMPDIR)")
	fs.StringVar(&o.Label, "label", "", "free text stored with the result")
	out := fs.String("out", "", "write the machine-readable result to this JSON file")
	report := fs.Bool("report", false, "write the SCAIP section of docs/benchmarks.md from the JSON result files given as arguments")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process (the generator) for the measured phase")
	fs.StringVar(&o.HubProfile, "hub-cpuprofile", "", "write a CPU profile of the hub process for the measured phase to this `file` (VAKA_CPUPROFILE, SIGUSR1/SIGUSR2)")
	fs.BoolVar(&o.SyncEachWrite, "sync-each-write", false, "store.sync_each_write: snu 0 only once the alarm is fsynced")
	timeline := fs.Bool("timeline", false, "print the per-second latency timeline after the summary")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *report {
		if err := writeSCAIPReport(stdout, fs.Args()); err != nil {
			fmt.Fprintln(stderr, "vaka-load scaip:", err)
			return 1
		}
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "vaka-load scaip: unexpected arguments:", strings.Join(fs.Args(), " "))
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "vaka-load scaip:", err)
		return 2
	}
	o.Command = "vaka-load scaip " + strings.Join(args, " ")
	if err := pinSelf(o.PinGen); err != nil {
		fmt.Fprintln(stderr, "vaka-load scaip: -pin-gen:", err)
		return 1
	}
	var prof *os.File
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "vaka-load scaip:", err)
			return 1
		}
		defer f.Close()
		prof = f
	}
	res, err := runSCAIPBench(o, prof)
	if err != nil {
		fmt.Fprintln(stderr, "vaka-load scaip:", err)
		return 1
	}
	fmt.Fprintln(stdout, res.summary())
	if *timeline {
		for _, t := range res.Timeline {
			fmt.Fprintf(stdout, "  s%-3d sent %5d recv %5d  p50 %7.3f  p99 %7.3f  max %7.3f ms\n", t.Second, t.Sent, t.Received, t.P50, t.P99, t.Max)
		}
		fmt.Fprint(stdout, "  slowest (sent at ms: latency/to raise ms):")
		for _, s := range res.Slowest {
			fmt.Fprintf(stdout, " %.0f:%.1f/%.1f", s.SentMs, s.LatencyMs, s.RaiseMs)
		}
		fmt.Fprintln(stdout)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "vaka-load scaip:", err)
			return 1
		}
	}
	return 0
}

func (o *scaipOptions) check() error {
	switch o.Mode {
	case "oneatatime":
		if o.N < 1 || o.N > scaipMaxUnits {
			return fmt.Errorf("-n must be 1..%d", scaipMaxUnits)
		}
		o.Rate, o.Duration = 0, 0
	case "rate":
		if o.Rate <= 0 || o.Rate > 20000 {
			return errors.New("-rate must be in (0, 20000]")
		}
		if o.Duration <= 0 || o.Duration > maxDuration {
			return fmt.Errorf("-duration must be in (0, %v]", maxDuration)
		}
		o.N = int(o.Rate * o.Duration.Seconds())
		if o.N < 1 || o.N > scaipMaxUnits {
			return fmt.Errorf("rate × duration must give 1..%d alarms (one registered unit each), not %d", scaipMaxUnits, o.N)
		}
	default:
		return errors.New("-mode must be oneatatime or rate")
	}
	if o.Noise < 0 || o.Noise > 20000 {
		return errors.New("-noise must be 0..20000 messages/s")
	}
	if o.HubBin == "" {
		return errors.New("-hub-bin is required: the hub runs as its own process")
	}
	if _, err := os.Stat(o.HubBin); err != nil {
		return fmt.Errorf("-hub-bin: %w", err)
	}
	for _, c := range []string{o.PinGen, o.PinSUT} {
		if c == "" {
			continue
		}
		if _, _, err := parseCPUs(c); err != nil {
			return err
		}
	}
	return nil
}

func (o scaipOptions) scenario() string {
	s := fmt.Sprintf("one at a time, %d alarms", o.N)
	if o.Mode == "rate" {
		s = fmt.Sprintf("open loop %g alarms/s × %v", o.Rate, o.Duration)
	}
	if o.Noise > 0 {
		s += fmt.Sprintf(", beside %g malformed/s", o.Noise)
	}
	if o.SyncEachWrite {
		s += ", sync_each_write"
	}
	return s
}

// scaipConfig is the hub's config for a run: one Digest account, one
// registered unit (cid) per alarm, a staff user for the stream.
func scaipConfig(o scaipOptions, dataDir string) (*hub.Config, error) {
	userHash, err := bcrypt.GenerateFromPassword([]byte(staffPass), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	udp, err := freeUDP()
	if err != nil {
		return nil, err
	}
	units := make([]hub.SCAIPUnit, o.N)
	for i := range units {
		units[i] = hub.SCAIPUnit{Cid: strconv.Itoa(scaipCidBase + i), Account: scaipAccount, Site: site,
			Device: "s-" + strconv.Itoa(i)}
	}
	cfg := &hub.Config{
		DataDir: dataDir, Timezone: "Europe/Stockholm",
		MQTT:  hub.MQTTConfig{TCP: "127.0.0.1:0"},
		HTTP:  hub.HTTPConfig{Address: "127.0.0.1:0"},
		Users: []hub.User{{Username: staffUser, Name: "Bench Staff", Role: hub.RoleStaff, PasswordHash: string(userHash)}},
		Sites: []hub.Site{{ID: site, Name: "Benchmark", Night: benchNight,
			Supervision: map[string]time.Duration{"personal_trigger": 0}}},
		Store: hub.StoreConfig{SyncEachWrite: o.SyncEachWrite},
		SCAIP: hub.SCAIPConfig{Enabled: true, UDP: udp,
			Accounts: []hub.SCAIPAccount{{Username: scaipAccount, HA1: hub.HA1(scaipAccount, scaipRealm, scaipPassword)}},
			Units:    units},
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// freeUDP is a loopback address whose port is free for both TCP and UDP
// a moment ago (freeport checks TCP).
func freeUDP() (string, error) {
	for range 32 {
		a, err := freeport.Addr()
		if err != nil {
			return "", err
		}
		if c, err := net.ListenPacket("udp", a); err == nil {
			c.Close()
			return a, nil
		}
	}
	return "", errors.New("no free UDP port")
}

// scaipRun is one run's per-alarm records, ns since base (0: not yet).
type scaipRun struct {
	base   time.Time
	sched  []int64
	sent   []int64
	recv   []atomic.Int64
	raised []atomic.Int64
	got    chan int // oneatatime: an alarm arrived
}

func (r *scaipRun) now() int64 { return int64(time.Since(r.base)) }

var scaipRefPrefix = []byte("s")

// onAlarm takes an alarm frame from the stream: its event id is
// "<site>/<gateway>/<ref>.ME.<hash>" (no gateway for SCAIP), the ref "s<i>"
// of alarm i.
func (r *scaipRun) onAlarm(line []byte, t int64) {
	id := field(line, eventKey)
	if k := bytes.LastIndexByte(id, '/'); k >= 0 {
		id = id[k+1:]
	}
	if !bytes.HasPrefix(id, scaipRefPrefix) {
		return
	}
	dot := bytes.IndexByte(id, '.')
	if dot < 0 {
		return
	}
	i, err := strconv.Atoi(string(id[1:dot]))
	if err != nil || i < 0 || i >= len(r.recv) {
		return
	}
	if !r.recv[i].CompareAndSwap(0, t) {
		return
	}
	if at, err := time.Parse(time.RFC3339Nano, string(field(line, raisedKey))); err == nil {
		r.raised[i].Store(max(1, int64(at.Sub(r.base))))
	}
	if r.got != nil {
		select {
		case r.got <- i:
		default:
		}
	}
}

func runSCAIPBench(o scaipOptions, prof *os.File) (*SCAIPResult, error) {
	dataDir, err := os.MkdirTemp(o.DataParent, "vaka-load-scaip-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dataDir)
	cfg, err := scaipConfig(o, filepath.Join(dataDir, "hub"))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	p := &peer{name: peerVaka}
	defer p.close()
	po := options{HubBin: o.HubBin, PinSUT: o.PinSUT, HubProfile: o.HubProfile}
	if err := p.startHubProcess(po, cfg, dataDir); err != nil {
		return nil, err
	}
	// Serving is not the same as ready: wait for /healthz to say so, and
	// (newSCAIPUnit) for the SIP listener to challenge, before the clock
	// starts, so no start-up work of the hub is measured as alarm latency.
	if err := waitHealthy("http://"+p.httpAddr, 20*time.Second); err != nil {
		return nil, err
	}
	res := &SCAIPResult{Kind: "scaip", Options: o, Scenario: o.scenario(), Machine: machineInfo(), Started: time.Now().UTC()}
	r := &scaipRun{base: time.Now(), sched: make([]int64, o.N), sent: make([]int64, o.N),
		recv: make([]atomic.Int64, o.N), raised: make([]atomic.Int64, o.N)}
	if o.Mode == "oneatatime" {
		r.got = make(chan int, 1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var streamEnd atomic.Pointer[string]
	if _, err := alarmStream(ctx, "http://"+p.httpAddr, r.now, r.onAlarm, func(m string) { streamEnd.Store(&m) }); err != nil {
		return nil, err
	}
	u, err := newSCAIPUnit(cfg.SCAIP.UDP)
	if err != nil {
		return nil, err
	}
	defer u.Close()
	var nu *scaipgen.Unit
	if o.Noise > 0 {
		if nu, err = newSCAIPUnit(cfg.SCAIP.UDP); err != nil {
			return nil, err
		}
		defer nu.Close()
	}
	pc, err := newPacer()
	if err != nil {
		return nil, err
	}
	defer pc.close()

	if prof != nil {
		if err := pprof.StartCPUProfile(prof); err != nil {
			return nil, err
		}
	}
	stopHubProf, err := startHubProfile(po, p.hubPid)
	if err != nil {
		return nil, err
	}
	drops0 := udpDrops(cfg.SCAIP.UDP)
	hub0, gen0, busy0, runq0 := procCPU(p.hubPid), selfCPU(), machineBusy(), procRunqWait(p.hubPid)
	vcs0, ics0 := procCtxSwitches(p.hubPid)
	start := r.now()
	// The malformed flood, on its own socket, pacer and goroutine.
	stopNoise := make(chan struct{})
	var noiseWG sync.WaitGroup
	var noiseSent atomic.Int64
	if nu != nil {
		noiseWG.Add(1)
		go func() {
			defer noiseWG.Done()
			np, err := newPacer()
			if err != nil {
				return
			}
			defer np.close()
			for k := 0; ; k++ {
				select {
				case <-stopNoise:
					return
				default:
				}
				due := start + int64(float64(k)*1e9/o.Noise)
				if d := due - r.now(); d > 0 {
					_ = np.sleep(time.Duration(d))
				}
				if nu.Send(k, "<mrq><ref>m"+strconv.Itoa(k)+"</ref><cid>"+strconv.Itoa(scaipCidBase)+"</cid></mrq>", true) != nil {
					return
				}
				noiseSent.Add(1)
			}
		}()
	}
	var body []byte
	for i := range o.N {
		due := r.now()
		if o.Mode == "rate" {
			due = start + int64(float64(i)*1e9/o.Rate)
			if d := due - r.now(); d > 0 {
				_ = pc.sleep(time.Duration(d))
			}
		}
		body = append(body[:0], "<mrq><ref>s"...)
		body = strconv.AppendInt(body, int64(i), 10)
		body = append(body, "</ref><cid>"...)
		body = strconv.AppendInt(body, int64(scaipCidBase+i), 10)
		body = append(body, "</cid><dty>0003</dty></mrq>"...)
		r.sched[i] = due
		r.sent[i] = r.now()
		if err := u.Send(i, string(body), true); err != nil {
			res.Aborted = err.Error()
			break
		}
		if r.got != nil {
			select {
			case <-r.got:
			case <-time.After(drainWait):
				res.Aborted = fmt.Sprintf("alarm %d not on the stream within %v", i, drainWait)
			}
			if res.Aborted != "" {
				break
			}
		}
	}
	sendEnd := r.now()
	close(stopNoise)
	noiseWG.Wait()
	// Wait for the stragglers, at most drainWait.
	for deadline := time.Now().Add(drainWait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n := 0
		for i := range r.recv {
			if r.recv[i].Load() != 0 {
				n++
			}
		}
		if n == o.N || streamEnd.Load() != nil {
			break
		}
	}
	hubCPU, genCPU, busy := procCPU(p.hubPid)-hub0, selfCPU()-gen0, machineBusy()-busy0
	vcs1, ics1 := procCtxSwitches(p.hubPid)
	if prof != nil {
		pprof.StopCPUProfile()
	}
	if err := stopHubProf(); err != nil {
		return nil, fmt.Errorf("-hub-cpuprofile: %w", err)
	}
	res.HubRunqWaitMs = float64(procRunqWait(p.hubPid)-runq0) / 1e6
	res.UDPDrops = udpDrops(cfg.SCAIP.UDP) - drops0
	wall := time.Duration(r.now() - start)
	if other := busy - hubCPU - genCPU; wall > 0 {
		res.OtherCPUPct = max(0, 100*other.Seconds()/(wall.Seconds()*float64(runtime.NumCPU())))
	}
	if p := streamEnd.Load(); p != nil && res.Aborted == "" {
		res.Aborted = "stream ended: " + *p
	}
	var lat, fromSched, toRaise, lag []int64
	for i := range o.N {
		if r.sent[i] == 0 {
			continue
		}
		res.Sent++
		lag = append(lag, r.sent[i]-r.sched[i])
		t := r.recv[i].Load()
		if t == 0 {
			res.Lost++
			continue
		}
		res.Received++
		lat = append(lat, t-r.sent[i])
		fromSched = append(fromSched, t-r.sched[i])
		if at := r.raised[i].Load(); at != 0 {
			toRaise = append(toRaise, at-r.sent[i])
		}
	}
	res.NoiseSent = int(noiseSent.Load())
	res.Timeline = scaipTimeline(r, start)
	res.Slowest = scaipSlowest(r, start, 30)
	res.Latency, res.FromSched, res.ToRaise, res.SendLag = percentiles(lat), percentiles(fromSched), percentiles(toRaise), percentiles(lag)
	if msgs := res.Sent + res.NoiseSent; msgs > 0 {
		res.HubCPUPerMsgUs = float64(hubCPU.Microseconds()) / float64(msgs)
		res.GenCPUPerMsgUs = float64(genCPU.Microseconds()) / float64(msgs)
		res.HubVolCtxSwPerMsg = float64(vcs1-vcs0) / float64(msgs)
		res.HubCtxSwPerMsg = float64(vcs1-vcs0+ics1-ics0) / float64(msgs)
	}
	if d := time.Duration(sendEnd - start); o.Mode == "rate" && d > 0 {
		res.AchievedRate = float64(res.Sent) / d.Seconds()
	}
	res.Valid = true
	if o.Mode == "rate" && res.SendLag.P99 > genLagValidMs {
		res.Valid = false
		res.NotValid = fmt.Sprintf("generator send lag p99 %.3g ms > %.0f ms", res.SendLag.P99, genLagValidMs)
	}
	if res.Aborted != "" {
		res.Valid = false
		res.NotValid = strings.TrimPrefix(res.NotValid+"; ", "; ") + res.Aborted
	}
	return res, nil
}

// waitHealthy waits until base/healthz answers 200 (the hub has started
// and says it is healthy), at most wait.
func waitHealthy(base string, wait time.Duration) error {
	c := http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hub not healthy within %v (last: %v)", wait, err)
		}
	}
}

// scaipTimeline groups the alarms by the second of the measured phase
// they were scheduled in (from start), with each second's latency.
func scaipTimeline(r *scaipRun, start int64) []scaipSecond {
	var secs []scaipSecond
	var lats [][]int64
	for i := range r.sent {
		if r.sent[i] == 0 {
			continue
		}
		k := max(0, int((r.sched[i]-start)/int64(time.Second)))
		for len(secs) <= k {
			secs = append(secs, scaipSecond{Second: len(secs)})
			lats = append(lats, nil)
		}
		secs[k].Sent++
		if t := r.recv[i].Load(); t != 0 {
			secs[k].Received++
			lats[k] = append(lats[k], t-r.sent[i])
		}
	}
	for k := range secs {
		p := percentiles(lats[k])
		secs[k].P50, secs[k].P99, secs[k].Max = p.P50, p.P99, p.Max
	}
	return secs
}

// scaipSlowest lists the n slowest alarms, in the order they were sent.
func scaipSlowest(r *scaipRun, start int64, n int) []scaipSlow {
	var all []scaipSlow
	for i := range r.sent {
		t := r.recv[i].Load()
		if r.sent[i] == 0 || t == 0 {
			continue
		}
		s := scaipSlow{SentMs: float64(r.sent[i]-start) / 1e6, LatencyMs: float64(t-r.sent[i]) / 1e6}
		if at := r.raised[i].Load(); at != 0 {
			s.RaiseMs = float64(at-r.sent[i]) / 1e6
		}
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b scaipSlow) int { return cmp.Compare(b.LatencyMs, a.LatencyMs) })
	all = all[:min(n, len(all))]
	slices.SortFunc(all, func(a, b scaipSlow) int { return cmp.Compare(a.SentMs, b.SentMs) })
	return all
}

// udpDrops is the kernel's count of datagrams dropped at the UDP socket
// bound to addr (an IPv4 host:port), from the last field of its line in
// /proc/net/udp; 0 where unreadable.
func udpDrops(addr string) int64 {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	pn, err := strconv.Atoi(port)
	if err != nil {
		return 0
	}
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0
	}
	want := fmt.Sprintf(":%04X", pn)
	var n int64
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 || !strings.HasSuffix(f[1], want) {
			continue
		}
		d, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
		n += d
	}
	return n
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *SCAIPResult) summary() string {
	v := "valid"
	if !r.Valid {
		v = "NOT VALID: " + r.NotValid
	}
	return fmt.Sprintf("[scaip] %s: sent=%d received=%d lost=%d (udp drops %d) noise=%d | latency ms p50 %.3f p99 %.3f max %.3f | to raise p99 %.3f | "+
		"send lag p99 %.3f ms | hub CPU %.1f µs/msg, gen %.1f µs/msg | hub ctx switches %.2f/msg (voluntary %.2f) | other work %.0f%% | %s",
		r.Scenario, r.Sent, r.Received, r.Lost, r.UDPDrops, r.NoiseSent, r.Latency.P50, r.Latency.P99, r.Latency.Max, r.ToRaise.P99,
		r.SendLag.P99, r.HubCPUPerMsgUs, r.GenCPUPerMsgUs, r.HubCtxSwPerMsg, r.HubVolCtxSwPerMsg, r.OtherCPUPct, v)
}

// newSCAIPUnit is the run's alarm unit: the benchmark account, its
// Call-IDs and branches marked as this generator's ("load-", "z9hG4bK-l").
func newSCAIPUnit(hubAddr string) (*scaipgen.Unit, error) {
	return scaipgen.Dial(scaipgen.Config{Hub: hubAddr, Account: scaipAccount, Realm: scaipRealm,
		HA1: hub.HA1(scaipAccount, scaipRealm, scaipPassword), Cid: strconv.Itoa(scaipCidBase),
		BranchPrefix: "l", CallIDPrefix: "load"})
}
