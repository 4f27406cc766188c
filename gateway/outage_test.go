package gateway_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/gateway"
)

// firing is a driver whose sensors fire every period until stopped:
// door open/close (alarm class) and corridor motion (telemetry) in turn.
type firing struct {
	period  time.Duration
	stop    atomic.Bool
	idle    atomic.Bool // set once the driver has seen stop: no emit is in flight
	emitted atomic.Int64
}

func (*firing) Name() string                       { return "firing" }
func (*firing) Init(context.Context) (bool, error) { return true, nil }
func (f *firing) Run(ctx context.Context, emit devices.Emit) error {
	t := time.NewTicker(f.period)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if f.stop.Load() {
			// emitted is final only after an emit and its count are both
			// done; the test waits for this before it reads emitted.
			f.idle.Store(true)
			continue
		}
		switch i % 3 {
		case 0:
			emit(event.Event{Device: "dorr-entre", State: event.StateOpen})
		case 1:
			emit(event.Event{Device: "dorr-entre", State: event.StateClosed})
		default:
			emit(event.Event{Device: "pir-korridor", State: event.StateMotion, Status: event.Movement})
		}
		f.emitted.Add(1)
	}
}

// The hub's broker is down while sensors fire at a high rate; events go to
// the disk spool; when the broker is back every event arrives, in order,
// and after the hub's de-duplication by id exactly once; nothing is
// dropped. The "ten minutes" is scaled to VAKA_OUTAGE (default
// 20 s) with sensors firing at 200 events/s, which is far more events than
// a home produces in ten minutes: the gateway's link to a real broker
// cannot run inside a testing/synctest bubble.
func TestIntegrationHubOutageSpoolDeliversInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("a real-time outage")
	}
	outage := 20 * time.Second
	if s := os.Getenv("VAKA_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		outage = d
	}
	const site, gwID = "solrosen", "avd-a"
	addr := closedPort(t)
	atBroker := &capture{}
	srv := startBroker(t, addr, atBroker)

	log, _ := testLogger(t)
	cfg := gateway.Config{
		Site: site, ID: gwID,
		Broker:    gateway.Broker{URL: "tcp://" + addr},
		Heartbeat: time.Second,
		Spool:     &gateway.SpoolConfig{Dir: t.TempDir()},
		Devices: []devices.Device{
			{ID: "dorr-entre", Driver: "firing", Type: "door_sensor", Unit: "avd-a", Room: "entre", Exit: true},
			{ID: "pir-korridor", Driver: "firing", Type: "occupancy_detector", Unit: "avd-a"},
		},
	}
	f := &firing{period: 5 * time.Millisecond}
	reg := devices.NewRegistry()
	if err := reg.Register(f); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, log, reg, gateway.WithReconnectMax(time.Second), gateway.WithPublishTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, 10*time.Second, "connected", func() bool { return gw.Stats().Connected })
	time.Sleep(time.Second)

	// The hub goes away while the sensors keep firing.
	srv.Close()
	waitFor(t, 10*time.Second, "the gateway to see the outage", func() bool { return !gw.Stats().Connected })
	time.Sleep(outage)
	held := gw.Stats().Queued
	t.Logf("outage %s: %d events held in the spool", outage, held)
	if held < int(outage/f.period)/2 {
		t.Fatalf("only %d events held after a %s outage", held, outage)
	}

	// Back: a new broker on the same address (the hub restarted).
	srv2 := startBroker(t, addr, atBroker)
	defer srv2.Close()
	start := time.Now()
	waitFor(t, 60*time.Second, "the spool to drain", func() bool { return gw.Stats().Connected && gw.Stats().Queued < 50 })
	t.Logf("drained %d events in %s", held, time.Since(start).Round(time.Millisecond))
	f.stop.Store(true)
	waitFor(t, 10*time.Second, "the sensors to stop", f.idle.Load)
	waitFor(t, 30*time.Second, "the last events", func() bool { return gw.Stats().Queued == 0 })
	// Let the last PUBACKed messages reach the capture.
	want := f.emitted.Load()
	waitFor(t, 10*time.Second, "every event at the broker", func() bool {
		return int64(len(atBroker.events(t, site, gwID))) >= want
	})

	raw := len(atBroker.on(event.EventTopic(site, gwID)))
	evs := atBroker.events(t, site, gwID)
	var prev uint64
	seen := map[string]bool{}
	sensor := 0
	for _, ev := range evs {
		if ev.Seq <= prev {
			t.Fatalf("out of order: seq %d after %d", ev.Seq, prev)
		}
		prev = ev.Seq
		seen[ev.ID] = true
		if ev.Device == "dorr-entre" || ev.Device == "pir-korridor" {
			sensor++
		}
	}
	if int64(sensor) != want {
		t.Errorf("%d sensor events arrived, %d fired", sensor, want)
	}
	st := gw.Stats()
	for k, v := range st.Dropped {
		if v != 0 {
			t.Errorf("dropped[%s] = %d", k, v)
		}
	}
	t.Logf("fired %d, arrived %d distinct (%d copies: %d duplicates the hub removes by id), published %d, retried %d",
		want, len(seen), raw, raw-len(seen), st.Published, st.Retried)

	// The heartbeat carries the gateway's health.
	var hb struct {
		Spool   *int   `json:"spool"`
		Dropped *int64 `json:"dropped"`
		Drivers []struct {
			Name, State string
		} `json:"drivers"`
	}
	hbs := atBroker.on(event.HeartbeatTopic(site, gwID))
	if len(hbs) == 0 {
		t.Fatal("no heartbeat")
	}
	decodeJSON(t, hbs[len(hbs)-1].payload, &hb)
	if hb.Spool == nil || hb.Dropped == nil || len(hb.Drivers) != 1 || hb.Drivers[0].Name != "firing" || hb.Drivers[0].State != "running" {
		t.Errorf("heartbeat %s", hbs[len(hbs)-1].payload)
	}
}

