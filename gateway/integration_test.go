package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/sim"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/gateway"
)

type msg struct {
	topic    string
	payload  []byte
	retained bool
}

// capture records what a subscriber received.
type capture struct {
	mu   sync.Mutex
	msgs []msg
}

func (c *capture) add(m msg) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *capture) on(topic string) []msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []msg
	for _, m := range c.msgs {
		if m.topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// events decodes the distinct events received (a redelivered duplicate is
// counted once, as the hub does), in arrival order.
func (c *capture) events(t *testing.T, site, gw string) []event.Event {
	t.Helper()
	seen := map[string]bool{}
	var out []event.Event
	for _, m := range c.on(event.EventTopic(site, gw)) {
		ev, err := event.Decode(site, gw, m.payload)
		if err != nil {
			t.Fatalf("event payload refused by the hub's decoder: %v", err)
		}
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	return out
}

// startBroker runs an embedded mochi broker on addr (loopback only) whose
// inline client records everything published under vaka/.
func startBroker(t *testing.T, addr string, c *capture) *mochi.Server {
	t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Subscribe("vaka/#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		c.add(msg{topic: pk.TopicName, payload: append([]byte(nil), pk.Payload...), retained: pk.FixedHeader.Retain})
	}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	return srv
}

func subscriber(t *testing.T, addr, id, filter string, c *capture) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetAutoReconnect(false)
	cl := paho.NewClient(o)
	if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	tok := cl.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		c.add(msg{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...), retained: m.Retained()})
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	return cl
}

func TestIntegrationGatewayBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker over TCP")
	}
	const site, gwID = "s1", "gw1"
	addr := closedPort(t)
	atBroker := &capture{}
	srv := startBroker(t, addr, atBroker)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Close()
		}
	})

	log, logs := testLogger(t)
	cfg := gateway.Config{
		Site: site, ID: gwID,
		Broker:    gateway.Broker{URL: "tcp://" + addr},
		Heartbeat: time.Second,
		Devices: []devices.Device{
			{ID: "btn-1", Driver: "quiet", Type: "personal_trigger", Resident: "r-0a01", Unit: "u1", Room: "1"},
			{ID: "z-door", Driver: "serial", Type: "door_sensor", Unit: "u1", Room: "exit"},
		},
	}
	reg := devices.NewRegistry()
	for _, d := range []devices.Driver{nopDriver("quiet"), brokenDriver("serial")} {
		if err := reg.Register(d); err != nil {
			t.Fatal(err)
		}
	}
	gw, err := gateway.New(cfg, log, reg, gateway.WithReconnectMax(time.Second), gateway.WithPublishTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- gw.Run(ctx) }()

	statusTopic := event.StatusTopic(site, gwID)
	waitFor(t, 10*time.Second, "the gateway to connect and announce itself", func() bool {
		return gw.Stats().Connected && len(atBroker.on(statusTopic)) > 0
	})

	// The online status is retained: a subscriber arriving later gets it.
	late := &capture{}
	lateCl := subscriber(t, addr, "late", statusTopic, late)
	waitFor(t, 5*time.Second, "the retained status", func() bool { return len(late.on(statusTopic)) > 0 })
	st := late.on(statusTopic)[0]
	var status struct {
		State      string `json:"state"`
		TS         string `json:"ts"`
		HeartbeatS int    `json:"heartbeat_s"`
	}
	decodeJSON(t, st.payload, &status)
	if !st.retained || status.State != "online" || status.HeartbeatS != 1 {
		t.Errorf("status %s retained=%v, want retained online with heartbeat_s 1", st.payload, st.retained)
	}
	if _, err := time.Parse(time.RFC3339, status.TS); err != nil {
		t.Errorf("status ts: %v", err)
	}

	// A paho subscriber sees events and heartbeats.
	hub := &capture{}
	hubCl := subscriber(t, addr, "hub", event.GatewayPrefix(site, gwID)+"#", hub)

	press := time.Date(2025, 3, 30, 3, 0, 0, 0, time.UTC)
	if err := gw.Publish(ctx, event.Event{Device: "btn-1", State: event.StatePressed, Status: event.ManualAlarm, Time: press}); err != nil {
		t.Fatalf("Publish while connected: %v", err)
	}
	var got event.Event
	waitFor(t, 5*time.Second, "the call button event", func() bool {
		for _, ev := range hub.events(t, site, gwID) {
			if ev.Device == "btn-1" {
				got = ev
				return true
			}
		}
		return false
	})
	if got.Type != event.PersonalTrigger || got.Status != event.ManualAlarm || got.State != event.StatePressed ||
		got.Resident != "r-0a01" || got.Unit != "u1" || got.Room != "1" || !got.Time.Equal(press) ||
		got.ID == "" || got.Seq == 0 || got.V != event.Version {
		t.Errorf("event as received: %+v", got)
	}

	// The failed driver's device is reported offline, not left silent (it
	// was sent at start-up, before the paho subscriber joined).
	waitFor(t, 5*time.Second, "the failed driver's technical event", func() bool {
		for _, ev := range atBroker.events(t, site, gwID) {
			if ev.Device == "z-door" && ev.Status == event.Offline && ev.Type == event.DoorSensor {
				return true
			}
		}
		return false
	})

	hbTopic := event.HeartbeatTopic(site, gwID)
	waitFor(t, 5*time.Second, "a heartbeat", func() bool { return len(hub.on(hbTopic)) > 0 })
	var hb struct {
		TS  string `json:"ts"`
		Seq uint64 `json:"seq"`
	}
	decodeJSON(t, hub.on(hbTopic)[0].payload, &hb)
	if hb.Seq < 1 {
		t.Errorf("heartbeat seq %d", hb.Seq)
	}
	if _, err := time.Parse(time.RFC3339, hb.TS); err != nil {
		t.Errorf("heartbeat ts: %v", err)
	}

	// The hub's refusals are counted.
	replyTopic := event.ReplyTopic(site, gwID)
	hubCl.Publish(replyTopic, 1, false, `{"id":"`+got.ID+`","snu":3,"reason":"wrong data"}`).WaitTimeout(5 * time.Second)
	hubCl.Publish(replyTopic, 1, false, `not json`).WaitTimeout(5 * time.Second)
	waitFor(t, 5*time.Second, "the refusal to be counted", func() bool {
		s := gw.Stats()
		return s.Refused == 1 && s.BadReplies == 1
	})
	// mochi v2.7.9's Clients.GetByListener takes its read lock twice, so a
	// client leaving while Server.Close runs can deadlock it: let the test
	// subscribers leave first.
	hubCl.Disconnect(0)
	lateCl.Disconnect(0)
	waitFor(t, 5*time.Second, "the subscribers to leave the broker", func() bool {
		_, hubThere := srv.Clients.Get("hub")
		_, lateThere := srv.Clients.Get("late")
		return !hubThere && !lateThere
	})

	// The broker goes away. Events wait in order and are not dropped.
	srv.Close()
	stopped = true
	waitFor(t, 10*time.Second, "the gateway to notice the lost link", func() bool { return !gw.Stats().Connected })
	base := time.Date(2025, 10, 26, 2, 30, 0, 0, time.UTC)
	const n = 5
	for i := range n {
		ev := event.Event{Device: "btn-1", State: event.StatePressed, Status: event.ManualAlarm, Time: base.Add(time.Duration(i) * time.Second)}
		if err := gw.Publish(ctx, ev); !errors.Is(err, gateway.ErrQueued) {
			t.Fatalf("Publish %d while the broker is down: %v, want ErrQueued", i, err)
		}
	}
	if q := gw.Stats().Queued; q != n {
		t.Fatalf("outbox holds %d, want %d", q, n)
	}

	// The broker comes back on the same port.
	again := &capture{}
	srv2 := startBroker(t, addr, again)
	defer srv2.Close()
	waitFor(t, 20*time.Second, "the queued events after the broker restart", func() bool {
		return len(again.events(t, site, gwID)) >= n
	})
	evs := again.events(t, site, gwID)
	if len(evs) != n {
		t.Fatalf("got %d distinct events after restart, want %d", len(evs), n)
	}
	for i, ev := range evs {
		if want := base.Add(time.Duration(i) * time.Second); !ev.Time.Equal(want) {
			t.Errorf("event %d after restart has time %s, want %s (out of order)", i, ev.Time, want)
		}
		if i > 0 && ev.Seq <= evs[i-1].Seq {
			t.Errorf("event %d: seq %d after %d", i, ev.Seq, evs[i-1].Seq)
		}
	}
	waitFor(t, 5*time.Second, "the outbox to drain", func() bool { return gw.Stats().Queued == 0 })
	waitFor(t, 5*time.Second, "the online status after reconnect", func() bool {
		for _, m := range again.on(statusTopic) {
			if strings.Contains(string(m.payload), `"online"`) {
				return true
			}
		}
		return false
	})

	// A clean shutdown says offline itself (a clean DISCONNECT suppresses the Will).
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	waitFor(t, 5*time.Second, "the offline status", func() bool {
		msgs := again.on(statusTopic)
		return string(msgs[len(msgs)-1].payload) == `{"state":"offline"}`
	})
	s := gw.Stats()
	if s.Published < n+2 || s.Dropped[gateway.DropShutdown] != 0 || s.Dropped[gateway.DropQueueFull] != 0 {
		t.Errorf("stats after the run: %+v", s)
	}
	t.Logf("stats %+v", s)
	if strings.Contains(logs.String(), "r-0a01") {
		t.Error("the log names a resident")
	}
}

// TestIntegrationSimDemo is the `vaka demo` path: a gateway with a sim
// section sends a scenario's alarm to the broker soon after start.
func TestIntegrationSimDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker over TCP")
	}
	const site, gwID = "demo", "gw-demo"
	addr := closedPort(t)
	atBroker := &capture{}
	srv := startBroker(t, addr, atBroker)
	defer srv.Close()
	log, _ := testLogger(t)
	cfg := gateway.Config{
		Site: site, ID: gwID,
		Broker: gateway.Broker{URL: "tcp://" + addr},
		Sim:    &sim.Options{Scenarios: []string{sim.CallButton}, First: 200 * time.Millisecond, NoTelemetry: true, Seed: 1},
	}
	gw, err := gateway.New(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- gw.Run(ctx) }()
	waitFor(t, 10*time.Second, "the simulated call button", func() bool {
		for _, ev := range atBroker.events(t, site, gwID) {
			if ev.Type == event.PersonalTrigger && ev.Status == event.ManualAlarm && ev.Resident != "" {
				return true
			}
		}
		return false
	})
	if got := gw.Drivers(); len(got) != 1 || got[0].Name != sim.Name || got[0].State != devices.StateRunning {
		t.Errorf("drivers %+v, want sim running", got)
	}
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}
