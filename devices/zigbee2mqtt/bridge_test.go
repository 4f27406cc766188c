package zigbee2mqtt

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/devices"
)

// TestBridgeDevicesCheck reads a retained bridge/devices message written
// from zigbee2mqtt's bridge.ts and the models' exposes, and checks which
// configured devices can do what they are registered for.
func TestBridgeDevicesCheck(t *testing.T) {
	p, err := os.ReadFile("testdata/bridge_devices.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg := []struct{ id, typ, fn string }{
		{"knapp-12", "personal_trigger", "rum-12/knapp"}, // Tuya TS0042: 1_single … presses
		{"fjarr-13", "personal_trigger", "rum-13/fjarr"}, // IKEA E1766: open/close/stop, no press
		{"sos-14", "personal_trigger", "rum-14/sos"},     // Feibit SEB01ZB: sos
		{"rok-kok", "smoke_detector", "kok/rok"},         // Aqara JY-GZ-01AQ: smoke
		{"radar-15", "fall_detector", "rum-15/radar"},    // Tuya MIR-HE200-TY: fall_down_status
		{"dorr-16", "personal_trigger", "rum-16/dorr"},   // a door contact registered as a button
		{"knapp-17", "personal_trigger", "rum-17/knapp"}, // never paired
		{"okand-18", "fixed_trigger", "rum-18/okand"},    // no definition: interview failed
		{"knappsats", "fixed_trigger", "kok/knappsats"},  // Climax keypad: emergency, panic
		{"dimmer-19", "fixed_trigger", "rum-19/dimmer"},  // Philips Hue dimmer: on_press …
		{"fp1-20", "bed_monitor", "rum-20/fp1"},          // Aqara FP1: presence
	}
	var devs []devices.Device
	for _, c := range cfg {
		devs = append(devs, devices.Device{ID: c.id, Driver: Name, Type: c.typ, Options: map[string]string{"friendly_name": c.fn}})
	}
	var logs bytes.Buffer
	d, err := New(DefaultOpts, devs, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d.Handle("zigbee2mqtt/bridge/devices", p)
	got := d.InputStats().Problems
	want := []string{
		"dorr-16 (SONOFF SNZB-04): exposes none of action, sos, emergency, panic: it cannot raise a call",
		"fjarr-13 (IKEA E1766): its action words (close,open,stop) hold no press, and it exposes no sos, emergency or panic: it cannot raise a call; add press_actions",
		"knapp-17: not paired in zigbee2mqtt (no device named rum-17/knapp)",
		"okand-18: zigbee2mqtt has no definition for it (unsupported, or its interview did not complete)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := strings.Count(logs.String(), "cannot work as configured"); n != 4 {
		t.Errorf("logged %d problems, want 4", n)
	}
	// The retained list again (every reconnect): no new log lines.
	d.Handle("zigbee2mqtt/bridge/devices", p)
	if n := strings.Count(logs.String(), "cannot work as configured"); n != 4 {
		t.Errorf("problems logged again: %d", n)
	}
	// The technician adds press_actions to the IKEA remote: fixed.
	devs[1].Options["press_actions"] = "open,close"
	d2, _ := New(DefaultOpts, devs, nil)
	d2.Handle("zigbee2mqtt/bridge/devices", p)
	for _, p := range d2.InputStats().Problems {
		if strings.HasPrefix(p, "fjarr-13") {
			t.Errorf("still a problem with press_actions: %s", p)
		}
	}
	d.Handle("zigbee2mqtt/bridge/devices", []byte(`{"not":"a list"}`))
	if d.Stats().Malformed != 1 || len(d.InputStats().Problems) != 4 {
		t.Errorf("a malformed list must be counted and keep the last known problems")
	}
}

// FuzzBridgeDevices keeps the bridge/devices parser, which `vaka check
// --zigbee-devices` also feeds from a file, from ever panicking, and holds
// CheckBridgeDevices to exactly the problems the running driver reports
// for the same list.
func FuzzBridgeDevices(f *testing.F) {
	p, err := os.ReadFile("testdata/bridge_devices.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(p), `[]`, `[{"friendly_name":"rum-12/knapp","definition":null}]`,
		`[{"friendly_name":"rum-12/knapp","definition":{"exposes":[{"type":"composite","features":[{"property":"action","values":[1,"single"]}]}]}}]`,
		`{"not":"a list"}`, `[`, `zigbee2mqtt/bridge/devices [{}]`} {
		f.Add([]byte(s))
	}
	devs := []devices.Device{
		{ID: "knapp-12", Driver: Name, Type: "personal_trigger", Options: map[string]string{"friendly_name": "rum-12/knapp"}},
		{ID: "rok-kok", Driver: Name, Type: "smoke_detector", Options: map[string]string{"friendly_name": "kok/rok"}},
		{ID: "dorr-16", Driver: Name, Type: "door_sensor", Options: map[string]string{"friendly_name": "rum-16/dorr"}},
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		list, err := DecodeBridgeDevices(p)
		if err != nil {
			return
		}
		got, err := CheckBridgeDevices(devs, list)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := New(DefaultOpts, devs, nil)
		d.Handle("zigbee2mqtt/bridge/devices", p)
		run := d.InputStats().Problems
		if len(got) != len(run) {
			t.Fatalf("check found %d problems, the driver %d", len(got), len(run))
		}
		for i, pr := range got {
			if pr.Msg != run[i] || !strings.HasPrefix(pr.Msg, pr.Device) {
				t.Fatalf("problem %d: %+v, driver: %q", i, pr, run[i])
			}
		}
	})
}
