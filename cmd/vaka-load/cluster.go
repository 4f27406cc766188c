package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vaka-care/vaka/cluster"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/freeport"
)

// The redundant group (issue 19, docs/scale-out.md) in the bench:
//
//	vaka-load -hub-bin ./vaka -cluster 3 …   the hub's journal replicated on a 3-node NATS
//	                                         JetStream cluster (one child process, pinned with the hub)
//	vaka-load failover -hub-bin ./vaka [-kills 10] -out F.json   three hubs, SIGKILL the active one
//	vaka-load failover -report F.json        the report's section
//
// The NATS nodes run in one child process of vaka-load (-serve-nats),
// pinned to the system under test's CPU with the hub: their CPU is the
// peer's, and their traffic stays on loopback. On one machine the three
// replicas share its disk and cores, so a quorum costs here what it costs
// between three machines on a LAN, minus the network.

// serveNATS runs n embedded NATS nodes under dir, prints their client
// URLs on one line and runs until stdin closes.
func serveNATS(args []string, stdout io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "vaka-load -serve-nats N DIR")
		return 2
	}
	var n int
	if _, err := fmt.Sscan(args[0], &n); err != nil || n < 1 || n > 5 {
		fmt.Fprintln(os.Stderr, "vaka-load -serve-nats: N is 1 to 5")
		return 2
	}
	var client, route []string
	for range n {
		a, err := freeport.Addr()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b, err := freeport.Addr()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		client, route = append(client, a), append(route, b)
	}
	var urls []string
	for i := range n {
		var routes []string
		for k := range n {
			if k != i {
				routes = append(routes, "nats-route://"+route[k])
			}
		}
		e, err := cluster.StartEmbedded(cluster.EmbeddedOptions{Name: fmt.Sprintf("bench-nats-%d", i), Listen: client[i],
			ClusterListen: route[i], Routes: routes, ClusterName: "vaka-bench", StoreDir: filepath.Join(args[1], fmt.Sprint(i))})
		if err != nil {
			fmt.Fprintln(os.Stderr, "vaka-load -serve-nats:", err)
			return 1
		}
		defer e.Close()
		urls = append(urls, e.ClientURL())
	}
	fmt.Fprintln(stdout, strings.Join(urls, ","))
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// startNATSProcess starts the NATS nodes' process for a run and returns
// their client URLs; its pid counts as the peer's.
func (p *peer) startNATSProcess(o options, n int, tmp string) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	pin := o.PinSUT
	if o.PinNATS != "" {
		pin = o.PinNATS
	}
	cmd := pinned(exec.Command(exe, "-serve-nats", fmt.Sprint(n), filepath.Join(tmp, "nats")), pin)
	cmd.Env = natsProcessEnv(os.Environ())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	p.closers = append(p.closers, func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) == "" {
		return nil, fmt.Errorf("nats: no client URLs: %v", err)
	}
	p.pids = append(p.pids, cmd.Process.Pid)
	return strings.Split(strings.TrimSpace(line), ","), nil
}

// natsProcessEnv is the NATS nodes' process environment: as inside
// `vaka hub`, where embedded nodes run in production, with the Go
// runtime's sysmon kept out of its deep sleep (cmd/vaka/sysmon.go); without
// it sysmon was woken by nearly every Raft message and then polled every
// 20 µs, about 7 % of the peer's CPU in perf at 1,000 events/s, a cost the
// nodes do not have in the hub. VAKA_SYSMON_SLEEP=1 leaves env as it is,
// like the hub.
func natsProcessEnv(env []string) []string {
	for _, kv := range env {
		if kv == "VAKA_SYSMON_SLEEP=1" || strings.HasPrefix(kv, "GODEBUG=") && strings.Contains(kv, "schedtrace=") {
			return env
		}
	}
	out := append([]string(nil), env...)
	for i, kv := range out {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			out[i] = "GODEBUG=" + v + cond(v != "", ",", "") + "schedtrace=2147483647"
			return out
		}
	}
	return append(out, "GODEBUG=schedtrace=2147483647")
}

