package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/mosquitto"
	"github.com/vaka-care/vaka/service"
)

// The peers: the systems under test, each started here on loopback.
const (
	peerVaka     = "vaka"          // A: hub with its embedded broker, rules inline
	peerMosqExt  = "mosquitto-ext" // B: Mosquitto + the hub as an external client (mqtt.broker: external)
	peerNodeRED  = "nodered"       // C: Mosquitto + a Node-RED flow posting alarms to an HTTP sink
	peerSink     = "sink"          // a trivial MQTT sink that only PUBACKs: the generator's own ceiling
	genRaw       = "raw"
	genPaho      = "paho"
	hubMQTTUser  = "vaka-hub"
	hubMQTTPass  = "bench-hub-secret"
	nrMQTTUser   = "nodered"
	nrMQTTPass   = "bench-nodered-secret"
	nodeREDWant  = "4.1.15"
	nodeREDStart = 60 * time.Second
)

var peerNames = []string{peerVaka, peerMosqExt, peerNodeRED, peerSink}

// peer is a running system under test.
type peer struct {
	name     string
	mqttAddr string       // where the gateways publish
	httpAddr string       // the hub's web server (A, B); "" for C
	svc      *service.Hub // the hub (A, B) when it runs in this process
	hubPid   int          // the hub's process with -hub-bin
	sink     *sink        // C: the HTTP alarm sink
	pids     []int        // other processes of the peer (Mosquitto, Node-RED), for CPU accounting
	closers  []func()     // run in reverse order
	mq       *mosquitto.Server
	nodeLog  *bytes.Buffer
	nodeDone <-chan struct{}
}

func (p *peer) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// mosquittoFor starts Mosquitto with a password per gateway and the hub
// or Node-RED user, the per-gateway ACL, TCP_NODELAY and persistence on
// (autosave every second: Mosquitto has no per-message journal, so this
// is as close as it gets to the hub's grouped fsync).
func mosquittoFor(o options, dir, consumer, consumerPass string) (*mosquitto.Server, error) {
	users := []mosquitto.User{{Name: consumer, Password: consumerPass}}
	for g := range o.Gateways {
		users = append(users, mosquitto.User{Name: site + "/" + gatewayID(g), Password: gwPass})
	}
	return mosquitto.Start(mosquitto.Options{Dir: dir, Users: users, ACL: mosquitto.ACL(consumer),
		Persistence: true})
}

// startHub starts the hub for cfg: as its own process with -hub-bin, else
// in this process. With an external broker the MQTT address is the
// broker's, already set.
func (p *peer) startHub(o options, cfg *hub.Config, tmp string, log *slog.Logger) error {
	if o.HubBin != "" {
		return p.startHubProcess(o, cfg, tmp)
	}
	svc, err := service.Start(cfg, log)
	if err != nil {
		return fmt.Errorf("start hub: %w", err)
	}
	p.svc = svc
	if !cfg.MQTT.IsExternal() {
		p.mqttAddr = svc.MQTTAddr()
	}
	p.closers = append(p.closers, func() { svc.Close() })
	return nil
}

// startMosquitto starts Mosquitto (B, C) with a login for the consumer,
// pinned like every peer process.
func (p *peer) startMosquitto(o options, tmp, consumer, consumerPass string) error {
	mq, err := mosquittoFor(o, tmp, consumer, consumerPass)
	if err != nil {
		return err
	}
	p.mq, p.mqttAddr, p.pids = mq, mq.Addr, []int{mq.Pid()}
	p.closers = append(p.closers, mq.Stop)
	if err := pinPid(mq.Pid(), o.PinSUT); err != nil {
		return fmt.Errorf("pin mosquitto: %w", err)
	}
	return nil
}

