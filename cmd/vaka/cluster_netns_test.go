//go:build linux && !nocluster

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/cluster"
	"github.com/vaka-care/vaka/event"
)

// netLab is a private network of Linux network namespaces made by the
// test: one namespace per hub machine, each joined by a veth pair to a
// bridge in a namespace of its own, on a private 10.x/24. Nothing in the
// test's own namespace changes, and no traffic leaves the lab.
type netLab struct {
	t      *testing.T
	bridge string   // the namespace holding the bridge
	ns     []string // one per machine
	ips    []string
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetLab makes n machines, or skips the test (with the reason) where
// namespaces cannot be made: not root, no ip(8), no netns support.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (ip netns)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip(8) not found (iproute2; scripts/test-deps.sh installs it)")
	}
	id := os.Getpid() % 100000
	lab := &netLab{t: t, bridge: fmt.Sprintf("vaka%d-br", id)}
	if err := ipCmd("netns", "add", lab.bridge); err != nil {
		t.Skipf("network namespaces not available here: %v", err)
	}
	// Registered first, so it runs last: after the hubs are stopped.
	t.Cleanup(func() {
		for _, ns := range append([]string{lab.bridge}, lab.ns...) {
			if err := ipCmd("netns", "del", ns); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	})
	net24 := fmt.Sprintf("10.%d.%d", 200+id%50, id%250)
	must := func(args ...string) {
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	must("-n", lab.bridge, "link", "set", "lo", "up")
	must("-n", lab.bridge, "link", "add", "br0", "type", "bridge")
	must("-n", lab.bridge, "link", "set", "br0", "up")
	for i := range n {
		ns := fmt.Sprintf("vaka%d-m%d", id, i)
		must("netns", "add", ns)
		lab.ns = append(lab.ns, ns)
		ip := fmt.Sprintf("%s.%d", net24, i+1)
		lab.ips = append(lab.ips, ip)
		port := fmt.Sprintf("p%d", i)
		must("-n", lab.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		must("-n", lab.bridge, "link", "set", port, "master", "br0")
		must("-n", lab.bridge, "link", "set", port, "up")
		must("-n", ns, "link", "set", "lo", "up")
		must("-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
		must("-n", ns, "link", "set", "eth0", "up")
	}
	return lab
}

// cut takes machine i off the network (its bridge port down: no frame
// either way); heal puts it back.
func (l *netLab) cut(i int) {
	if err := ipCmd("-n", l.bridge, "link", "set", fmt.Sprintf("p%d", i), "down"); err != nil {
		l.t.Fatal(err)
	}
}

func (l *netLab) heal(i int) {
	if err := ipCmd("-n", l.bridge, "link", "set", fmt.Sprintf("p%d", i), "up"); err != nil {
		l.t.Fatal(err)
	}
}

// dial opens a TCP connection from inside namespace ns: the socket is
// made on an OS thread switched into ns, and stays in ns.
func dialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: this thread leaves the test's namespace, and
		// the runtime ends it with the goroutine.
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, timeout)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// nsDialer is a NATS client dialer into a namespace.
type nsDialer struct{ ns string }

func (d nsDialer) Dial(_, addr string) (net.Conn, error) { return dialIn(d.ns, addr, time.Second) }

// nsHub is a hub process run inside a lab machine's namespace.
type nsHub struct {
	*clusterHub
	ns string
}

func (h *nsHub) start(t *testing.T, bin string) {
	t.Helper()
	h.cmd = exec.Command("ip", "netns", "exec", h.ns, bin, "hub", "--config", h.cfg)
	h.log = &lockedBuffer{}
	h.cmd.Stderr = h.log
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := h.cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
}

// healthyFrom asks h's /healthz from inside namespace ns.
func (h *nsHub) healthyFrom(ns string) bool {
	c := http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			return dialIn(ns, addr, 300*time.Millisecond)
		}}}
	resp, err := c.Get("http://" + h.http + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func (h *nsHub) running() bool { return h.cmd.ProcessState == nil }

// nsPublisher is a gateway inside namespace ns that knows hub addresses:
// it connects to whichever accepts, sends an event until acknowledged.
type nsPublisher struct {
	ns    string
	addrs []string
	c     paho.Client
	on    string
	acked []string
}

func (p *nsPublisher) connect() bool {
	for _, a := range p.addrs {
		o := paho.NewClientOptions().AddBroker("tcp://" + a).SetClientID("solrosen-avd-a").
			SetUsername("solrosen/avd-a").SetPassword("gw-secret").SetProtocolVersion(4).
			SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(time.Second).
			SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
				return dialIn(p.ns, u.Host, 500*time.Millisecond)
			})
		c := paho.NewClient(o)
		if tok := c.Connect(); tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
			p.c, p.on = c, a
			return true
		}
	}
	return false
}

