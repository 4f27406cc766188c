//go:build !nocluster

package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/cluster"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/natstest"
	"github.com/vaka-care/vaka/internal/testenv"
)

// clusterNATS starts a 3-node JetStream cluster in the test process, on
// loopback, and returns its nodes and client URLs.
func clusterNATS(t *testing.T) ([]*cluster.Embedded, []string) {
	t.Helper()
	return natstest.Group(t, "nats-")
}

// clusterHub is one hub process of the group.
type clusterHub struct {
	name, cfg, http, mqtt string
	cmd                   *exec.Cmd
	log                   *lockedBuffer // access_test.go
}

func (h *clusterHub) start(t *testing.T, bin string) {
	t.Helper()
	h.cmd = exec.Command(bin, "hub", "--config", h.cfg)
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

func (h *clusterHub) healthy() bool {
	c := http.Client{Timeout: 300 * time.Millisecond}
	resp, err := c.Get("http://" + h.http + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// activeHub waits (bounded) until exactly one running hub answers and
// returns it.
func activeHub(t *testing.T, hubs []*clusterHub, within time.Duration) *clusterHub {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var up []*clusterHub
		for _, h := range hubs {
			if h.cmd.ProcessState == nil && h.healthy() {
				up = append(up, h)
			}
		}
		if len(up) > 1 {
			t.Fatalf("%d hubs active at once: %s and %s", len(up), up[0].name, up[1].name)
		}
		if len(up) == 1 {
			return up[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, h := range hubs {
		t.Logf("%s log:\n%s", h.name, h.log.String())
	}
	t.Fatalf("no hub active within %s", within)
	return nil
}

// dumpLogs logs every hub's log (a failed test's evidence).
func dumpLogs(t *testing.T, hubs []*clusterHub) {
	for _, h := range hubs {
		t.Logf("%s log:\n%s", h.name, h.log.String())
	}
}

// failoverPublisher is a gateway that knows every hub's address: it
// connects to whichever accepts, sends each event until it is
// acknowledged, and records every acknowledged id.
type failoverPublisher struct {
	t     *testing.T
	addrs []string
	c     paho.Client
	on    string
	acked []string
	next  int // the event sendNext sends
}

// sendNext sends the next event (numbered from 0) until a hub
// acknowledges it, within 60 s, and returns when it was acknowledged; it
// fails the test with every hub's log otherwise.
func (p *failoverPublisher) sendNext(hubs []*clusterHub) time.Time {
	p.t.Helper()
	at, ok := p.send(p.next, 60*time.Second)
	if !ok {
		dumpLogs(p.t, hubs)
		p.t.Fatalf("event %d not acknowledged within 60 s", p.next)
	}
	p.next++
	return at
}

func (p *failoverPublisher) connect() bool {
	for _, a := range p.addrs {
		o := paho.NewClientOptions().AddBroker("tcp://" + a).SetClientID("solrosen-avd-a").
			SetUsername("solrosen/avd-a").SetPassword("gw-secret").SetProtocolVersion(4).
			SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(500 * time.Millisecond)
		c := paho.NewClient(o)
		if tok := c.Connect(); tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
			p.c, p.on = c, a
			return true
		}
	}
	return false
}

// send publishes event i until a hub acknowledges it or within passes;
// it returns when it was acknowledged.
func (p *failoverPublisher) send(i int, within time.Duration) (time.Time, bool) {
	id := fmt.Sprintf("ev-%d", i)
	payload := fmt.Sprintf(`{"v":1,"id":%q,"device":"knapp-%d","dty":"0003","state":"pressed","ts":%q}`, id, i, time.Now().UTC().Format(time.RFC3339))
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if p.c == nil || !p.c.IsConnectionOpen() {
			if !p.connect() {
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		tok := p.c.Publish(event.EventTopic("solrosen", "avd-a"), 1, false, payload)
		if tok.WaitTimeout(time.Second) && tok.Error() == nil {
			p.acked = append(p.acked, "solrosen/avd-a/"+id)
			return time.Now(), true
		}
		p.c.Disconnect(0)
		p.c = nil
	}
	return time.Time{}, false
}

// TestIntegrationClusterFailover runs the redundant group with real parts:
// a 3-node NATS JetStream cluster on loopback, three `vaka hub` processes
// of one group, a QoS 1 publisher that knows all three MQTT addresses.
// The active hub is SIGKILLed between events several times (the killed
// one started again, as a standby): at every moment at most one hub is
// active, a standby refuses MQTT, and at the end every acknowledged event
// has raised exactly one alarm, on the hub now active and in the
// replicated journal, and no event raised two. The failover time (kill to
// the next acknowledged event) is logged.
func TestIntegrationClusterFailover(t *testing.T) {
	bin := buildVaka(t)
	natsNodes, urls := clusterNATS(t)
	// VAKA_CLUSTER_KILLS sets the number of SIGKILLs (default 4; the
	// issue's figure is over 10: VAKA_CLUSTER_KILLS=10).
	const events = 240
	kills := 4
	if v, err := strconv.Atoi(os.Getenv("VAKA_CLUSTER_KILLS")); err == nil && v > 0 && v < events/4 {
		kills = v
	}
	var hubs []*clusterHub
	for _, name := range []string{"hub-a", "hub-b", "hub-c"} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o750)
		h := &clusterHub{name: name, http: testenv.FreeAddr(t), mqtt: testenv.FreeAddr(t)}
		h.cfg = writeManyButtonsConfig(t, dir, filepath.Join(dir, "data"), h.http, h.mqtt, events+1)
		f, err := os.OpenFile(h.cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "cluster:\n  node: %s\n  lease_ttl: 2s\n  nats:\n    urls: [%s, %s, %s]\n", name, urls[0], urls[1], urls[2])
		f.Close()
		h.start(t, bin)
		hubs = append(hubs, h)
	}
	active := activeHub(t, hubs, 60*time.Second)
	for _, h := range hubs {
		if h == active {
			continue
		}
		if c, err := net.DialTimeout("tcp", h.mqtt, time.Second); err == nil {
			c.Close()
			t.Fatalf("standby %s accepts MQTT connections", h.name)
		}
	}
	p := &failoverPublisher{t: t, addrs: []string{hubs[0].mqtt, hubs[1].mqtt, hubs[2].mqtt}}
	var failovers, takeovers []time.Duration
	killEvery := events / (kills + 1)
	type kill struct {
		h  *clusterHub
		at time.Time
	}
	killed := make(chan kill, 1)
	var pending *kill
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 19))
	t0 := time.Now()
	for i := range events {
		if i > 0 && i%killEvery == 0 && len(failovers)+btoi(pending != nil) < kills && pending == nil {
			// SIGKILL the active hub at a random moment while the
			// publisher goes on sending: an event may be journaled and
			// not yet acknowledged, or in flight.
			victim := activeHub(t, hubs, 30*time.Second)
			delay := time.Duration(rng.IntN(20_000)) * time.Microsecond
			go func() {
				time.Sleep(delay)
				at := time.Now()
				victim.cmd.Process.Signal(syscall.SIGKILL)
				killed <- kill{victim, at}
			}()
		}
		if i == events/2 {
			// One of the three NATS nodes lost: nothing changes for
			// the gateway (the quorum is two).
			natsNodes[2].Close()
			t.Logf("event %d: NATS node 2 of 3 stopped", i)
		}
		at, ok := p.send(i, 60*time.Second)
		if !ok {
			for _, h := range hubs {
				t.Logf("%s log:\n%s", h.name, h.log.String())
			}
			t.Fatalf("event %d not acknowledged within 60 s", i)
		}
		select {
		case k := <-killed:
			pending = &k
			k.h.cmd.Wait()
			if at.After(k.at) && p.on != k.h.mqtt {
				// This very event was acknowledged after the kill: by
				// the hub that took over.
				failovers = append(failovers, at.Sub(k.at))
				t.Logf("kill %d: %s SIGKILLed; event %d acknowledged by %s after %s", len(failovers), k.h.name, i, p.on, at.Sub(k.at).Round(time.Millisecond))
				logTakeover(t, hubs, p.on)
				k.h.start(t, bin)
				pending = nil
			}
		default:
			if pending != nil && p.on != pending.h.mqtt {
				failovers = append(failovers, at.Sub(pending.at))
				t.Logf("kill %d: %s SIGKILLed; event %d acknowledged by %s after %s", len(failovers), pending.h.name, i, p.on, at.Sub(pending.at).Round(time.Millisecond))
				logTakeover(t, hubs, p.on)
				pending.h.start(t, bin) // back, as a standby
				pending = nil
			}
		}
	}
	elapsed := time.Since(t0)
	if len(p.acked) != events {
		t.Fatalf("%d of %d events acknowledged", len(p.acked), events)
	}
	if len(failovers) != kills {
		t.Fatalf("%d failovers measured, want %d", len(failovers), kills)
	}

	// Takeover alone, without the publisher's own reconnect: kill the
	// active hub and time until another answers /healthz.
	for range 2 {
		victim := activeHub(t, hubs, 30*time.Second)
		at := time.Now()
		victim.cmd.Process.Signal(syscall.SIGKILL)
		victim.cmd.Wait()
		next := activeHub(t, hubs, 30*time.Second)
		takeovers = append(takeovers, time.Since(at))
		t.Logf("takeover: %s SIGKILLed, %s active after %s", victim.name, next.name, time.Since(at).Round(time.Millisecond))
		for _, l := range strings.Split(next.log.String(), "\n") {
			if strings.Contains(l, "cluster:") {
				t.Log(l)
			}
		}
		victim.start(t, bin)
	}
	// SIGSTOP: the active hub frozen, not dead. A standby takes over
	// after the lease TTL; woken, the old hub must acknowledge nothing
	// (its append is fenced off) and stop by itself.
	frozen := activeHub(t, hubs, 30*time.Second)
	stopAt := time.Now()
	frozen.cmd.Process.Signal(syscall.SIGSTOP)
	var rest []*clusterHub
	for _, h := range hubs {
		if h != frozen {
			rest = append(rest, h)
		}
	}
	next := activeHub(t, rest, 30*time.Second)
	t.Logf("SIGSTOP: %s frozen, %s active after %s", frozen.name, next.name, time.Since(stopAt).Round(time.Millisecond))
	frozen.cmd.Process.Signal(syscall.SIGCONT)
	late := &failoverPublisher{t: t, addrs: []string{frozen.mqtt}}
	lateID := events
	if at, ok := late.send(lateID, 2*time.Second); ok {
		t.Errorf("the woken hub %s acknowledged event %d at %s, after %s took over", frozen.name, lateID, at, next.name)
	}
	exited := make(chan error, 1)
	go func() { exited <- frozen.cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("the woken hub %s exited with status 0; want an error (lease lost or fenced)", frozen.name)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("the woken hub %s still runs 15 s after another took over; log:\n%s", frozen.name, frozen.log.String())
	}
	if l := frozen.log.String(); !strings.Contains(l, "another hub took the lease") && !strings.Contains(l, "another hub appended after this one") {
		t.Errorf("woken hub's log does not say it lost the lead:\n%s", l)
	}
	for _, l := range strings.Split(frozen.log.String(), "\n") {
		if strings.Contains(l, "level=ERROR") {
			t.Logf("woken %s: %s", frozen.name, l)
		}
	}
	// The gateway sends the refused event again, to the active hub.
	if _, ok := p.send(lateID, 30*time.Second); !ok {
		t.Fatalf("event %d not acknowledged by the active hub", lateID)
	}
	if p.c != nil {
		p.c.Disconnect(50)
	}
	total := events + 1

	slices.Sort(failovers)
	t.Logf("%d events in %s with %d SIGKILLs: kill to next acknowledged event median %s, worst %s; kill to new hub active %s (lease TTL 2s)",
		events, elapsed.Round(time.Millisecond), len(failovers), failovers[len(failovers)/2].Round(time.Millisecond),
		failovers[len(failovers)-1].Round(time.Millisecond), takeovers)

	// The hub now active has every acknowledged event's alarm, once.
	active = activeHub(t, hubs, 30*time.Second)
	var list struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, "http://"+active.http+"/api/v1/alarms", "natt1", "natt1-secret", &list)
	byEvent := map[string]int{}
	fromEvents := 0
	for _, a := range list.Alarms {
		if a.EventID == "" {
			// The hub's own: a journal append not acknowledged in time
			// while a NATS node was lost is raised, as a full disk is.
			t.Logf("alarm not from an event: %s %s %q", a.ID, a.Rule, a.Note)
			if a.Rule != "hub_integrity" {
				t.Errorf("unexpected alarm %s (%s) not from an event", a.ID, a.Rule)
			}
			continue
		}
		fromEvents++
		byEvent[a.EventID]++
	}
	for _, k := range p.acked {
		if n := byEvent[k]; n != 1 {
			t.Errorf("event %s: %d alarms on %s, want 1", k, n, active.name)
		}
	}
	if fromEvents != total {
		t.Errorf("%s lists %d alarms from events, want %d", active.name, fromEvents, total)
	}

	// The active hub says which term it is active under.
	resp, err := http.Get("http://" + active.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	mb.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(mb.String(), "vaka_cluster_term ") || !strings.Contains(mb.String(), "vaka_cluster_journal_appends_total ") {
		t.Errorf("/metrics of the active hub lacks vaka_cluster_term or vaka_cluster_journal_appends_total")
	}

	// And the replicated journal holds exactly one raise per event.
	raises := journalRaises(t, urls)
	for _, k := range p.acked {
		if n := raises[k]; n != 1 {
			t.Errorf("event %s: %d raises in the journal, want 1", k, n)
		}
	}
	if len(raises) != total {
		t.Errorf("journal raises for %d events, want %d", len(raises), total)
	}

	// A hub stopped normally (SIGTERM) hands over at once: it deletes
	// its lease and a standby takes it without waiting for the TTL.
	termAt := time.Now()
	active.cmd.Process.Signal(syscall.SIGTERM)
	stopped := make(chan error, 1)
	go func() { stopped <- active.cmd.Wait() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("%s stopped by SIGTERM: %v", active.name, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop within 20 s of SIGTERM", active.name)
	}
	var others []*clusterHub
	for _, h := range hubs {
		if h != active {
			others = append(others, h)
		}
	}
	heir := activeHub(t, others, 10*time.Second)
	handover := time.Since(termAt)
	t.Logf("SIGTERM: %s stopped, %s active after %s", active.name, heir.name, handover.Round(time.Millisecond))
	if handover > 2*time.Second {
		t.Errorf("handover after SIGTERM took %s; a released lease should be taken at once (TTL 2s)", handover)
	}
}

// journalRaises reads the whole journal stream and counts raise
// transitions by event key.
func journalRaises(t *testing.T, urls []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	forEachJournalTransition(t, urls, func(tr alarm.Transition) { // cluster_escalation_test.go
		if tr.Action == alarm.ActRaise && tr.EventID != "" {
			out[tr.EventID]++
		}
	})
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// logTakeover logs when the hub at mqtt took over (its own log lines), so
// a slow failover shows whether the hub or the publisher was slow.
func logTakeover(t *testing.T, hubs []*clusterHub, mqtt string) {
	for _, h := range hubs {
		if h.mqtt != mqtt {
			continue
		}
		for _, l := range strings.Split(h.log.String(), "\n") {
			if strings.Contains(l, "taking over") || strings.Contains(l, "this hub is active") {
				t.Logf("  %s: %s", h.name, l)
			}
		}
	}
}

// TestIntegrationClusterEmbeddedFailover: three hub processes, each
// running its own NATS node (cluster.embedded), as on three small
// machines. SIGKILL of the active hub takes its NATS node with it (the
// machine gone): the two left keep the quorum, a standby takes over, and
// every acknowledged event has raised exactly one alarm. The killed hub
// started again rejoins with its node's data and waits as a standby.
func TestIntegrationClusterEmbeddedFailover(t *testing.T) {
	bin := buildVaka(t)
	const events, kills = 60, 2
	hubs, _ := startEmbeddedGroup(t, bin, 2*time.Second, events) // cluster_machine_test.go
	activeHub(t, hubs, 90*time.Second)
	p := &failoverPublisher{t: t, addrs: []string{hubs[0].mqtt, hubs[1].mqtt, hubs[2].mqtt}}
	for i := range events {
		if i > 0 && i%(events/(kills+1)) == 0 && i/(events/(kills+1)) <= kills {
			victim := activeHub(t, hubs, 60*time.Second)
			at := time.Now()
			victim.cmd.Process.Signal(syscall.SIGKILL)
			victim.cmd.Wait()
			next := activeHub(t, hubs, 60*time.Second)
			t.Logf("%s SIGKILLed with its NATS node; %s active after %s", victim.name, next.name, time.Since(at).Round(time.Millisecond))
			for _, l := range strings.Split(next.log.String(), "\n") {
				if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "active") {
					t.Logf("  %s: %s", next.name, l)
				}
			}
			victim.start(t, bin) // rejoins: its NATS node and a standby hub
		}
		if _, ok := p.send(i, 60*time.Second); !ok {
			for _, h := range hubs {
				t.Logf("%s log:\n%s", h.name, h.log.String())
			}
			t.Fatalf("event %d not acknowledged within 60 s", i)
		}
	}
	if p.c != nil {
		p.c.Disconnect(50)
	}
	active := activeHub(t, hubs, 30*time.Second)
	var list struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, "http://"+active.http+"/api/v1/alarms", "natt1", "natt1-secret", &list)
	byEvent := map[string]int{}
	for _, a := range list.Alarms {
		if a.EventID != "" {
			byEvent[a.EventID]++
		}
	}
	for _, k := range p.acked {
		if n := byEvent[k]; n != 1 {
			t.Errorf("event %s: %d alarms on %s, want 1", k, n, active.name)
		}
	}
	if len(byEvent) != events {
		t.Errorf("%s has alarms from %d events, want %d", active.name, len(byEvent), events)
	}
}