// startPeer starts the system under test for cfg (which buildConfig made
// for the peer) and checks every address is loopback.
func startPeer(o options, cfg *hub.Config, b *bench, logw io.Writer, tmp string) (*peer, error) {
	p := &peer{name: o.Peer}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) (*peer, error) {
		p.close()
		return nil, err
	}
	switch o.Peer {
	case peerVaka:
		if err := p.startHub(o, cfg, tmp, log); err != nil {
			return fail(err)
		}
	case peerMosqExt:
		if err := p.startMosquitto(o, tmp, hubMQTTUser, hubMQTTPass); err != nil {
			return fail(err)
		}
		cfg.MQTT = hub.MQTTConfig{Broker: hub.BrokerExternal, External: &hub.ExternalBroker{URL: "tcp://" + p.mqttAddr,
			Username: hubMQTTUser, Password: hubMQTTPass, ClientID: "vaka-load-hub"}}
		if err := cfg.Validate(); err != nil {
			return fail(err)
		}
		if err := p.startHub(o, cfg, tmp, log); err != nil {
			return fail(fmt.Errorf("on Mosquitto: %w", err))
		}
	case peerNodeRED:
		if err := p.startMosquitto(o, tmp, nrMQTTUser, nrMQTTPass); err != nil {
			return fail(err)
		}
		s, err := startSink(b)
		if err != nil {
			return fail(err)
		}
		p.sink = s
		p.closers = append(p.closers, s.close)
		if err := p.startNodeRED(o, tmp, logw); err != nil {
			return fail(err)
		}
	case peerSink:
		if err := p.startSinkProcess(o); err != nil {
			return fail(err)
		}
	default:
		return fail(fmt.Errorf("unknown peer %q", o.Peer))
	}
	if p.svc != nil {
		p.httpAddr = p.svc.HTTPAddr()
	}
	addrs := []string{p.mqttAddr}
	if p.httpAddr != "" {
		addrs = append(addrs, p.httpAddr)
	}
	for _, a := range addrs {
		if h, _, _ := net.SplitHostPort(a); !net.ParseIP(h).IsLoopback() {
			return fail(fmt.Errorf("refusing non-loopback address %s", a))
		}
	}
	return p, nil
}

// sink is the HTTP alarm sink Node-RED posts to: each POST body is one
// alarm, {"id":…,"event_id":"<site>/<gw>/e<i>",…}. /stall never answers
// until the run ends (the stalled-consumer scenario).
type sink struct {
	srv   *http.Server
	addr  string
	mu    sync.Mutex // the bench's per-event records have one writer at a time
	stall chan struct{}
	once  sync.Once
	posts int64
}