// clusterConfig makes cfg one hub (node) of a redundant group on urls.
func clusterConfig(cfg *hub.Config, node string, urls []string, replicas int, ttl time.Duration) {
	cfg.Cluster = &hub.ClusterConfig{Node: node, NATS: &hub.ClusterNATS{URLs: urls}, Replicas: replicas,
		LeaseTTL: ttl, Stream: "VAKA_JOURNAL"}
}

// withCluster, for -cluster N, starts the NATS nodes and puts cfg in a
// redundant group of one hub on them (the active hub; standbys take no
// part in the alarm path).
func (p *peer) withCluster(o options, cfg *hub.Config, tmp string) error {
	if o.Cluster == 0 {
		return nil
	}
	urls, err := p.startNATSProcess(o, o.Cluster, tmp)
	if err != nil {
		return err
	}
	clusterConfig(cfg, "bench-a", urls, o.Cluster, 5*time.Second)
	return nil
}

// FailoverResult is one failover run (vaka-load failover).
type FailoverResult struct {
	Command  string    `json:"command"`
	Machine  machine   `json:"machine"`
	Started  time.Time `json:"started"`
	LeaseTTL string    `json:"lease_ttl"`
	Rate     float64   `json:"rate"`
	Replicas int       `json:"replicas"`
	// Per kill: SIGKILL → the next event acknowledged (by another hub),
	// and SIGKILL → another hub answering /healthz.
	AckGapMs   []float64 `json:"ack_gap_ms"`
	TakeoverMs []float64 `json:"takeover_ms"`
	Sent       int       `json:"sent"`
	Acked      int       `json:"acked"`
	Resent     int       `json:"resent"`
	Error      string    `json:"error,omitempty"`
}

// runFailover: three `vaka hub` processes of one group on the NATS nodes,
// a gateway (paho, QoS 1) that knows all three and presses a new button
// every 1/rate s, each kept until acknowledged; every few seconds the
// active hub is SIGKILLed (and started again as a standby).
func runFailover(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vaka-load failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hubBin := fs.String("hub-bin", "", "the vaka binary (required)")
	kills := fs.Int("kills", 10, "SIGKILLs of the active hub")
	rate := fs.Float64("rate", 50, "presses per second")
	ttl := fs.Duration("lease-ttl", 5*time.Second, "cluster.lease_ttl (the shipped default is 5s)")
	pinSUT := fs.String("pin-sut", "", "pin the hubs and NATS nodes to these CPUs")
	pinGen := fs.String("pin-gen", "", "pin this process to these CPUs")
	out := fs.String("out", "", "write the JSON result here")
	report := fs.Bool("report", false, "write the report's section (markdown) from the JSON result given")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *report {
		if err := writeFailoverReport(stdout, fs.Args()); err != nil {
			fmt.Fprintln(stderr, "vaka-load failover:", err)
			return 1
		}
		return 0
	}
	if *hubBin == "" || *kills < 1 || *kills > 50 || *rate <= 0 || *rate > 1000 {
		fmt.Fprintln(stderr, "vaka-load failover: -hub-bin is required; -kills 1-50; -rate up to 1000")
		return 2
	}
	if err := pinSelf(*pinGen); err != nil {
		fmt.Fprintln(stderr, "vaka-load failover: -pin-gen:", err)
		return 1
	}
	res := &FailoverResult{Command: "vaka-load failover " + strings.Join(args, " "), Machine: machineInfo(),
		Started: time.Now().UTC(), LeaseTTL: ttl.String(), Rate: *rate, Replicas: 3}
	err := failover(res, *hubBin, *kills, *rate, *ttl, *pinSUT, stderr)
	if err != nil {
		res.Error = err.Error()
		fmt.Fprintln(stderr, "vaka-load failover:", err)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if werr := os.WriteFile(*out, b, 0o644); werr != nil {
			fmt.Fprintln(stderr, "vaka-load failover:", werr)
			return 1
		}
	}
	if err != nil {
		return 1
	}
	return 0
}

type groupHub struct {
	node, http, mqtt, cfg string
	cmd                   *exec.Cmd
	done                  chan struct{}
}

