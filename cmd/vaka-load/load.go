package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/benchdoc"
)

const (
	site      = "bench"
	gwPass    = "bench-gw-secret"
	staffUser = "bench-staff"
	staffPass = "bench-staff-secret"
)

// Result is one run, as written to -out and read by -report.
type Result struct {
	Options  options   `json:"options"`
	Peer     string    `json:"peer"`
	Scenario string    `json:"scenario"`
	Machine  machine   `json:"machine"`
	Started  time.Time `json:"started"`

	Sent       int `json:"sent"`       // events published (publish call made)
	Received   int `json:"received"`   // distinct events whose alarm was read on the stream (or PUBACKed in ceiling mode)
	Lost       int `json:"lost"`       // sent but no alarm within drainWait after the end
	Duplicated int `json:"duplicated"` // alarms read twice for one event
	// PubackUnexpected counts PUBACKs for a packet id not in flight (raw
	// generator: a duplicate PUBACK or a broker error).
	PubackUnexpected int `json:"puback_unexpected,omitempty"`
	// Reordered counts alarms that arrived after an alarm for a later
	// event of the same gateway (per-publisher sequence went backwards).
	Reordered int `json:"reordered"`
	// StreamsCut is how many stream subscribers the hub cut off during
	// the run (vaka_stream_subscribers_cut_total): a stream that took
	// nothing for the hub's stall timeout; one that reads is never cut.
	StreamsCut int `json:"streams_cut"`
	Foreign    int `json:"foreign"` // alarms on the stream not raised by this run's events (e.g. hub_integrity)
	Updates    int `json:"updates"` // later messages for this run's alarms (other transitions, e.g. notify)

	// Latency is stream read time − scheduled send time (ceiling mode:
	// PUBACK − scheduled). Queueing delay in the generator counts.
	Latency pct `json:"latency_ms"`
	// FromSend is stream read time − the moment Publish was called:
	// the system's share, without the generator's lateness.
	FromSend pct `json:"from_send_ms"`
	// SendLag is the moment Publish was called − scheduled time: how late
	// the generator itself was (sleep wake-up, its own queueing).
	SendLag pct `json:"send_lag_ms"`
	// Puback is PUBACK − scheduled time, as seen by an in-order collector
	// per gateway (an upper bound: a slow ack delays the next one's reading).
	Puback       pct `json:"puback_ms"`
	PubackErrors int `json:"puback_errors"`

	OfferedRate  float64 `json:"offered_rate"`  // events/s by the schedule
	AchievedRate float64 `json:"achieved_rate"` // events/s the generator actually published
	SendSeconds  float64 `json:"send_seconds"`  // first to last publish call
	WallSeconds  float64 `json:"wall_seconds"`  // measured phase incl. drain

	CPUUserSeconds float64 `json:"cpu_user_s"`
	CPUSysSeconds  float64 `json:"cpu_sys_s"`
	// PeerCPUSeconds is the CPU of the peer's own processes (Mosquitto,
	// Node-RED), included in CPUPerEventUs.
	PeerCPUSeconds float64 `json:"peer_cpu_s"`
	// CPUPerEventUs is the whole process's CPU (hub + broker + generator +
	// stream reader) over the measured phase, per event sent.
	CPUPerEventUs float64 `json:"cpu_per_event_us"`
	// GenCPUPerEventUs is the vaka-load process alone (generator, PUBACK
	// readers, stream reader; and the hub when it runs in-process), and
	// SUTCPUPerEventUs the peer's own processes (the hub process,
	// Mosquitto, Node-RED, the sink), each per event sent.
	GenCPUPerEventUs float64 `json:"gen_cpu_per_event_us"`
	SUTCPUPerEventUs float64 `json:"sut_cpu_per_event_us"`
	// SUTIOCallsPerEvent is the peer processes' read and write syscalls
	// (/proc/PID/io) per event sent: steadier than CPU on a shared machine.
	SUTIOCallsPerEvent float64 `json:"sut_io_calls_per_event"`
	// RunqWait*Ms: time the threads of the vaka-load process (Gen) and of
	// the peer's processes (SUT) were runnable but waited for a CPU, over
	// the measured phase. Large values: other work took the cores.
	GenRunqWaitMs float64 `json:"gen_runq_wait_ms"`
	SUTRunqWaitMs float64 `json:"sut_runq_wait_ms"`
	// OtherCPUPct is the CPU time the rest of the machine used during the
	// measured phase (all of /proc/stat minus this run's processes), in %
	// of all CPUs: other work on a shared machine.
	OtherCPUPct  float64 `json:"other_cpu_pct"`
	GCCount      uint32  `json:"gc_count"`
	GCPauseMaxMs float64 `json:"gc_pause_max_ms"`
	GCPauseSumMs float64 `json:"gc_pause_total_ms"`
	PeakHeapMB   float64 `json:"heap_inuse_end_mb"`

	StreamEnded string  `json:"stream_ended,omitempty"` // why the stream ended before the run did
	Aborted     string  `json:"aborted,omitempty"`      // why sending stopped early
	DataDirMB   float64 `json:"journal_mb"`
	// The hub's journal appends whose write(2) took over 5 ms, and the
	// longest: an alarm's PUBACK waits for its write.
	JournalSlowWrites int     `json:"journal_slow_writes,omitempty"`
	JournalWriteMaxMS float64 `json:"journal_write_max_ms,omitempty"`
	// JournalMsgsPerEvent (-cluster): replicated journal messages (one
	// quorum round trip each) per event sent over the measured phase,
	// and JournalEntriesPerMsg the transitions and records in each.
	JournalMsgsPerEvent  float64 `json:"journal_msgs_per_event,omitempty"`
	JournalEntriesPerMsg float64 `json:"journal_entries_per_msg,omitempty"`
}