// send publishes event i (QoS 1) until acknowledged or within passes.
func (p *nsPublisher) send(i int, within time.Duration) bool {
	id := fmt.Sprintf("ev-%d", i)
	payload := fmt.Sprintf(`{"v":1,"id":%q,"device":"knapp-%d","dty":"0003","state":"pressed","ts":%q}`, id, i, time.Now().UTC().Format(time.RFC3339))
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		if p.c == nil || !p.c.IsConnectionOpen() {
			if !p.connect() {
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		tok := p.c.Publish(event.EventTopic("solrosen", "avd-a"), 1, false, payload)
		if tok.WaitTimeout(time.Second) && tok.Error() == nil {
			p.acked = append(p.acked, "solrosen/avd-a/"+id)
			return true
		}
		p.c.Disconnect(0)
		p.c = nil
	}
	return false
}

func (p *nsPublisher) close() {
	if p.c != nil {
		p.c.Disconnect(50)
		p.c = nil
	}
}

// TestIntegrationClusterPartition cuts the active hub's machine off the
// network with Linux network namespaces (as root; skipped otherwise):
// three machines, each a namespace running one `vaka hub` with its
// embedded NATS node, joined through a bridge. With the active hub's
// bridge port down it has no quorum:
//   - a gateway inside its namespace gets no PUBACK for a new event, and
//     the cut-off hub gives up the lead and exits;
//   - a gateway in another namespace gets its events acknowledged by a
//     hub of the majority, which took over.
//
// After healing, the old hub comes back as a standby; the gateway on its
// machine sends the refused event again, to the active hub. Asserted at
// the end: every acknowledged event raised exactly one alarm (on the
// active hub and in the replicated journal), no alarm was notified twice
// at the same tier, and the journal's terms never go back (nothing the
// cut-off hub tried was written after the new hub's term record).
func TestIntegrationClusterPartition(t *testing.T) { testPartition(t, false) }

// TestIntegrationClusterPartitionLeadersOnCutOff is the partition with
// the journal stream's and the lease bucket's Raft leaders moved onto the
// active hub's machine just before the cut (the active hub moves them off
// again within a second, so the cut follows at once): the majority must
// elect new leaders before it can take over. The same assertions; the
// time it takes is logged (JetStream's elections, 4–9 s, come first).
func TestIntegrationClusterPartitionLeadersOnCutOff(t *testing.T) { testPartition(t, true) }

func testPartition(t *testing.T, leadersOnCutOff bool) {
	bin := buildVaka(t) // skips under -short
	lab := newNetLab(t, 3)
	const events = 12
	var hubs []*nsHub
	for i, name := range []string{"hub-a", "hub-b", "hub-c"} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o750)
		ip := lab.ips[i]
		h := &nsHub{clusterHub: &clusterHub{name: name, http: ip + ":8080", mqtt: ip + ":1883"}, ns: lab.ns[i]}
		h.cfg = writeManyButtonsConfig(t, dir, filepath.Join(dir, "data"), h.http, h.mqtt, events)
		var routes []string
		for k := range 3 {
			if k != i {
				routes = append(routes, "nats-route://"+lab.ips[k]+":6222")
			}
		}
		f, err := os.OpenFile(h.cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "routing:\n  receivers:\n    - {name: natt, users: [natt1]}\n  route:\n    receiver: natt\n")
		fmt.Fprintf(f, "cluster:\n  node: %s\n  lease_ttl: 2s\n  embedded:\n    listen: %s:4222\n    cluster_listen: %s:6222\n    routes: [%s, %s]\n",
			name, ip, ip, routes[0], routes[1])
		f.Close()
		h.start(t, bin)
		hubs = append(hubs, h)
	}
	dumpLogs := func() {
		for _, h := range hubs {
			t.Logf("%s log:\n%s", h.name, h.log.String())
		}
	}
	natsURLs := func(except int) []string {
		var u []string
		for i, ip := range lab.ips {
			if i != except {
				u = append(u, "nats://"+ip+":4222")
			}
		}
		return u
	}
	// active finds the one hub answering /healthz, asked from inside
	// namespace from, among hubs (bounded wait).
	active := func(among []*nsHub, from string, within time.Duration) *nsHub {
		t.Helper()
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			var up []*nsHub
			for _, h := range among {
				if h.running() && h.healthyFrom(from) {
					up = append(up, h)
				}
			}
			if len(up) > 1 {
				t.Fatalf("%d hubs active at once: %s and %s", len(up), up[0].name, up[1].name)
			}
			if len(up) == 1 {
				return up[0]
			}
		}
		dumpLogs()
		t.Fatalf("no hub active within %s", within)
		return nil
	}
	// steady waits until every replica is current, both standbys wait
	// for the lease and, as the active hub arranges, neither leader is
	// on its machine.
	steadyWithin := func(act *nsHub, from string, within time.Duration) (groupState, bool) {
		var gs groupState
		ok := false
		for deadline := time.Now().Add(within); !ok && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			gs = readGroupState(natsURLs(-1), nats.SetCustomDialer(nsDialer{from}))
			waiting := true
			for _, h := range hubs {
				if h != act && !strings.Contains(h.log.String(), "cluster: standby; waiting for the lease") {
					waiting = false
				}
			}
			ok = gs.healthy && waiting && gs.journal != act.name && gs.lease != act.name
		}
		return gs, ok
	}
	steady := func(act *nsHub, from string) groupState {
		t.Helper()
		gs, ok := steadyWithin(act, from, 90*time.Second)
		if !ok {
			dumpLogs()
			t.Fatalf("group not steady within 90 s (active %s): %s", act.name, gs.detail)
		}
		return gs
	}

	old := active(hubs, lab.ns[0], 120*time.Second)
	var vi int
	for i, h := range hubs {
		if h == old {
			vi = i
		}
	}
	gs := steady(old, lab.ns[vi])
	t.Logf("before the cut: %s active, journal led by %s, lease by %s", old.name, gs.journal, gs.lease)
	// A gateway on the active hub's machine, knowing every hub.
	local := &nsPublisher{ns: lab.ns[vi], addrs: []string{hubs[0].mqtt, hubs[1].mqtt, hubs[2].mqtt}}
	next := 0
	for ; next < 4; next++ {
		if !local.send(next, 30*time.Second) {
			dumpLogs()
			t.Fatalf("event %d not acknowledged before the cut", next)
		}
	}
	if local.on != old.mqtt {
		t.Fatalf("the gateway is on %s, not the active hub %s", local.on, old.mqtt)
	}

	if leadersOnCutOff {
		moveLeadersOnto(t, lab.ns[vi], natsURLs(-1), old.name)
	}
	cutAt := time.Now()
	lab.cut(vi)
	t.Logf("%s (namespace %s) cut off at %s", old.name, old.ns, cutAt.Format("15:04:05.000"))

	// Both sides at once: the cut-off side must acknowledge nothing, the
	// majority must take over.
	refused := next
	next++
	var wg sync.WaitGroup
	var lateAck bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Long enough for the old hub to run out its lease (2 s) and
		// stop; every try is a fresh send of the same event.
		lateAck = local.send(refused, 8*time.Second)
	}()
	other := (vi + 1) % 3
	remote := &nsPublisher{ns: lab.ns[other], addrs: []string{hubs[(vi+1)%3].mqtt, hubs[(vi+2)%3].mqtt}}
	major := next
	next++
	majorOK := remote.send(major, 60*time.Second)
	took := time.Since(cutAt)
	wg.Wait()
	if lateAck {
		t.Errorf("the cut-off hub %s acknowledged event %d after losing its quorum", old.name, refused)
	}
	if !majorOK {
		dumpLogs()
		t.Fatalf("event %d from the majority side not acknowledged within 60 s of the cut", major)
	}
	var heir *nsHub
	for _, h := range hubs {
		if h.mqtt == remote.on {
			heir = h
		}
	}
	t.Logf("majority side: event %d acknowledged by %s %s after the cut", major, heir.name, took.Round(time.Millisecond))
	logSince(t, heir.clusterHub, cutAt)

	// The cut-off hub gives up: it exits with an error (a service manager
	// restarts it as a standby).
	exited := make(chan error, 1)
	go func() { exited <- old.cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("the cut-off hub %s exited with status 0; want an error (lease lost)", old.name)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the cut-off hub %s still runs 30 s after the cut", old.name)
		old.cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	if l := old.log.String(); !strings.Contains(l, "lease not renewed within its TTL") && !strings.Contains(l, "another hub") {
		t.Errorf("the cut-off hub's log does not say it lost the lead:\n%s", l)
	}
	logSince(t, old.clusterHub, cutAt)

	// Heal; the old machine's hub starts again, as a standby.
	local.close()
	lab.heal(vi)
	old.start(t, bin)
	// The healed node rejoins with the Raft terms it raised while cut off,
	// which can force fresh leader elections; an active hub that cannot
	// renew its lease meanwhile gives up the lead and exits, as designed,
	// and its service manager (systemd's Restart=always) starts it again
	// as a standby. The test does what the service manager would.
	now := active(hubs, lab.ns[vi], 60*time.Second)
	for try := 0; ; try++ {
		if _, ok := steadyWithin(now, lab.ns[vi], 40*time.Second); ok {
			break
		}
		if try == 2 {
			steady(now, lab.ns[vi]) // fails with the group's state
		}
		for _, h := range hubs {
			if strings.Contains(h.log.String(), "lease lost; stopping") {
				t.Logf("after the heal %s could not renew its lease and exited; started again, as its service manager would", h.name)
				h.start(t, bin)
			}
		}
		now = active(hubs, lab.ns[vi], 60*time.Second)
	}
	if now == old {
		t.Logf("note: %s is active again after the heal", old.name)
	}
	// The gateway on the old machine sends the refused event again, and
	// more; all reach the active hub.
	if !local.send(refused, 60*time.Second) {
		dumpLogs()
		t.Fatalf("event %d not acknowledged after the heal", refused)
	}
	for ; next < events; next++ {
		if !local.send(next, 30*time.Second) {
			dumpLogs()
			t.Fatalf("event %d not acknowledged after the heal", next)
		}
	}
	local.close()
	remote.close()
	acked := append(append([]string{}, local.acked...), remote.acked...)

	// Every acknowledged event: one alarm on the active hub.
	now = active(hubs, lab.ns[vi], 30*time.Second)
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			return dialIn(lab.ns[vi], addr, time.Second)
		}}}
	req, _ := http.NewRequest("GET", "http://"+now.http+"/api/v1/alarms", nil)
	req.SetBasicAuth("natt1", "natt1-secret")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Alarms []*alarm.Alarm }
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	byEvent := map[string]int{}
	for _, a := range list.Alarms {
		if a.EventID != "" {
			byEvent[a.EventID]++
		}
	}
	for _, k := range acked {
		if n := byEvent[k]; n != 1 {
			t.Errorf("event %s: %d alarms on %s, want 1", k, n, now.name)
		}
	}
	if len(byEvent) != events {
		t.Errorf("%s has alarms from %d events, want %d", now.name, len(byEvent), events)
	}
	a := auditJournal(t, natsURLs(-1), nats.SetCustomDialer(nsDialer{lab.ns[vi]}))
	for _, k := range acked {
		if n := a.raises[k]; n != 1 {
			t.Errorf("event %s: %d raises in the journal, want 1", k, n)
		}
	}
	if len(a.raises) != events {
		t.Errorf("journal raises for %d events, want %d", len(a.raises), events)
	}
	for k, n := range a.notifies {
		if n > 1 {
			t.Errorf("alarm %s notified %d times at one tier", k, n)
		}
	}
	if len(a.notifies) == 0 {
		t.Error("no notification in the journal: the route is not exercised")
	}
	for _, e := range a.termErrs {
		t.Error(e)
	}
	t.Logf("journal: %d records, terms %v", a.records, a.terms)
}