func startSink(b *bench) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{addr: ln.Addr().String(), stall: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /alarm", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		t := b.now()
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.posts++
		b.onAlarm(body, t)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /stall", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-s.stall:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *sink) close() {
	s.once.Do(func() { close(s.stall) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
}

// nodeREDDir finds the node-red package installed by scripts/bench-deps.sh.
func nodeREDDir(o options) (string, error) {
	dir := o.NodeRED
	if dir == "" {
		dir = ".cache/node-red"
	}
	red, err := filepath.Abs(filepath.Join(dir, "node_modules", "node-red", "red.js"))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(red); err != nil {
		return "", fmt.Errorf("node-red not installed in %s: run scripts/bench-deps.sh (make bench does)", dir)
	}
	return red, nil
}

// startNodeRED writes a headless settings file and the flow (MQTT in →
// function with the call-button and door-at-night rules → http request to
// the sink), starts `node red.js`, and waits until a probe event reaches
// the sink.
func (p *peer) startNodeRED(o options, tmp string, logw io.Writer) error {
	red, err := nodeREDDir(o)
	if err != nil {
		return err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("node not found (Node.js 20 runs node-red 4.1.15)")
	}
	ud := filepath.Join(tmp, "nodered")
	if err := os.MkdirAll(ud, 0o700); err != nil {
		return err
	}
	settings := `module.exports = {
  uiHost: "127.0.0.1", uiPort: 0, flowFile: "flows.json", credentialSecret: false,
  disableEditor: true, httpAdminRoot: false, httpNodeRoot: false, httpStatic: false,
  telemetry: { enabled: false, updateNotification: false },
  diagnostics: { enabled: false }, runtimeState: { enabled: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
  logging: { console: { level: "warn", metrics: false, audit: false } },
};
`
	_, port, _ := net.SplitHostPort(p.mqttAddr)
	flow := nodeREDFlow(port, "http://"+p.sink.addr, o.Stall)
	cred := fmt.Sprintf(`{"brk":{"user":%q,"password":%q}}`, nrMQTTUser, nrMQTTPass)
	for name, body := range map[string]string{"settings.js": settings, "flows.json": flow, "flows_cred.json": cred} {
		if err := os.WriteFile(filepath.Join(ud, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	cmd := pinned(exec.Command(node, red, "--settings", filepath.Join(ud, "settings.js"), "--userDir", ud), o.PinSUT)
	cmd.Dir = ud
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: &out}, &lockedWriter{w: &out}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("node-red: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.nodeLog, p.nodeDone = &out, done
	p.pids = append(p.pids, cmd.Process.Pid)
	p.closers = append(p.closers, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return p.waitNodeRED(o)
}

// waitNodeRED publishes probe events (ids w<k>, which the bench does not
// count) until one reaches the sink: the flow is deployed and subscribed.
func (p *peer) waitNodeRED(o options) error {
	c, err := connect(p.mqttAddr, 0, false)
	if err != nil {
		return fmt.Errorf("probe gateway: %w", err)
	}
	defer c.Disconnect(50)
	deadline := time.Now().Add(nodeREDStart)
	for k := 0; time.Now().Before(deadline); k++ {
		select {
		case <-p.nodeDone:
			return fmt.Errorf("node-red exited: %s", p.nodeLog.String())
		default:
		}
		pl := fmt.Sprintf(`{"v":1,"id":"w%d","device":%q,"dty":"0003","stc":"0010","state":"pressed","ts":%q}`,
			k, deviceID(0, 0), time.Now().UTC().Format(time.RFC3339Nano))
		c.Publish(event.EventTopic(site, gatewayID(0)), 1, false, pl).WaitTimeout(time.Second)
		time.Sleep(250 * time.Millisecond)
		p.sink.mu.Lock()
		n := p.sink.posts
		p.sink.mu.Unlock()
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("node-red: no probe reached the sink within %v: %s", nodeREDStart, p.nodeLog.String())
}

// nodeREDFlow is what a technician would wire: one MQTT-in node on the
// event topics (QoS 1, persistent session), one function node with the
// call-button and exit-door-at-night rules and de-duplication by event id,
// one http request node posting the alarm. With stall, a second http
// request node posts each alarm to a consumer that never answers.
func nodeREDFlow(mqttPort, sinkURL string, stall bool) string {
	rules := `const p = msg.topic.split("/");
let ev;
try { ev = JSON.parse(msg.payload); } catch (e) { return null; }
if (!ev || typeof ev.id !== "string") return null;
const key = p[2] + "/" + p[3] + "/" + ev.id;
let rule = null;
if ((ev.dty === "0003" || ev.dty === "0004") && ev.state === "pressed") {
  rule = "call_button";
} else if (ev.dty === "0014" && ev.state === "open") {
  const hm = new Date().toLocaleTimeString("sv-SE", { timeZone: "Europe/Stockholm", hour: "2-digit", minute: "2-digit" });
  const start = "` + benchNight.Start + `", end = "` + benchNight.End + `";
  const night = start === end || (start < end ? hm >= start && hm < end : hm >= start || hm < end);
  if (night) rule = "door_at_night";
}
if (!rule) return null;
let seen = context.get("seen");
if (!seen) { seen = new Set(); context.set("seen", seen); }
if (seen.has(key)) return null;
if (seen.size > 65536) seen.clear();
seen.add(key);
msg.payload = JSON.stringify({ id: "nr-" + key, event_id: key, rule: rule, site: p[2], gateway: p[3], device: ev.device, raised_at: new Date().toISOString() });
msg.headers = { "content-type": "application/json" };
return msg;`
	post := func(id, url string) map[string]any {
		return map[string]any{"id": id, "type": "http request", "z": "tab", "name": id, "method": "POST", "ret": "txt",
			"paytoqs": "ignore", "url": url, "tls": "", "persist": true, "proxy": "", "insecureHTTPParser": false,
			"authType": "", "senderr": false, "headers": []any{}, "x": 500, "y": 100, "wires": [][]string{{}}}
	}
	fnWires := []string{"post"}
	nodes := []any{
		map[string]any{"id": "tab", "type": "tab", "label": "vaka rules"},
		map[string]any{"id": "brk", "type": "mqtt-broker", "name": "mosquitto", "broker": "127.0.0.1", "port": mqttPort,
			"clientid": "nodered-vaka", "autoConnect": true, "usetls": false, "protocolVersion": "4", "keepalive": "60",
			"cleansession": false, "autoUnsubscribe": false, "birthTopic": "", "closeTopic": "", "willTopic": ""},
		post("post", sinkURL+"/alarm"),
	}
	if stall {
		nodes = append(nodes, post("stalled", sinkURL+"/stall"))
		fnWires = append(fnWires, "stalled")
	}
	nodes = append(nodes,
		map[string]any{"id": "in", "type": "mqtt in", "z": "tab", "name": "gateway events", "topic": "vaka/v1/+/+/event",
			"qos": "1", "datatype": "utf8", "broker": "brk", "nl": false, "rap": true, "rh": 0, "inputs": 0,
			"x": 100, "y": 100, "wires": [][]string{{"fn"}}},
		map[string]any{"id": "fn", "type": "function", "z": "tab", "name": "call button, door at night", "func": rules,
			"outputs": 1, "timeout": 0, "noerr": 0, "initialize": "", "finalize": "", "libs": []any{},
			"x": 300, "y": 100, "wires": [][]string{fnWires}},
	)
	b, _ := json.MarshalIndent(nodes, "", "  ")
	return string(b)
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 1<<20 {
		return len(p), nil
	}
	return l.w.Write(p)
}

// procCPU is a process's user+system CPU time so far (Linux /proc; 0 elsewhere).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procSyscalls is a process's read and write syscall count so far
// (/proc/PID/io syscr + syscw; 0 where unreadable).
func procSyscalls(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	var n int64
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok && (k == "syscr" || k == "syscw") {
			x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += x
		}
	}
	return n
}

// machineBusy is the CPU time all processes on the machine have used so far
// (/proc/stat: user, nice, system, irq, softirq, steal).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var j int64
	for _, k := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		j += v
	}
	return time.Duration(j) * time.Second / 100 // USER_HZ
}

// procRunqWait is the time a process's threads have spent runnable but
// waiting for a CPU (/proc/PID/task/*/schedstat, second field): other work
// on a shared machine taking the cores shows here.
func procRunqWait(pid int) time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var d time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			d += time.Duration(ns)
		}
	}
	return d
}

// stalledStream opens an alarm stream and never reads it, with a small
// receive buffer so the hub's writes back up soon.
func stalledStream(base string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/stream", nil)
	req.SetBasicAuth(staffUser, staffPass)
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// metric reads a counter or gauge of the hub: from its registry in this
// process, or from its /metrics page when it runs as its own process.
func (p *peer) metric(name string) float64 {
	if p.svc != nil {
		return metricValue(p.svc.Registry(), name)
	}
	if p.httpAddr != "" {
		return scrapeMetric("http://"+p.httpAddr+"/metrics", name)
	}
	return 0
}

// metricValue reads a counter or gauge from the hub's registry.
func metricValue(reg prometheus.Gatherer, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				v += c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				v += g.GetValue()
			}
		}
		return v
	}
	return 0
}