type pct struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// percentiles of durations in ns, reported in ms (nearest rank).
func percentiles(ns []int64) pct {
	if len(ns) == 0 {
		return pct{}
	}
	slices.Sort(ns)
	at := func(p float64) float64 {
		i := int(float64(len(ns))*p+0.999999) - 1
		i = max(0, min(i, len(ns)-1))
		return float64(ns[i]) / 1e6
	}
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	return pct{N: len(ns), Mean: sum / float64(len(ns)) / 1e6, P50: at(0.50), P90: at(0.90), P99: at(0.99),
		P999: at(0.999), Max: float64(ns[len(ns)-1]) / 1e6}
}

func (r *Result) summary() string {
	l := r.Latency
	return fmt.Sprintf("[%s] %s: n=%d received=%d lost=%d dup=%d reordered=%d cut=%d updates=%d foreign=%d | latency ms p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f | "+
		"send lag p99 %.3f ms | puback p99 %.3f ms | achieved %.0f/s of %.0f/s | CPU %.1f µs/event (gen %.1f, peer %.1f) | other work %.0f%% of CPUs | GC %d (max pause %.3f ms)%s%s",
		r.Peer, r.Scenario, r.Sent, r.Received, r.Lost, r.Duplicated, r.Reordered, r.StreamsCut, r.Updates, r.Foreign, l.P50, l.P90, l.P99, l.P999, l.Max,
		r.SendLag.P99, r.Puback.P99, r.AchievedRate, r.OfferedRate, r.CPUPerEventUs, r.GenCPUPerEventUs, r.SUTCPUPerEventUs,
		r.OtherCPUPct, r.GCCount, r.GCPauseMaxMs,
		cond(r.StreamEnded != "", " | STREAM ENDED: "+r.StreamEnded, ""), cond(r.Aborted != "", " | ABORTED: "+r.Aborted, "")) +
		cond(r.JournalMsgsPerEvent > 0, fmt.Sprintf(" | journal %.3f msgs/event, %.2f entries/msg", r.JournalMsgsPerEvent, r.JournalEntriesPerMsg), "")
}