func (h *groupHub) start(bin, pin string) error {
	h.cmd = pinned(exec.Command(bin, "hub", "--config", h.cfg), pin)
	h.cmd.Stdout, h.cmd.Stderr = io.Discard, io.Discard
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		return err
	}
	h.done = make(chan struct{})
	cmd, done := h.cmd, h.done
	go func() { cmd.Wait(); close(done) }()
	return nil
}

func (h *groupHub) running() bool {
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// activeOf returns the one running hub that answers /healthz (a standby
// has no web server), waiting up to within.
func activeOf(hubs []*groupHub, within time.Duration) (*groupHub, error) {
	c := http.Client{Timeout: 300 * time.Millisecond}
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, h := range hubs {
			if !h.running() {
				continue
			}
			if resp, err := c.Get("http://" + h.http + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return h, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no hub active within %s", within)
}

func failover(res *FailoverResult, bin string, kills int, rate float64, ttl time.Duration, pin string, logw io.Writer) error {
	tmp, err := os.MkdirTemp("", "vaka-failover-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p := &peer{name: "group"}
	defer p.close()
	urls, err := p.startNATSProcess(options{PinSUT: pin}, 3, tmp)
	if err != nil {
		return err
	}
	n := int(rate*float64(kills)*(ttl.Seconds()+6)) + int(rate*10)
	var hubs []*groupHub
	for i, node := range []string{"hub-a", "hub-b", "hub-c"} {
		dir := filepath.Join(tmp, node)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		cfg, err := buildConfig(options{Mode: "oneatatime", N: n, Gateways: 1}, filepath.Join(dir, "data"))
		if err != nil {
			return err
		}
		h := &groupHub{node: node}
		if h.http, err = freeport.Addr(); err != nil {
			return err
		}
		if h.mqtt, err = freeport.Addr(); err != nil {
			return err
		}
		cfg.HTTP.Address, cfg.MQTT.TCP = h.http, h.mqtt
		clusterConfig(cfg, node, urls, 3, ttl)
		h.cfg = filepath.Join(dir, "hub.yaml")
		if err := writeHubConfig(cfg, h.cfg); err != nil {
			return err
		}
		if err := h.start(bin, pin); err != nil {
			return err
		}
		defer func() { h.cmd.Process.Kill(); <-h.done }()
		hubs = append(hubs, h)
		_ = i
	}
	if _, err := activeOf(hubs, 60*time.Second); err != nil {
		return err
	}
	var addrs []string
	for _, h := range hubs {
		addrs = append(addrs, h.mqtt)
	}
	var c paho.Client
	on := ""
	connect := func() bool {
		for _, a := range addrs {
			o := paho.NewClientOptions().AddBroker("tcp://" + a).SetClientID(site + "-" + gatewayID(0)).
				SetUsername(site + "/" + gatewayID(0)).SetPassword(gwPass).SetProtocolVersion(4).
				SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(300 * time.Millisecond)
			cc := paho.NewClient(o)
			if tok := cc.Connect(); tok.WaitTimeout(time.Second) && tok.Error() == nil {
				c, on = cc, a
				return true
			}
		}
		return false
	}
	// send publishes press i until a hub acknowledges it (bounded).
	send := func(i int) (string, bool) {
		payload := fmt.Sprintf(`{"v":1,"id":"f%d","device":%q,"dty":"0003","state":"pressed","ts":%q}`,
			i, deviceID(0, i), time.Now().UTC().Format(time.RFC3339Nano))
		for tries := 0; tries < 600; tries++ {
			if c == nil || !c.IsConnectionOpen() {
				if !connect() {
					time.Sleep(20 * time.Millisecond)
					continue
				}
			}
			if tries > 0 {
				res.Resent++
			}
			tok := c.Publish(event.EventTopic(site, gatewayID(0)), 1, false, payload)
			if tok.WaitTimeout(time.Second) && tok.Error() == nil {
				return on, true
			}
			c.Disconnect(0)
			c = nil
		}
		return "", false
	}
	every := time.Duration(float64(time.Second) / rate)
	i := 0
	for k := range kills {
		// Some presses on the hub now active, then kill it.
		for range int(rate * 2) {
			if _, ok := send(i); !ok {
				return fmt.Errorf("press %d not acknowledged", i)
			}
			res.Sent++
			res.Acked++
			i++
			time.Sleep(every)
		}
		victim, err := activeOf(hubs, 30*time.Second)
		if err != nil {
			return err
		}
		at := time.Now()
		victim.cmd.Process.Signal(syscall.SIGKILL)
		<-victim.done
		// Presses go on at the same rate; the first acknowledged by
		// another hub ends the gap.
		gap := time.Duration(0)
		for gap == 0 {
			by, ok := send(i)
			if !ok {
				return fmt.Errorf("press %d not acknowledged after kill %d", i, k+1)
			}
			res.Sent++
			res.Acked++
			i++
			if by != victim.mqtt {
				gap = time.Since(at)
			}
			if i >= n {
				return errors.New("ran out of buttons")
			}
		}
		next, err := activeOf(hubs, 30*time.Second)
		if err != nil {
			return err
		}
		take := time.Since(at)
		res.AckGapMs = append(res.AckGapMs, float64(gap.Microseconds())/1000)
		res.TakeoverMs = append(res.TakeoverMs, float64(take.Microseconds())/1000)
		fmt.Fprintf(logw, "kill %d: %s SIGKILLed; next acknowledged press after %s; %s active (seen) after %s\n",
			k+1, victim.node, gap.Round(time.Millisecond), next.node, take.Round(time.Millisecond))
		if err := victim.start(bin, pin); err != nil { // back, as a standby
			return err
		}
	}
	if c != nil {
		c.Disconnect(50)
	}
	return nil
}

// writeFailoverReport writes the "Redundant group: failover" section.
func writeFailoverReport(w io.Writer, files []string) error {
	if len(files) != 1 {
		return errors.New("-report needs one result file")
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		return err
	}
	var r FailoverResult
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", files[0], err)
	}
	fmt.Fprintf(w, "\n## Redundant group: failover\n\n")
	fmt.Fprintf(w, "Three `vaka hub` processes of one redundant group (docs/scale-out.md) on a %d-node NATS JetStream cluster on loopback, ", r.Replicas)
	fmt.Fprintf(w, "`cluster.lease_ttl` %s; a gateway that knows all three presses a new call button %g times a second, each kept until acknowledged. ", r.LeaseTTL, r.Rate)
	fmt.Fprintf(w, "The active hub is SIGKILLed %d times (the NATS nodes stay up; started again, it waits as a standby). ", len(r.AckGapMs))
	fmt.Fprintf(w, "**gap** = SIGKILL → the next press acknowledged by another hub (what a gateway sees); **takeover** = SIGKILL → another hub answers `/healthz`. ")
	fmt.Fprintf(w, "Load average at start %s. `%s`\n\n", r.Machine.LoadAvg, r.Command)
	if r.Error != "" {
		fmt.Fprintf(w, "The run did not finish: %s\n\n", r.Error)
	}
	if len(r.AckGapMs) == 0 {
		fmt.Fprintf(w, "No kill was measured.\n")
		return nil
	}
	fmt.Fprintf(w, "| kills | gap median | gap worst | takeover median | takeover worst | presses acknowledged | resent |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %d | %d |\n\n", len(r.AckGapMs), secs(median(r.AckGapMs)), secs(slices.Max(r.AckGapMs)),
		secs(median(r.TakeoverMs)), secs(slices.Max(r.TakeoverMs)), r.Acked, r.Resent)
	verdict := "met"
	if slices.Max(r.AckGapMs) > 10_000 {
		verdict = "**not met**"
	}
	fmt.Fprintf(w, "Goal (issue 19): a standby takes over within 10 s: %s (worst gap %s over %d kills; the machine-gone case, a NATS node lost with the hub, is measured by `TestIntegrationClusterMachineGone` (docs/scale-out.md), not here).\n",
		verdict, secs(slices.Max(r.AckGapMs)), len(r.AckGapMs))
	return nil
}

func secs(ms float64) string { return fmt.Sprintf("%.2f s", ms/1000) }

// natsApart reports whether the NATS nodes run on CPUs of their own
// (-pin-nats), not sharing the hub's: as in a real redundant group, where
// the active hub's machine carries one follower and the others are
// elsewhere.
func (o options) natsApart() bool { return o.PinNATS != "" && o.PinNATS != o.PinSUT }
