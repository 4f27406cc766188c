package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/gateway"
)

// logBuf collects the gateway's log; it is shown only when a test fails, and
// it stays safe to write after the test has ended.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", lb)
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestOutboxKeepsAlarmsWhenFull(t *testing.T) {
	log, _ := testLogger(t)
	cfg := gateway.Config{
		Site: "s1", ID: "gw1",
		Broker:    gateway.Broker{URL: "tcp://" + closedPort(t)},
		QueueSize: 3,
		Devices:   []devices.Device{{ID: "btn-1", Driver: "none", Type: "0003", Resident: "r-0001"}},
	}
	reg := devices.NewRegistry()
	if err := reg.Register(nopDriver("none")); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	motion := event.Event{Device: "pir-1", Type: event.Occupancy, State: event.StateMotion}
	for i := range 3 {
		if err := gw.Publish(ctx, motion); !errors.Is(err, gateway.ErrQueued) {
			t.Fatalf("telemetry %d while offline: %v, want ErrQueued", i, err)
		}
	}
	if err := gw.Publish(ctx, motion); !errors.Is(err, gateway.ErrDropped) {
		t.Fatalf("telemetry into a full outbox: %v, want ErrDropped", err)
	}
	// The device description fills in the type: a call button is an alarm.
	if err := gw.Publish(ctx, event.Event{Device: "btn-1", State: event.StatePressed, Status: event.ManualAlarm}); !errors.Is(err, gateway.ErrQueued) {
		t.Fatalf("alarm into a full outbox: %v, want ErrQueued (kept)", err)
	}
	if err := gw.Publish(ctx, event.Event{Device: "x", Type: "9999"}); !errors.Is(err, gateway.ErrDropped) {
		t.Fatalf("invalid event: %v, want ErrDropped", err)
	}
	s := gw.Stats()
	want := map[string]int64{gateway.DropQueueFull: 1, gateway.DropEvicted: 1, gateway.DropInvalid: 1, gateway.DropShutdown: 0}
	for k, v := range want {
		if s.Dropped[k] != v {
			t.Errorf("dropped[%s] = %d, want %d", k, s.Dropped[k], v)
		}
	}
	if s.Queued != 3 || s.Published != 0 || s.Connected {
		t.Errorf("stats %+v", s)
	}
}

func TestNewRefusesUnknownDriver(t *testing.T) {
	cfg := gateway.Config{
		Site: "s1", ID: "gw1",
		Broker:  gateway.Broker{URL: "tcp://127.0.0.1:1883"},
		Devices: []devices.Device{{ID: "z-1", Driver: "zigbee", Type: "door_sensor"}},
	}
	_, err := gateway.New(cfg, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `no driver "zigbee"`) {
		t.Fatalf("got %v, want an error naming the missing driver", err)
	}
}

func TestAlarmClass(t *testing.T) {
	for _, tc := range []struct {
		ev   event.Event
		want bool
	}{
		{event.Event{Type: event.PersonalTrigger, State: event.StatePressed}, true},
		{event.Event{Type: event.FallDetector, Status: event.AutomaticAlarm}, true},
		{event.Event{Type: event.DoorSensor, State: event.StateOpen}, true},
		{event.Event{Type: event.BedMonitor, State: event.StateEmpty}, true},
		{event.Event{Type: event.CommLink, Status: event.Offline}, true},
		{event.Event{Type: event.Occupancy, State: event.StateMotion, Status: event.Movement}, false},
		{event.Event{Type: event.DoorSensor}, false}, // a plain battery report
		{event.Event{Type: event.Occupancy, Status: event.BatteryLow}, true},
		{event.Event{Type: event.Tracker}, false},
		{event.Event{Type: event.PersonalTrigger}, false}, // liveness: a report without news
		{event.Event{Type: event.SmokeDetector, State: event.StateSmoke, Status: event.AutomaticAlarm}, true},
		{event.Event{Type: event.Occupancy, State: event.StateFall, Status: event.AutomaticAlarm}, true},
	} {
		if got := gateway.AlarmClass(&tc.ev); got != tc.want {
			t.Errorf("AlarmClass(%s/%s/%s) = %v, want %v", tc.ev.Type, tc.ev.State, tc.ev.Status, got, tc.want)
		}
	}
}

type nopDriver string

func (d nopDriver) Name() string                     { return string(d) }
func (nopDriver) Init(context.Context) (bool, error) { return true, nil }
func (nopDriver) Run(ctx context.Context, _ devices.Emit) error {
	<-ctx.Done()
	return nil
}

// brokenDriver fails at Init, as a driver whose serial port is missing.
type brokenDriver string

func (d brokenDriver) Name() string { return string(d) }
func (brokenDriver) Init(context.Context) (bool, error) {
	return false, fmt.Errorf("open /dev/ttyACM0: no such device")
}
func (brokenDriver) Run(context.Context, devices.Emit) error { return errors.New("not reached") }

// waitFor polls cond every 10ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func decodeJSON(t *testing.T, p []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(p, v); err != nil {
		t.Fatalf("payload %q: %v", p, err)
	}
}