func cond[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

func scenarioName(o options) string {
	s := ""
	switch o.Mode {
	case "oneatatime":
		s = fmt.Sprintf("one at a time, %d events", o.N)
	case "rate":
		s = fmt.Sprintf("open loop %g events/s × %v", o.Rate, o.Duration)
	case "ceiling":
		s = fmt.Sprintf("ceiling: heartbeats %g/s × %v, PUBACK only", o.Rate, o.Duration)
	}
	if o.AlarmEvery > 1 {
		s = fmt.Sprintf("background %g events/s × %v, 1 in %d an alarm (call button and exit door at night, alternately)", o.Rate, o.Duration, o.AlarmEvery)
	}
	if o.Cluster > 0 {
		s += fmt.Sprintf(", redundant group: journal on %d NATS replicas", o.Cluster)
		if o.natsApart() {
			s += fmt.Sprintf(" on CPU %s, off the hub's", o.PinNATS)
		}
	}
	if o.Stall {
		s += ", one stalled alarm consumer"
	}
	if o.SyncEachWrite {
		s += ", sync_each_write"
	}
	if o.SyncEvery != 0 {
		s += fmt.Sprintf(", store.sync_every %v", o.SyncEvery)
	}
	if o.BufferedReads {
		s += ", buffered publisher reads"
	}
	if o.Gateways != 4 {
		s += fmt.Sprintf(", %d gateways", o.Gateways)
	}
	return s
}

type machine struct {
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	Kernel     string `json:"kernel"`
	LoadAvg    string `json:"loadavg"` // /proc/loadavg when the run started: other work on a shared machine
	Hostname   string `json:"hostname"`
}

func machineInfo() machine {
	b := benchdoc.ReadMachine() // the same reading as the side reports'
	m := machine{NumCPU: b.NProc, GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: b.Go, CPUModel: b.CPU,
		Kernel: b.Kernel, LoadAvg: b.LoadAvg}
	m.Hostname, _ = os.Hostname()
	return m
}

func gatewayID(g int) string { return fmt.Sprintf("gw%d", g+1) }

// deviceID is the call button that event i (sent by gateway i%G) presses:
// every event has its own device, so every event raises a new alarm and
// costs a journal write and a stream message.
func deviceID(g, k int) string { return fmt.Sprintf("b%d-%d", g+1, k) }

// motionID is a background motion detector; backgroundDevices per gateway.
func motionID(g, k int) string { return fmt.Sprintf("p%d-%d", g+1, k) }

const backgroundDevices = 125 // × 4 gateways: a 500-sensor night

// isAlarm reports whether event i is a call-button press (the rest are
// background traffic that raises nothing).
func (b *bench) isAlarm(i int) bool { return b.o.AlarmEvery <= 1 || i%b.o.AlarmEvery == 0 }

// doorID is the unit exit door that alarm event i opens (every second
// alarm of a night or ramp run): each opens once, so each raises its own
// wander alarm.
func doorID(g, k int) string { return fmt.Sprintf("d%d-%d", g+1, k) }

// isDoor reports whether alarm event i is an exit door opened at night
// rather than a call-button press (rate mode with -alarm-every > 1: they
// alternate, so both of the rules C's Node-RED flow implements are timed).
func (b *bench) isDoor(i int) bool {
	return b.o.Mode == "rate" && b.o.AlarmEvery > 1 && (i/b.o.AlarmEvery)%2 == 1
}

// benchNight is the sites' night window in every peer (the hub's config and
// the Node-RED flow): the whole day, so the door-at-night rule fires
// whenever the bench runs.
var benchNight = hub.Night{Start: "00:00", End: "00:00"}

// buildConfig makes a production-shaped config: credentials, no demo mode.
func buildConfig(o options, dataDir string) (*hub.Config, error) {
	gwHash, err := bcrypt.GenerateFromPassword([]byte(gwPass), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	userHash, err := bcrypt.GenerateFromPassword([]byte(staffPass), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	perGW := (o.N + o.Gateways - 1) / o.Gateways
	if o.AlarmEvery > 1 {
		perGW = o.N/o.AlarmEvery + 1
	}
	if o.Mode == "ceiling" {
		perGW = 1
	}
	s := hub.Site{ID: site, Name: "Benchmark", Night: benchNight,
		Units: []hub.Unit{{ID: "avd-1", Name: "Avdelning 1"}}}
	for g := range o.Gateways {
		gw := hub.Gateway{ID: gatewayID(g), PasswordHash: string(gwHash), Heartbeat: 10 * time.Minute,
			Devices: make([]hub.Device, 0, perGW)}
		addButton := func(k int) {
			gw.Devices = append(gw.Devices, hub.Device{ID: deviceID(g, k), Type: "personal_trigger",
				Resident: fmt.Sprintf("r-%d-%d", g+1, k), Unit: "avd-1", Room: strconv.Itoa(k % 1000)})
		}
		if o.AlarmEvery > 1 && o.Mode == "rate" {
			// Only the buttons this gateway presses (event i, i%AlarmEvery == 0,
			// goes through gateway i%G): the config stays small at 50k/s.
			for i := 0; i < o.N; i += o.AlarmEvery {
				switch {
				case i%o.Gateways != g:
				case (i/o.AlarmEvery)%2 == 1:
					gw.Devices = append(gw.Devices, hub.Device{ID: doorID(g, i/o.AlarmEvery), Type: "door_sensor",
						Exit: true, Unit: "avd-1", Room: "utgang"})
				default:
					addButton(i / o.AlarmEvery)
				}
			}
		} else {
			for k := range perGW {
				addButton(k)
			}
		}
		if o.AlarmEvery > 1 {
			for k := range backgroundDevices {
				gw.Devices = append(gw.Devices, hub.Device{ID: motionID(g, k), Type: "occupancy_detector",
					Unit: "avd-1", Room: strconv.Itoa(k)})
			}
		}
		s.Gateways = append(s.Gateways, gw)
	}
	cfg := &hub.Config{
		DataDir: dataDir, Timezone: "Europe/Stockholm",
		MQTT:  hub.MQTTConfig{TCP: "127.0.0.1:0"},
		HTTP:  hub.HTTPConfig{Address: "127.0.0.1:0"},
		Store: hub.StoreConfig{SyncEvery: o.SyncEvery, SyncEachWrite: o.SyncEachWrite},
		Users: []hub.User{{Username: staffUser, Name: "Bench Staff", Role: hub.RoleStaff, PasswordHash: string(userHash)}},
		Sites: []hub.Site{s},
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// bench holds one run's per-event records. Times are ns since base
// (monotonic clock); 0 means "not yet".
type bench struct {
	o    options
	base time.Time
	n    int

	sched []int64        // scheduled send time (written by the sender)
	sent  []int64        // Publish called (written by the sender)
	recv  []atomic.Int64 // alarm read on the stream (written by the reader)
	acked []atomic.Int64 // PUBACK seen by the collector

	received   atomic.Int64
	duplicated atomic.Int64
	reordered  atomic.Int64
	foreign    atomic.Int64
	updates    atomic.Int64
	pubackErrs atomic.Int64
	acks       atomic.Int64
	// pubackUnexpected: PUBACKs for ids not in flight (raw generator).
	pubackUnexpected atomic.Int64

	// Owned by the stream reader: per event, its alarm's id and a hash of
	// the last message (alarm id + updated_at).
	alarmID [][]byte
	lastMsg []uint64
	lastIdx []int // per gateway: the latest event index whose alarm arrived

	// oneatatime: the reader tells the sender which event arrived.
	notify chan int

	streamEnd atomic.Pointer[string]
}

func (b *bench) now() int64 { return int64(time.Since(b.base)) }

func runBench(o options, logw io.Writer) (*Result, error) {
	dataDir, err := os.MkdirTemp(o.DataParent, "vaka-load-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dataDir)
	cfg, err := buildConfig(o, filepath.Join(dataDir, "hub"))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	b := &bench{o: o, base: time.Now(), n: o.N,
		sched: make([]int64, o.N), sent: make([]int64, o.N),
		recv: make([]atomic.Int64, o.N), acked: make([]atomic.Int64, o.N),
		alarmID: make([][]byte, o.N), lastMsg: make([]uint64, o.N),
		lastIdx: make([]int, o.Gateways)}
	for g := range b.lastIdx {
		b.lastIdx[g] = -1
	}
	if o.Mode == "oneatatime" {
		b.notify = make(chan int, 1)
	}
	pr, err := startPeer(o, cfg, b, logw, dataDir)
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			pr.close()
		}
	}()
	b.foreign.Store(0) // Node-RED's start-up probes

	// The stream first, so no alarm is raised before anyone listens.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readerDone <-chan struct{}
	var streamsCut0, jmsgs0, jentries0 float64
	if pr.httpAddr != "" {
		readerDone, err = b.openStream(ctx, "http://"+pr.httpAddr)
		if err != nil {
			return nil, err
		}
		streamsCut0 = pr.metric("vaka_stream_subscribers_cut_total")
		jmsgs0, jentries0 = pr.metric("vaka_cluster_journal_appends_total"), pr.metric("vaka_cluster_journal_entries_total")
		if o.Stall {
			// A second staff screen that stops reading: the hub must cut
			// it off without slowing or losing anything for the first.
			sc, err := stalledStream("http://" + pr.httpAddr)
			if err != nil {
				return nil, fmt.Errorf("stalled stream: %w", err)
			}
			defer sc.Close()
		}
	} else {
		done := make(chan struct{})
		close(done)
		readerDone = done
	}

	topics := make([]string, o.Gateways)
	for g := range topics {
		if o.Mode == "ceiling" {
			topics[g] = event.HeartbeatTopic(site, gatewayID(g))
		} else {
			topics[g] = event.EventTopic(site, gatewayID(g))
		}
	}
	var (
		clients []paho.Client
		pubs    []*rawPub
	)
	for g := range o.Gateways {
		if o.Gen == genRaw {
			p, err := dialRaw(b, pr.mqttAddr, g, topics[g])
			if err != nil {
				return nil, fmt.Errorf("gateway %s: %w", gatewayID(g), err)
			}
			pubs = append(pubs, p)
			defer p.close()
			continue
		}
		c, err := connect(pr.mqttAddr, g, o.BufferedReads)
		if err != nil {
			return nil, fmt.Errorf("gateway %s: %w", gatewayID(g), err)
		}
		clients = append(clients, c)
		defer c.Disconnect(50)
	}

	// Payloads are built before the measured phase: the generator's
	// per-event work is then encoding a PUBLISH (raw) or a Publish call
	// and a channel send (paho).
	payloads := b.payloads()

	res := &Result{Options: o, Peer: o.Peer, Scenario: scenarioName(o), Machine: machineInfo(), Started: time.Now().UTC()}
	runtime.GC()
	var peerCPU0, peerWait0 time.Duration
	var peerIO0 int64
	for _, pid := range pr.pids {
		peerCPU0 += procCPU(pid)
		peerIO0 += procSyscalls(pid)
		peerWait0 += procRunqWait(pid)
	}
	genWait0 := procRunqWait(os.Getpid())
	busy0 := machineBusy()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var ru0, ru1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru0); err != nil {
		return nil, err
	}
	if o.startProfile != nil {
		if err := o.startProfile(); err != nil {
			return nil, err
		}
	}
	stopHubProfile, err := startHubProfile(o, pr.hubPid)
	if err != nil {
		return nil, err
	}
	wall0 := time.Now()

	// PUBACK collectors (paho): one per gateway, bounded queue, in order.
	// The raw generator's connection readers record PUBACKs themselves.
	abort := make(chan struct{})
	ackQ := make([]chan ackItem, len(clients))
	var collectors sync.WaitGroup
	for g := range ackQ {
		ackQ[g] = make(chan ackItem, 1<<14)
		collectors.Add(1)
		go func(q <-chan ackItem) {
			defer collectors.Done()
			b.collect(q, abort)
		}(ackQ[g])
	}

	var sentN int
	var aborted string
	switch {
	case o.Gen == genRaw && o.Mode == "oneatatime":
		sentN, aborted = b.sendOneAtATimeRaw(pubs, payloads)
	case o.Gen == genRaw:
		sentN, aborted = b.sendOpenLoopRaw(pubs, payloads)
	case o.Mode == "oneatatime":
		sentN, aborted = b.sendOneAtATime(clients, topics, payloads, ackQ)
	default:
		sentN, aborted = b.sendOpenLoop(clients, topics, payloads, ackQ)
	}
	for _, q := range ackQ {
		close(q)
	}
	// Drain: wait for the rest, at most drainWait after the last send or
	// the scheduled end, whichever is later.
	end := b.now()
	if sentN > 0 {
		end = max(end, b.sched[sentN-1])
	}
	deadline := b.base.Add(time.Duration(end) + drainWait)
	expected := 0
	for i := range sentN {
		if b.isAlarm(i) {
			expected++
		}
	}
	for time.Now().Before(deadline) {
		acked := b.acks.Load()+b.pubackErrs.Load() >= int64(sentN)
		done := b.received.Load() >= int64(expected) && acked
		if o.Mode == "ceiling" {
			done = acked
		}
		if done || b.streamEnd.Load() != nil && o.Mode != "ceiling" {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(abort)
	collectors.Wait()
	wall := time.Since(wall0)
	if o.stopProfile != nil {
		o.stopProfile()
	}
	if err := stopHubProfile(); err != nil {
		fmt.Fprintln(logw, "vaka-load: -hub-cpuprofile:", err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru1); err != nil {
		return nil, err
	}
	runtime.ReadMemStats(&ms1)
	var peerCPU1, peerWait1 time.Duration
	var peerIO1 int64
	for _, pid := range pr.pids {
		peerCPU1 += procCPU(pid)
		peerIO1 += procSyscalls(pid)
		peerWait1 += procRunqWait(pid)
	}
	busy1 := machineBusy()
	res.GenRunqWaitMs = float64(procRunqWait(os.Getpid())-genWait0) / 1e6
	res.SUTRunqWaitMs = float64(peerWait1-peerWait0) / 1e6

	// Results.
	res.Sent = sentN
	res.Aborted = aborted
	res.OfferedRate = o.Rate
	if o.Mode == "oneatatime" {
		res.OfferedRate = 0
	}
	if sentN > 1 {
		res.SendSeconds = float64(b.sent[sentN-1]-b.sent[0]) / 1e9
		if res.SendSeconds > 0 {
			res.AchievedRate = float64(sentN-1) / res.SendSeconds
		}
	}
	res.WallSeconds = wall.Seconds()
	var lat, from, lag, ack []int64
	for i := range sentN {
		lag = append(lag, b.sent[i]-b.sched[i])
		if a := b.acked[i].Load(); a != 0 {
			ack = append(ack, a-b.sched[i])
		}
		if o.Mode == "ceiling" {
			continue
		}
		if r := b.recv[i].Load(); r != 0 {
			lat = append(lat, r-b.sched[i])
			from = append(from, r-b.sent[i])
		}
	}
	if o.Dump != "" {
		if err := b.dump(o.Dump, sentN); err != nil {
			fmt.Fprintln(logw, "vaka-load: dump:", err)
		}
	}
	res.SendLag = percentiles(lag)
	res.Puback = percentiles(ack)
	res.PubackErrors = int(b.pubackErrs.Load())
	if o.Mode == "ceiling" {
		res.Received = len(ack)
		res.Latency = res.Puback
	} else {
		res.Received = len(lat)
		res.Latency = percentiles(lat)
		res.FromSend = percentiles(from)
	}
	res.Lost = sentN - res.Received
	if o.Mode != "ceiling" {
		res.Lost = expected - res.Received
	}
	res.Duplicated = int(b.duplicated.Load())
	res.Reordered = int(b.reordered.Load())
	res.PeerCPUSeconds = (peerCPU1 - peerCPU0).Seconds()
	if pr.httpAddr != "" {
		res.StreamsCut = int(pr.metric("vaka_stream_subscribers_cut_total") - streamsCut0)
		res.JournalSlowWrites = int(pr.metric("vaka_store_slow_writes_total"))
		res.JournalWriteMaxMS = pr.metric("vaka_store_write_max_seconds") * 1000
		if o.Cluster > 0 && res.Sent > 0 {
			msgs := pr.metric("vaka_cluster_journal_appends_total") - jmsgs0
			res.JournalMsgsPerEvent = msgs / float64(res.Sent)
			if msgs > 0 {
				res.JournalEntriesPerMsg = (pr.metric("vaka_cluster_journal_entries_total") - jentries0) / msgs
			}
		}
	}
	res.PubackUnexpected = int(b.pubackUnexpected.Load())
	res.Foreign = int(b.foreign.Load())
	res.Updates = int(b.updates.Load())
	user := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano())
	sys := time.Duration(ru1.Stime.Nano() - ru0.Stime.Nano())
	res.CPUUserSeconds, res.CPUSysSeconds = user.Seconds(), sys.Seconds()
	if sentN > 0 {
		res.CPUPerEventUs = float64(user+sys+peerCPU1-peerCPU0) / 1e3 / float64(sentN)
		res.GenCPUPerEventUs = float64(user+sys) / 1e3 / float64(sentN)
		res.SUTCPUPerEventUs = float64(peerCPU1-peerCPU0) / 1e3 / float64(sentN)
		res.SUTIOCallsPerEvent = float64(peerIO1-peerIO0) / float64(sentN)
	}
	if other := busy1 - busy0 - (user + sys) - (peerCPU1 - peerCPU0); wall > 0 {
		res.OtherCPUPct = max(0, 100*other.Seconds()/(wall.Seconds()*float64(runtime.NumCPU())))
	}
	res.GCCount = ms1.NumGC - ms0.NumGC
	for k := ms0.NumGC; k < ms1.NumGC && k < ms0.NumGC+256; k++ {
		p := float64(ms1.PauseNs[k%256]) / 1e6
		res.GCPauseMaxMs = max(res.GCPauseMaxMs, p)
	}
	res.GCPauseSumMs = float64(ms1.PauseTotalNs-ms0.PauseTotalNs) / 1e6
	res.PeakHeapMB = float64(ms1.HeapInuse) / (1 << 20)
	if st, err := os.Stat(filepath.Join(dataDir, "hub", "alarms.journal")); err == nil {
		res.DataDirMB = float64(st.Size()) / (1 << 20)
	}
	if p := b.streamEnd.Load(); p != nil {
		res.StreamEnded = *p
	}

	for _, c := range clients {
		c.Disconnect(50)
	}
	for _, p := range pubs {
		p.close()
	}
	cancel()
	closed = true
	pr.close()
	select {
	case <-readerDone:
	case <-time.After(2 * time.Second):
	}
	return res, nil
}

type ackItem struct {
	i   int
	tok paho.Token
}

// collect waits for each PUBACK in order. It never waits past abort.
func (b *bench) collect(q <-chan ackItem, abort <-chan struct{}) {
	for it := range q {
		select {
		case <-it.tok.Done():
			if it.tok.Error() != nil {
				b.pubackErrs.Add(1)
				continue
			}
			b.acked[it.i].Store(max(1, b.now()))
			b.acks.Add(1)
		case <-abort:
			// Counted below as missing; drain the queue without waiting.
			for range q {
			}
			return
		}
	}
}

// payloads builds event i: gateway i%G, device b<g>-<i/G>, id e<i>, with the
// per-gateway sequence number and the scheduled wall time.
func (b *bench) payloads() [][]byte {
	o := b.o
	out := make([][]byte, b.n)
	period := time.Duration(0)
	if o.Mode != "oneatatime" {
		period = time.Duration(float64(time.Second) / o.Rate)
	}
	wall := time.Now().UTC()
	for i := range out {
		g, k := i%o.Gateways, i/o.Gateways
		ts := wall.Add(time.Duration(i) * period).Format(time.RFC3339Nano)
		var p []byte
		if o.Mode == "ceiling" {
			p = fmt.Appendf(nil, `{"ts":%q,"seq":%d}`, ts, k)
		} else if !b.isAlarm(i) {
			p = fmt.Appendf(nil, `{"v":1,"id":"e%d","device":%q,"dty":"0018","state":"motion","seq":%d,"ts":%q}`,
				i, motionID(g, k%backgroundDevices), k, ts)
		} else if b.isDoor(i) {
			p = fmt.Appendf(nil, `{"v":1,"id":"e%d","device":%q,"dty":"0014","state":"open","seq":%d,"ts":%q}`,
				i, doorID(g, i/o.AlarmEvery), k, ts)
		} else if o.AlarmEvery > 1 {
			p = fmt.Appendf(nil, `{"v":1,"id":"e%d","device":%q,"dty":"0003","stc":"0010","state":"pressed","seq":%d,"ts":%q}`,
				i, deviceID(g, i/o.AlarmEvery), k, ts)
		} else {
			p = fmt.Appendf(nil, `{"v":1,"id":"e%d","device":%q,"dty":"0003","stc":"0010","state":"pressed","seq":%d,"ts":%q}`,
				i, deviceID(g, k), k, ts)
		}
		out[i] = p
	}
	return out
}

// sleeper is how the open-loop senders wait for the next due event: a
// timerfd pacer (Go's sleep wakes ≈ 0.6 ms late), or time.Sleep with
// -go-sleep to show that lateness.
func (b *bench) sleeper() (sleep func(time.Duration), closeFn func(), err error) {
	if b.o.GoSleep {
		return time.Sleep, func() {}, nil
	}
	p, err := newPacer()
	if err != nil {
		return nil, nil, err
	}
	return func(d time.Duration) {
		if p.sleep(d) != nil {
			time.Sleep(d)
		}
	}, p.close, nil
}

// sendOpenLoop publishes event i at start + i/rate. It sleeps only until
// the next due time computed from the schedule (never a fixed sleep, so
// error does not accumulate) and sends late events at once. It does not
// wait for PUBACKs: tokens go to the collectors' bounded queues.
func (b *bench) sendOpenLoop(clients []paho.Client, topics []string, payloads [][]byte, ackQ []chan ackItem) (int, string) {
	o := b.o
	period := float64(time.Second) / o.Rate
	start := b.now() + int64(20*time.Millisecond)
	// Hard bound: give up if the generator falls this far behind.
	limit := start + int64(o.Duration) + int64(maxBehind)
	G := len(clients)
	sleep, closePacer, err := b.sleeper()
	if err != nil {
		return 0, "pacer: " + err.Error()
	}
	defer closePacer()
	for i := range b.n {
		due := start + int64(float64(i)*period)
		b.sched[i] = due
		now := b.now()
		if d := due - now; d > 0 {
			sleep(time.Duration(d))
			now = b.now()
		}
		if now > limit {
			return i, fmt.Sprintf("gave up: more than %v behind schedule at event %d", maxBehind, i)
		}
		g := i % G
		b.sent[i] = now
		tok := clients[g].Publish(topics[g], 1, false, payloads[i])
		ackQ[g] <- ackItem{i, tok}
	}
	return b.n, ""
}

// sendOneAtATime sends one event, waits for its alarm on the stream, and
// repeats. Latency is measured from the Publish call.
func (b *bench) sendOneAtATime(clients []paho.Client, topics []string, payloads [][]byte, ackQ []chan ackItem) (int, string) {
	G := len(clients)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := range b.n {
		g := i % G
		now := b.now()
		b.sched[i], b.sent[i] = now, now
		tok := clients[g].Publish(topics[g], 1, false, payloads[i])
		ackQ[g] <- ackItem{i, tok}
		if msg := b.awaitAlarm(i, timer); msg != "" {
			return i + 1, msg
		}
	}
	return b.n, ""
}

// awaitAlarm waits (one at a time) until event i's alarm is read on the
// stream, at most drainWait; it says why not, or "".
func (b *bench) awaitAlarm(i int, timer *time.Timer) string {
	timer.Reset(drainWait)
	for {
		select {
		case j := <-b.notify:
			if j != i {
				continue
			}
			if b.streamEnd.Load() != nil {
				return "stream ended"
			}
			return ""
		case <-timer.C:
			return fmt.Sprintf("no alarm for event %d within %v", i, drainWait)
		}
	}
}

// openStream connects to /api/v1/stream with HTTP Basic auth, waits for
// "hello" and reads alarms in the background: one reader, a bufio.Reader,
// and only the event_id picked out of each alarm's JSON.
func (b *bench) openStream(ctx context.Context, base string) (<-chan struct{}, error) {
	return alarmStream(ctx, base, b.now, b.onAlarm, func(msg string) { b.streamEnd.Store(&msg) })
}

// alarmStream opens the staff stream at base as the bench's staff user and
// calls onAlarm with each alarm message's data line and the time now() it
// was read. It returns when the hub's hello has arrived (within 5 s); the
// channel closes when the stream ends, and end is told why, unless ctx
// ended it.
func alarmStream(ctx context.Context, base string, now func() int64, onAlarm func(line []byte, t int64), end func(msg string)) (<-chan struct{}, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/stream", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(staffUser, staffPass)
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("stream: %s", resp.Status)
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	var ended atomic.Pointer[string]
	go func() {
		defer close(done)
		defer resp.Body.Close()
		r := bufio.NewReaderSize(resp.Body, 1<<20)
		var ev []byte
		helloSeen := false
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				if ctx.Err() == nil {
					msg := "stream closed by the hub (cut off: it took nothing for the stall timeout?)"
					if !errors.Is(err, io.EOF) {
						msg = err.Error()
					}
					ended.Store(&msg)
					end(msg)
				}
				if !helloSeen {
					close(ready)
				}
				return
			}
			t := now()
			line = bytes.TrimRight(line, "\r\n")
			switch {
			case bytes.HasPrefix(line, []byte("event: ")):
				ev = append(ev[:0], line[len("event: "):]...)
				if string(ev) == "hello" && !helloSeen {
					helloSeen = true
					close(ready)
				}
			case bytes.HasPrefix(line, []byte("data: ")) && string(ev) == "alarm":
				onAlarm(line, t)
			}
		}
	}()
	select {
	case <-ready:
		if p := ended.Load(); p != nil {
			return nil, fmt.Errorf("stream: %s", *p)
		}
		return done, nil
	case <-time.After(5 * time.Second):
		return nil, errors.New("stream: no hello within 5 s")
	}
}

// onAlarm records one alarm message. The first "event_id" in the alarm's
// JSON is its own (history comes after it): <site>/<gw>/e<i>. The first
// message for an event is its arrival. A later one is an update (another
// transition of the same alarm, e.g. a notification) unless it repeats the
// same alarm id and updated_at (a duplicate) or is a second alarm for the
// same event (also a duplicate: one event raised two alarms).
func (b *bench) onAlarm(line []byte, t int64) {
	i, ok := eventIndex(line, b.n)
	if !ok {
		b.foreign.Add(1)
		return
	}
	id := field(line, idKey)
	upd := field(line, updKey)
	h := fnv.New64a()
	h.Write(id)
	h.Write(upd)
	sum := h.Sum64() | 1
	if !b.recv[i].CompareAndSwap(0, max(1, t)) {
		switch {
		case b.lastMsg[i] == sum:
			b.duplicated.Add(1)
		case string(id) != string(b.alarmID[i]):
			b.duplicated.Add(1)
		default:
			b.updates.Add(1)
		}
		b.lastMsg[i] = sum
		return
	}
	b.lastMsg[i] = sum
	b.alarmID[i] = append([]byte(nil), id...)
	if g := i % b.o.Gateways; i < b.lastIdx[g] {
		b.reordered.Add(1)
	} else {
		b.lastIdx[g] = i
	}
	b.received.Add(1)
	if b.notify != nil {
		select {
		case b.notify <- i:
		default:
		}
	}
}

var (
	idKey    = []byte(`"id":"`)
	eventKey = []byte(`"event_id":"`)
	updKey   = []byte(`"updated_at":"`)
	sitePfx  = []byte(site + "/")
)

// field returns the string value of the first occurrence of key in line.
func field(line, key []byte) []byte {
	k := bytes.Index(line, key)
	if k < 0 {
		return nil
	}
	v := line[k+len(key):]
	if q := bytes.IndexByte(v, '"'); q >= 0 {
		return v[:q]
	}
	return nil
}

// eventIndex finds i in the alarm's event_id <site>/<gw>/e<i>.
func eventIndex(line []byte, n int) (int, bool) {
	v := field(line, eventKey)
	if !bytes.HasPrefix(v, sitePfx) {
		return 0, false
	}
	s := bytes.LastIndexByte(v, '/')
	if s < 0 || s+2 > len(v) || v[s+1] != 'e' {
		return 0, false
	}
	i, err := strconv.Atoi(string(v[s+2:]))
	if err != nil || i < 0 || i >= n {
		return 0, false
	}
	return i, true
}

// connect opens gateway g's MQTT 3.1.1 session, QoS 1 publisher.
func connect(addr string, g int, buffered bool) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(site + "-" + gatewayID(g)).SetUsername(site + "/" + gatewayID(g)).SetPassword(gwPass).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second).SetKeepAlive(60 * time.Second)
	if buffered {
		opts.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			if err != nil {
				return nil, err
			}
			return &bufConn{Conn: c, r: bufio.NewReaderSize(c, 32<<10)}, nil
		})
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

// bufConn serves paho's many small reads from a buffer.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dump writes one line per event: index, scheduled, sent, PUBACK and stream
// times in µs since the start (0: never), for looking at where tails cluster.
func (b *bench) dump(file string, n int) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "i,sched_us,sent_us,puback_us,stream_us")
	for i := range n {
		fmt.Fprintf(w, "%d,%d,%d,%d,%d\n", i, b.sched[i]/1e3, b.sent[i]/1e3, b.acked[i].Load()/1e3, b.recv[i].Load()/1e3)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