// journalAudit is what auditJournal found.
type journalAudit struct {
	records  int
	raises   map[string]int // by event key
	notifies map[string]int // by alarm and tier
	terms    []uint64       // in stream order, each once
	termErrs []string
}

// auditJournal reads the whole replicated journal: raises by event,
// notifications by alarm and tier, and the term each record was written
// under (Vaka-Term), which must never go back.
func auditJournal(t *testing.T, urls []string, opts ...nats.Option) journalAudit {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "VAKA_JOURNAL")
	if err != nil {
		t.Fatal(err)
	}
	last := st.CachedInfo().State.LastSeq
	a := journalAudit{raises: map[string]int{}, notifies: map[string]int{}}
	var term uint64
	for seq := uint64(1); seq <= last; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("journal record %d: %v", seq, err)
		}
		a.records++
		tm, _ := strconv.ParseUint(m.Header.Get(cluster.HdrTerm), 10, 64)
		if tm < term {
			a.termErrs = append(a.termErrs, fmt.Sprintf("record %d written under term %d after term %d (by %s)", seq, tm, term, m.Header.Get(cluster.HdrNode)))
		}
		if tm > term {
			term = tm
			a.terms = append(a.terms, tm)
		}
		for _, tr := range decodeTransitions(m.Data) { // a message may hold a batch
			switch tr.Action {
			case alarm.ActRaise:
				if tr.EventID != "" {
					a.raises[tr.EventID]++
				}
			case alarm.ActNotify, alarm.ActEscalate:
				a.notifies[fmt.Sprintf("%s tier %d", tr.Alarm, tr.Tier)]++
			}
		}
	}
	return a
}

// moveLeadersOnto asks the journal stream's and the lease bucket's
// leaders to step down in favour of server to, from inside namespace ns,
// until both are there at once (bounded).
func moveLeadersOnto(t *testing.T, ns string, urls []string, to string) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.SetCustomDialer(nsDialer{ns}), nats.Timeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := []byte(`{"placement":{"preferred":"` + to + `"}}`)
	for try := 0; try < 20; try++ {
		for _, st := range []string{"VAKA_JOURNAL", "KV_VAKA_JOURNAL_LEASE"} {
			nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+st, req, time.Second)
		}
		if gs := readGroupState(urls, nats.SetCustomDialer(nsDialer{ns})); gs.journal == to && gs.lease == to {
			t.Logf("journal stream and lease bucket led by %s, the machine about to be cut off", to)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("could not move both leaders onto %s", to)
}