// A gateway whose clock reads before the build-time floor flags it: a
// counter, and a technical event (dty 0032) kept in the spool for the hub.
func TestClockBeforeFloorIsFlagged(t *testing.T) {
	log, logs := testLogger(t)
	dir := t.TempDir()
	cfg := gateway.Config{Site: "s1", ID: "gw1", Broker: gateway.Broker{URL: "tcp://" + closedPort(t)}, Spool: &gateway.SpoolConfig{Dir: dir}}
	gw, err := gateway.New(cfg, log, nil, gateway.WithClockFloor(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)), gateway.WithFlushTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := gw.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if gw.Stats().ClockSuspect < 1 {
		t.Errorf("clock not flagged: %+v", gw.Stats())
	}
	sp, err := gateway.OpenSpool(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := sp.Front()
	if !ok {
		t.Fatalf("no technical event spooled; log:\n%s", logs)
	}
	ev, err := event.Decode("s1", "gw1", m.Payload)
	if err != nil || ev.Type != event.CommLink || ev.Device != "gw1" {
		t.Fatalf("spooled %+v %v", ev, err)
	}
}

// BenchmarkGatewayForward measures end to end: b.N events pushed into the
// disk spool (one fsync each) and forwarded to a broker over loopback, one
// in flight at a time, each removed after its PUBACK.
func BenchmarkGatewayForward(b *testing.B) {
	addr := closedPort(&testing.T{})
	atBroker := &capture{}
	srv := startBroker(&testing.T{}, addr, atBroker)
	defer srv.Close()
	cfg := gateway.Config{Site: "s1", ID: "gw1", Broker: gateway.Broker{URL: "tcp://" + addr},
		QueueSize: gateway.MaxQueueSize, Spool: &gateway.SpoolConfig{Dir: b.TempDir(), MaxBytes: 1 << 30},
		Devices: []devices.Device{{ID: "pir-1", Driver: "none", Type: "occupancy_detector"}}}
	reg := devices.NewRegistry()
	reg.Register(nopDriver("none"))
	gw, err := gateway.New(cfg, nil, reg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { gw.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for !gw.Stats().Connected {
		time.Sleep(10 * time.Millisecond)
	}
	ev := event.Event{Device: "pir-1", State: event.StateMotion, Status: event.Movement}
	b.ResetTimer()
	for range b.N {
		if err := gw.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
