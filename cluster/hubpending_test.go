package cluster

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
)

// pendingGateways is how many gateways send at once in
// TestIntegrationHubEventsShareMessage.
const pendingGateways = 8

func pendingHubConfig(t *testing.T) *hub.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\n", t.TempDir())
	b.WriteString(`demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
users:
  - {username: natt1, role: staff, password_hash: "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    supervision: {personal_trigger: 0s}
    units:
      - {id: u}
    residents:
      - {id: r-a, unit: u}
    gateways:
`)
	for g := range pendingGateways {
		fmt.Fprintf(&b, "      - id: gw%d\n        devices:\n          - {id: btn-%d, type: personal_trigger, resident: r-a, unit: u, room: \"%d\"}\n", g, g, 10+g)
	}
	var cfg hub.Config
	if err := config.Decode("hub.yaml", []byte(b.String()), &cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func pressOn(g int, id string) []byte {
	m := map[string]any{"v": 1, "id": id, "device": fmt.Sprintf("btn-%d", g), "dty": "0003", "state": "pressed",
		"ts": time.Now().UTC().Format(time.RFC3339Nano)}
	b, _ := json.Marshal(m)
	return b
}

// sendAll sends each gateway's presses in order, the gateways at once (as
// the broker calls the hub from each gateway's connection), and returns
// the replies by event id.
func sendAll(h *hub.Hub, prefix string, each int) map[string]event.Reply {
	var mu sync.Mutex
	replies := map[string]event.Reply{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range pendingGateways {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for k := range each {
				id := fmt.Sprintf("%s-%d-%d", prefix, g, k)
				r := h.HandleEvent("s", fmt.Sprintf("gw%d", g), pressOn(g, id))
				mu.Lock()
				replies[id] = r
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	return replies
}

// TestIntegrationHubEventsShareMessage: a hub on the replicated journal (3
// real NATS nodes) handling presses from 8 gateways at once.
//   - Every press is acknowledged, each only once its transition is in
//     the stream, and the presses take fewer stream messages than there
//     are presses: events handled at the same time share one quorum round
//     trip (the hub waits for it outside its lock, hub/pending.go). The
//     stream replays to exactly the acknowledged transitions, once each.
//   - After another hub took over, a burst of presses from the same 8
//     gateways is refused whole: no press is acknowledged (busy), a resend
//     of one is not acknowledged either, the hub holds them (unhealthy),
//     and none of them is in the stream.
func TestIntegrationHubEventsShareMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	a := connect(t, urls, "hub-a", 2*time.Second)
	la := acquire(t, a, 30*time.Second)
	ja, _ := open(t, a, la)
	h, err := hub.New(hub.Options{Config: pendingHubConfig(t), Journal: ja})
	if err != nil {
		t.Fatal(err)
	}

	const each = 25
	m0, e0 := ja.GroupStats()
	replies := sendAll(h, "p", each)
	for id, r := range replies {
		if r.Code != event.ReplyOK {
			t.Fatalf("press %s answered %+v, want OK", id, r)
		}
	}
	m1, e1 := ja.GroupStats()
	msgs, entries := m1-m0, e1-e0
	t.Logf("%d presses from %d gateways at once: %d transitions in %d stream messages", len(replies), pendingGateways, entries, msgs)
	if entries != pendingGateways*each {
		t.Fatalf("%d transitions journaled for %d presses, want one each", entries, pendingGateways*each)
	}
	if msgs >= entries {
		t.Fatalf("%d presses took %d stream messages: events handled at once do not share a message", entries, msgs)
	}
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := h.Healthy(); err != nil {
		t.Fatalf("hub unhealthy after acknowledged presses: %v", err)
	}

	// Another hub takes over (a's lease released, as if it expired); a's
	// next presses are refused whole.
	la.Release()
	b := connect(t, urls, "hub-b", 2*time.Second)
	lb := acquire(t, b, 10*time.Second)
	_, replayed := open(t, b, lb)
	count := map[string]int{}
	for _, tr := range replayed {
		count[string(tr.Action)]++
	}
	if count[string(alarm.ActRaise)] != pendingGateways || count[string(alarm.ActRepeat)] != pendingGateways*(each-1) || len(replayed) != pendingGateways*each {
		t.Fatalf("replayed %v (%d transitions), want %d raises and %d repeats", count, len(replayed), pendingGateways, pendingGateways*(each-1))
	}

	refused := sendAll(h, "z", 5)
	for id, r := range refused {
		if r.Code == event.ReplyOK {
			t.Errorf("press %s acknowledged by a hub whose journal refused it", id)
		}
	}
	select {
	case <-ja.Deposed():
	default:
		t.Fatal("the deposed hub's journal did not say so")
	}
	if r := h.HandleEvent("s", "gw0", pressOn(0, "z-0-0")); r.Code == event.ReplyOK {
		t.Errorf("a resend of a refused press was acknowledged: %+v", r)
	}
	if err := h.Healthy(); err == nil {
		t.Error("hub healthy while it holds refused transitions")
	}
	lb.Release()
	c := connect(t, urls, "hub-c", 2*time.Second)
	lc := acquire(t, c, 10*time.Second)
	_, all := open(t, c, lc)
	if len(all) != len(replayed) {
		t.Errorf("stream holds %d transitions after the refused burst, want the %d acknowledged before it", len(all), len(replayed))
	}
	for _, tr := range all {
		if strings.Contains(tr.EventID, "/z-") {
			t.Errorf("refused press %s is in the stream (%s)", tr.EventID, tr.Action)
		}
	}
	lc.Release()
}

// observed records what the hub tells its observers (the notifier is
// one: it alerts phones and alarm centres for what it is told).
type observed struct {
	mu sync.Mutex
	ts map[string]int // event id → transitions observed
}

func (o *observed) ObserveEvent(*event.Event, time.Time) {}

func (o *observed) ObserveTransition(_ *alarm.Alarm, t alarm.Transition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ts == nil {
		o.ts = map[string]int{}
	}
	o.ts[t.EventID]++
}

func (o *observed) count(prefix string) (n int, twice []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, k := range o.ts {
		if strings.Contains(id, "/"+prefix+"-") {
			n++
			if k > 1 {
				twice = append(twice, id)
			}
		}
	}
	return n, twice
}

// TestIntegrationHubHoldsWhatNoQuorumRefused: with two of the three NATS
// nodes gone, presses from 8 gateways at once are answered busy (none
// acknowledged) and held by the hub; while their append waits for a
// quorum neither the observers (the notifier) nor the staff screens are
// told of them; once refused they are shown (held, as on a full disk) but
// the observers still wait. Once the nodes are back the hub writes what it
// held by itself (Tick), in order, the observers are told of each once,
// and the resent presses are then acknowledged; new presses share
// messages again. The stream holds each press once, every alarm's raise
// before its repeats.
func TestIntegrationHubHoldsWhatNoQuorumRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	nodes, urls, opts := startNATSOpts(t)
	a := connect(t, urls, "hub-a", 3*time.Second)
	la := acquire(t, a, 30*time.Second)
	ja, _ := open(t, a, la)
	obs := &observed{}
	h, err := hub.New(hub.Options{Config: pendingHubConfig(t), Journal: ja, Observers: []hub.Observer{obs}})
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range sendAll(h, "p", 1) {
		if r.Code != event.ReplyOK {
			t.Fatalf("press %s answered %+v before the nodes were stopped", id, r)
		}
	}
	if err := h.Flush(); err != nil { // every acknowledgement applied: nothing left to show
		t.Fatal(err)
	}
	nodes[1].Close()
	nodes[2].Close()
	screen, unsubscribe := h.Subscribe()
	defer unsubscribe()
	burst := make(chan map[string]event.Reply)
	go func() { burst <- sendAll(h, "q", 3) }()
	// The first append waits up to its 1 s timeout for a quorum.
	time.Sleep(300 * time.Millisecond)
	if n, _ := obs.count("q"); n != 0 {
		t.Errorf("observers told of %d presses waiting for a quorum", n)
	}
	select {
	case a := <-screen:
		t.Errorf("staff screen shown %s (%s) while its append waited for a quorum", a.ID, a.Device)
	default:
	}
	held := <-burst
	for id, r := range held {
		if r.Code == event.ReplyOK {
			t.Errorf("press %s acknowledged without a quorum", id)
		}
	}
	select {
	case <-screen:
	case <-time.After(5 * time.Second):
		t.Error("presses refused by the journal not shown on the staff screen (held, they must be)")
	}
	if n, _ := obs.count("q"); n != 0 {
		t.Errorf("observers told of %d presses the journal refused", n)
	}
	if err := h.Healthy(); err == nil {
		t.Fatal("hub healthy while its journal has no quorum")
	}
	for _, i := range []int{1, 2} {
		e, err := StartEmbedded(opts[i])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
	}
	deadline := time.Now().Add(60 * time.Second)
	for h.Tick(); h.Healthy() != nil; h.Tick() {
		if time.Now().After(deadline) {
			t.Fatalf("held transitions not written within 60 s of the quorum's return: %v", h.Healthy())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n, twice := obs.count("q"); n != len(held) || len(twice) > 0 {
		t.Errorf("once written, observers told of %d of %d held presses (twice: %v)", n, len(held), twice)
	}
	for id := range held {
		var g, k int
		fmt.Sscanf(id, "q-%d-%d", &g, &k)
		if r := h.HandleEvent("s", fmt.Sprintf("gw%d", g), pressOn(g, id)); r.Code != event.ReplyOK {
			t.Errorf("resent press %s answered %+v once written, want OK", id, r)
		}
	}
	m0, _ := ja.GroupStats()
	after := sendAll(h, "r", 10)
	for id, r := range after {
		if r.Code != event.ReplyOK {
			t.Fatalf("press %s answered %+v after the quorum came back", id, r)
		}
	}
	if m1, _ := ja.GroupStats(); m1-m0 >= int64(len(after)) {
		t.Errorf("%d presses after the recovery took %d messages: not shared", len(after), m1-m0)
	}

	la.Release()
	b := connect(t, urls, "hub-b", 3*time.Second)
	lb := acquire(t, b, 30*time.Second)
	defer lb.Release()
	_, replayed := open(t, b, lb)
	seen := map[string]int{}
	raisedAt := map[string]uint64{}
	for _, tr := range replayed {
		if tr.EventID == "" {
			continue // hub_integrity, raised and restored by the hub
		}
		seen[tr.EventID]++
		switch tr.Action {
		case alarm.ActRaise:
			raisedAt[tr.Alarm] = tr.Seq
		case alarm.ActRepeat:
			if p, ok := raisedAt[tr.Alarm]; !ok || p > tr.Seq {
				t.Errorf("repeat of %s (%s) at %d before its raise", tr.Alarm, tr.EventID, tr.Seq)
			}
		}
	}
	want := pendingGateways * (1 + 3 + 10)
	if len(seen) != want {
		t.Errorf("%d presses in the stream, want %d", len(seen), want)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("press %s in the stream %d times", id, n)
		}
	}
}
