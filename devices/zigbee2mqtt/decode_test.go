package zigbee2mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/devices"

	"github.com/vaka-care/vaka/event"
)

func TestDecodeStateRealPayloads(t *testing.T) {
	for _, tc := range []struct {
		name, p string
		want    func(Reading) bool
	}{
		{"aqara door closed", `{"battery":100,"contact":true,"device_temperature":25,"linkquality":102,"power_outage_count":4,"voltage":3025}`,
			func(r Reading) bool { return *r.Contact && *r.Battery == 100 }},
		{"ikea button", `{"action":"single","battery":87,"linkquality":60,"update":{"state":"idle"}}`,
			func(r Reading) bool { return *r.Action == "single" }},
		{"pir", `{"battery":95,"battery_low":false,"occupancy":true,"tamper":false,"linkquality":144}`,
			func(r Reading) bool { return *r.Occupancy && !*r.Tamper && !*r.BatteryLow }},
		{"battery out of range dropped", `{"battery":250,"contact":false}`,
			func(r Reading) bool { return r.Battery == nil && !*r.Contact }},
	} {
		r, err := DecodeState([]byte(tc.p))
		if err != nil || !tc.want(r) {
			t.Errorf("%s: %+v %v", tc.name, r, err)
		}
	}
	for _, bad := range []string{``, `online`, `[1]`, `{"contact":"yes"}`, `{"battery":"full"}`, `{"contact":tru`} {
		if _, err := DecodeState([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", bad, err)
		}
	}
}

func TestDecodeAvailability(t *testing.T) {
	for p, want := range map[string]bool{"online": true, "offline": false, `{"state":"online"}`: true, `{"state":"offline"}`: false} {
		if got, err := DecodeAvailability([]byte(p)); err != nil || got != want {
			t.Errorf("%s: %v %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "on", `{"state":1}`, `{"state":`} {
		if _, err := DecodeAvailability([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEventsOnlyOnChange(t *testing.T) {
	var l last
	b := func(v bool) *bool { return &v }
	f := func(v float64) *float64 { return &v }
	s := func(v string) *string { return &v }
	evs := l.evs(event.DoorSensor, Reading{Contact: b(true), Battery: f(100)})
	if len(evs) != 2 || evs[0].State != event.StateClosed || *evs[1].Battery != 100 {
		t.Fatalf("first report: %+v", evs)
	}
	if evs := l.evs(event.DoorSensor, Reading{Contact: b(true), Battery: f(100)}); len(evs) != 0 {
		t.Fatalf("repeat: %+v", evs)
	}
	if evs := l.evs(event.DoorSensor, Reading{Contact: b(false), Battery: f(100)}); len(evs) != 1 || evs[0].State != event.StateOpen {
		t.Fatalf("open: %+v", evs)
	}
	if evs := l.evs(event.DoorSensor, Reading{BatteryLow: b(true), Battery: f(9)}); len(evs) != 1 || evs[0].Status != event.BatteryLow || *evs[0].Battery != 9 {
		t.Fatalf("low: %+v", evs)
	}
	if evs := l.evs(event.DoorSensor, Reading{Tamper: b(true)}); len(evs) != 1 || evs[0].State != event.StateTamper {
		t.Fatalf("tamper: %+v", evs)
	}
	var btn last
	for range 2 { // every press counts
		if evs := btn.evs(event.PersonalTrigger, Reading{Action: s("single")}); len(evs) != 1 || evs[0].Status != event.ManualAlarm {
			t.Fatalf("press: %+v", evs)
		}
	}
	if evs := btn.evs(event.PersonalTrigger, Reading{Action: s("release")}); len(evs) != 0 {
		t.Fatalf("release: %+v", evs)
	}
	var pir last
	if evs := pir.evs(event.Occupancy, Reading{Occupancy: b(true)}); len(evs) != 1 || evs[0].State != event.StateMotion {
		t.Fatalf("motion: %+v", evs)
	}
	if evs := pir.evs(event.Occupancy, Reading{Occupancy: b(false)}); len(evs) != 0 {
		t.Fatalf("no motion: %+v", evs)
	}
	var bed last
	if evs := bed.evs(event.BedMonitor, Reading{Occupancy: b(false)}); len(evs) != 1 || evs[0].State != event.StateEmpty {
		t.Fatalf("bed: %+v", evs)
	}
}

func FuzzDecodeState(f *testing.F) {
	for _, s := range []string{`{"contact":true,"battery":100}`, `{"action":"single"}`, `{"sos":true,"fall_down_status":"fall","smoke":true,"presence":false}`, `{"occupancy":false,"tamper":true,"battery_low":true}`, `{`, `null`, `{"battery":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := DecodeState(p)
		if err != nil {
			return
		}
		for _, typ := range []event.DeviceType{event.DoorSensor, event.Occupancy, event.PersonalTrigger, event.BedMonitor, event.FallDetector, event.SmokeDetector} {
			var l last
			for _, ev := range l.evs(typ, r) {
				ev.V, ev.ID, ev.Device, ev.Type, ev.Time = event.Version, "x-1", "d", typ, ev.Time.AddDate(2026, 0, 0)
				if err := ev.Validate(); err != nil {
					t.Fatalf("%s: event %+v invalid: %v", p, ev, err)
				}
			}
		}
	})
}

func FuzzDecodeAvailability(f *testing.F) {
	for _, s := range []string{"online", "offline", `{"state":"online"}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) { _, _ = DecodeAvailability(p) })
}

// evs is events without device words, for tests of the plain mapping.
func (l *last) evs(t event.DeviceType, r Reading) []event.Event {
	out, _ := l.events(t, r, Words{})
	return out
}

func TestClassifyAction(t *testing.T) {
	for w, want := range map[string]ActionClass{
		"single": ActionPress, "many": ActionPress, "quadruple": ActionPress, "1_single": ActionPress,
		"4_hold": ActionPress, "button_2_double": ActionPress, "single_left": ActionPress, "hold_both": ActionPress,
		"on_press": ActionPress, "up_hold": ActionPress, "brightness_move_up": ActionPress, "panic": ActionPress,
		"emergency": ActionPress, "sos": ActionPress, "off": ActionPress,
		"release": ActionIgnore, "1_release": ActionIgnore, "on_press_release": ActionIgnore, "brightness_stop": ActionIgnore, "": ActionIgnore,
		"arm_all_zones": ActionUnknown, "open": ActionUnknown, "rotate_left": ActionUnknown,
	} {
		if got := ClassifyAction(w); got != want {
			t.Errorf("%q: %d, want %d", w, got, want)
		}
	}
}

func TestUnmappedCountedAndLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	d, err := New(DefaultOpts, []devices.Device{{ID: "knapp-1", Driver: Name, Type: "personal_trigger",
		Options: map[string]string{"friendly_name": "knapp"}}}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		d.Handle("zigbee2mqtt/knapp", []byte(`{"action":"arm_all_zones","co2":400,"linkquality":80}`))
	}
	if s := d.Stats(); s.Unmapped != 6 {
		t.Errorf("unmapped %d, want 6 (two words, three times)", s.Unmapped)
	}
	if n := strings.Count(logs.String(), "unmapped property or action word"); n != 2 {
		t.Errorf("logged %d times, want once per word:\n%s", n, logs.String())
	}
	in := d.InputStats()
	if !slices.Equal(in.Words, []string{"knapp-1: action=arm_all_zones", "knapp-1: co2"}) || in.Unmapped != 6 {
		t.Errorf("input stats %+v", in)
	}
}

func TestLivenessAtMostOncePerInterval(t *testing.T) {
	d, err := New(Opts{Liveness: time.Minute}, []devices.Device{{ID: "dorr", Driver: Name, Type: "door_sensor",
		Options: map[string]string{"friendly_name": "dorr"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	var n int
	d.emit = func(event.Event) { n++ }
	d.Handle("zigbee2mqtt/dorr", []byte(`{"contact":true}`)) // a change: one event
	for range 29 {                                           // unchanged reports and availability within 58 s
		now = now.Add(2 * time.Second)
		d.Handle("zigbee2mqtt/dorr", []byte(`{"contact":true}`))
		d.Handle("zigbee2mqtt/dorr/availability", []byte(`{"state":"online"}`))
	}
	if n != 1 {
		t.Fatalf("%d events within the interval, want only the change", n)
	}
	now = now.Add(2 * time.Second)
	d.Handle("zigbee2mqtt/dorr/availability", []byte(`online`))
	if n != 2 || d.Stats().Liveness != 1 {
		t.Fatalf("after the interval: %d events, %d liveness; want one liveness event", n, d.Stats().Liveness)
	}
}

func TestBridgeState(t *testing.T) {
	d, _ := New(DefaultOpts, []devices.Device{{ID: "k", Driver: Name, Type: "personal_trigger", Options: map[string]string{"friendly_name": "k"}}}, nil)
	var got []event.Event
	d.emit = func(ev event.Event) { got = append(got, ev) }
	for _, p := range []string{`{"state":"online"}`, `{"state":"offline"}`, `offline`, `{"state":"online"}`, `{"state":"bogus"}`} {
		d.Handle("zigbee2mqtt/bridge/state", []byte(p))
	}
	// The first "online" since start restores whatever the hub may hold
	// from before a gateway restart; then offline, and back.
	if len(got) != 3 || got[0].Status != event.Restoral || got[1].Status != event.Offline || got[2].Status != event.Restoral ||
		got[1].Type != event.CommLink || got[1].Device != BridgeDevice {
		t.Fatalf("%+v", got)
	}
	if d.Stats().Malformed != 1 {
		t.Errorf("bogus bridge state not counted")
	}
}

// FuzzHandle drives whole messages through the driver, for every device
// type: nothing may panic, every emitted event must be valid, and the
// remembered unmapped words stay bounded however many arrive.
func FuzzHandle(f *testing.F) {
	for _, s := range []struct{ topic, p string }{
		{"zigbee2mqtt/d", `{"action":"1_single","sos":true,"fall_down_status":"maybe_fall","presence":false}`},
		{"zigbee2mqtt/d", `{"smoke":true,"water_leak":false,"gas":true,"carbon_monoxide":true,"vibration":true,"tamper":true}`},
		{"zigbee2mqtt/d", `{"action":"arm_all_zones","zz":1,"fall_down_status":"odd"}`},
		{"zigbee2mqtt/d/availability", `{"state":"offline"}`},
		{"zigbee2mqtt/bridge/state", `offline`},
	} {
		f.Add(s.topic, []byte(s.p))
	}
	types := []string{"personal_trigger", "fixed_trigger", "fall_detector", "bed_monitor", "mat_sensor", "door_sensor",
		"wandering_sensor", "occupancy_detector", "chair_monitor", "smoke_detector", "water_leak_detector", "gas_detector"}
	var devs []devices.Device
	for i, typ := range types {
		name := "d"
		if i > 0 {
			name = fmt.Sprintf("d%d", i)
		}
		devs = append(devs, devices.Device{ID: "dev-" + typ, Driver: Name, Type: typ, Options: map[string]string{"friendly_name": name}})
	}
	f.Fuzz(func(t *testing.T, topic string, p []byte) {
		d, err := New(DefaultOpts, devs, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.emit = func(ev event.Event) {
			ev.V, ev.ID = event.Version, "x-1"
			if err := ev.Validate(); err != nil {
				t.Fatalf("%q %q: event %+v invalid: %v", topic, p, ev, err)
			}
		}
		for i := range types {
			name := "zigbee2mqtt/d"
			if i > 0 {
				name = fmt.Sprintf("zigbee2mqtt/d%d", i)
			}
			d.Handle(name, p)
			d.Handle(name+"/availability", p)
		}
		d.Handle(topic, p)
		if w := d.InputStats().Words; len(w) > devices.MaxInputWords {
			t.Fatalf("%d words", len(w))
		}
	})
}

// A zigbee broker that is unreachable for longer than the grace (here one
// that never comes up) is reported once; reachable again, restored once.
func TestWatchLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, _ := New(DefaultOpts, []devices.Device{{ID: "k", Driver: Name, Type: "personal_trigger", Options: map[string]string{"friendly_name": "k"}}}, nil)
		d.linkGrace, d.linkTick = time.Minute, 5*time.Second
		var mu sync.Mutex
		var evs []event.Event
		d.SetEmit(func(ev event.Event) { mu.Lock(); evs = append(evs, ev); mu.Unlock() })
		got := func() []event.Event { mu.Lock(); defer mu.Unlock(); return slices.Clone(evs) }
		var up atomic.Bool
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); d.watchLink(ctx, up.Load) }()
		time.Sleep(50 * time.Second)
		if g := got(); len(g) != 0 {
			t.Fatalf("reported within the grace: %+v", g)
		}
		time.Sleep(30 * time.Second)
		if g := got(); len(g) != 1 || g[0].Status != event.Offline || g[0].Device != BrokerDevice || g[0].Type != event.CommLink {
			t.Fatalf("after the grace: %+v", g)
		}
		time.Sleep(10 * time.Minute)
		if g := got(); len(g) != 1 {
			t.Fatalf("reported again: %+v", g)
		}
		up.Store(true)
		time.Sleep(10 * time.Second)
		if g := got(); len(g) != 2 || g[1].Status != event.Restoral {
			t.Fatalf("restoral: %+v", g)
		}
		cancel()
		<-done
	})
}
