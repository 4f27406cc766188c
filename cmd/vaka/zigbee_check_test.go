package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zdev is one configured zigbee2mqtt device in a test's gateway config.
type zdev struct{ id, typ, fn, extra string }

// writeGatewayConfig writes a gateway config whose device i sits on line
// firstDeviceLine+i (an NMEA receiver first, which the zigbee check must
// pass over), and returns its path.
func writeGatewayConfig(t *testing.T, dir string, devs []zdev) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("site: solrosen\nid: avd-a\nbroker: {url: tcp://127.0.0.1:1883, username: solrosen/avd-a}\ndevices:\n")
	b.WriteString("  - {id: gps-1, driver: nmea, type: tracking_device, options: {port: /dev/ttyACM0}}\n")
	for _, d := range devs {
		fmt.Fprintf(&b, "  - {id: %s, driver: zigbee2mqtt, type: %s, options: {friendly_name: %q%s}}\n", d.id, d.typ, d.fn, d.extra)
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// firstDeviceLine is the line of devices.0 in writeGatewayConfig's file.
const firstDeviceLine = 5

// bridgeFixture is zigbee2mqtt's retained bridge/devices message as the
// driver's tests have it (written from zigbee2mqtt's bridge.ts and the
// models' exposes in zigbee-herdsman-converters; see that testdata's
// README), changed by edit when the case needs a device the fixture
// lacks.
func bridgeFixture(t *testing.T, edit func([]map[string]any)) []byte {
	t.Helper()
	p, err := os.ReadFile(filepath.Join("..", "..", "devices", "zigbee2mqtt", "testdata", "bridge_devices.json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return p
	}
	var list []map[string]any
	if err := json.Unmarshal(p, &list); err != nil {
		t.Fatal(err)
	}
	edit(list)
	out, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dropExpose removes the exposed property prop from the device named fn:
// a model whose definition lacks what its type needs.
func dropExpose(fn, prop string) func([]map[string]any) {
	return func(list []map[string]any) {
		for _, d := range list {
			def, _ := d["definition"].(map[string]any)
			if d["friendly_name"] != fn || def == nil {
				continue
			}
			var keep []any
			for _, e := range def["exposes"].([]any) {
				if e.(map[string]any)["property"] != prop {
					keep = append(keep, e)
				}
			}
			def["exposes"] = keep
		}
	}
}

// TestCheckZigbeeDevices runs `vaka check --config gateway.yaml
// --zigbee-devices devices.json` as a technician does after saving
// zigbee2mqtt's retained device list: each device that cannot do what its
// type promises is named by the config's file:line and its id, and the
// check fails; a list that is not one fails with a clear error.
func TestCheckZigbeeDevices(t *testing.T) {
	fits := []zdev{
		{"knapp-12", "personal_trigger", "rum-12/knapp", ""}, // Tuya TS0042: 1_single … presses
		{"sos-14", "personal_trigger", "rum-14/sos", ""},     // Feibit SEB01ZB: sos
		{"rok-kok", "smoke_detector", "kok/rok", ""},         // Aqara JY-GZ-01AQ: smoke
		{"radar-15", "fall_detector", "rum-15/radar", ""},    // Tuya MIR-HE200-TY: fall_down_status
		{"dorr-16", "door_sensor", "rum-16/dorr", ""},        // SONOFF SNZB-04: contact
		{"knappsats", "fixed_trigger", "kok/knappsats", ""},  // Climax keypad: emergency, panic
		{"dimmer-19", "fixed_trigger", "rum-19/dimmer", ""},  // Philips Hue dimmer: on_press …
		{"fp1-20", "bed_monitor", "rum-20/fp1", ""},          // Aqara FP1: presence
	}
	// line of the i-th zigbee device (after the NMEA receiver)
	line := func(i int) string { return fmt.Sprintf(":%d: field devices.%d: ", firstDeviceLine+1+i, 1+i) }
	for _, tc := range []struct {
		name    string
		devs    []zdev
		list    []byte // nil: the fixture as it is
		code    int
		stdout  []string
		stderr  []string // each line must appear; with "@N" replaced by zigbee device N's file:line
		problem int      // how many problems are listed
	}{
		{
			name: "every device fits", devs: fits, code: 0,
			stdout: []string{"OK – gateway config", "devices.json: OK – 8 zigbee2mqtt devices paired, each exposes what its type needs"},
		},
		{
			name: "a remote without press, a door contact as a button, unpaired, no definition",
			devs: []zdev{
				fits[0],
				{"fjarr-13", "personal_trigger", "rum-13/fjarr", ""}, // IKEA E1766: open/close/stop
				{"dorr-16", "personal_trigger", "rum-16/dorr", ""},   // a door contact registered as a button
				{"knapp-17", "personal_trigger", "rum-17/knapp", ""}, // never paired
				{"okand-18", "fixed_trigger", "rum-18/okand", ""},    // definition null: interview failed
			},
			code: 1,
			stderr: []string{
				"@1fjarr-13 (IKEA E1766): its action words (close,open,stop) hold no press, and it exposes no sos, emergency or panic: it cannot raise a call; add press_actions",
				"@2dorr-16 (SONOFF SNZB-04): exposes none of action, sos, emergency, panic: it cannot raise a call",
				"@3knapp-17: not paired in zigbee2mqtt (no device named rum-17/knapp)",
				"@4okand-18: zigbee2mqtt has no definition for it (unsupported, or its interview did not complete)",
				"check: 4 of 5 zigbee2mqtt devices cannot do what their type promises (checked against ",
			},
			problem: 4,
		},
		{
			name: "a smoke detector without smoke, a button as a door contact",
			devs: []zdev{fits[2], {"dorr-12", "door_sensor", "rum-12/knapp", ""}},
			list: bridgeFixture(t, dropExpose("kok/rok", "smoke")),
			code: 1,
			stderr: []string{
				"@0rok-kok (Aqara JY-GZ-01AQ): exposes none of smoke: it cannot raise a smoke alarm",
				"@1dorr-12 (Tuya TS0042): exposes none of contact: it cannot report the door",
				"check: 2 of 2 zigbee2mqtt devices",
			},
			problem: 2,
		},
		{
			name: "the remote's words made presses",
			devs: []zdev{{"fjarr-13", "personal_trigger", "rum-13/fjarr", `, press_actions: "open,close"`}},
			code: 0, stdout: []string{"OK – 1 zigbee2mqtt devices paired"},
		},
		{
			name: "an empty list: nothing is paired",
			devs: fits[:2], list: []byte("[]\n"), code: 1,
			stderr:  []string{"@0knapp-12: not paired in zigbee2mqtt (no device named rum-12/knapp)", "@1sos-14: not paired"},
			problem: 2,
		},
		{
			name: "not a list", devs: fits, list: []byte(`{"state":"online"}`), code: 1,
			stderr: []string{"devices.json: zigbee2mqtt: malformed payload: bridge/devices is not a JSON array; want zigbee2mqtt's retained bridge/devices message"},
		},
		{
			name: "saved with mosquitto_sub -v", devs: fits, code: 1,
			list:   append([]byte("zigbee2mqtt/bridge/devices "), bridgeFixture(t, nil)...),
			stderr: []string{"the file starts with the topic name: save the message without mosquitto_sub -v"},
		},
		{
			name: "cut short", devs: fits, code: 1, list: bridgeFixture(t, nil)[:2000],
			stderr: []string{"devices.json: zigbee2mqtt: malformed payload: bridge/devices: invalid JSON"},
		},
		{
			name: "a field of the wrong type", devs: fits, code: 1, list: []byte(`[{"friendly_name": 12}]`),
			stderr: []string{"devices.json: zigbee2mqtt: malformed payload: bridge/devices: field friendly_name has the wrong type"},
		},
		{
			name: "no zigbee2mqtt devices configured", devs: nil, code: 1,
			stderr: []string{"configures no zigbee2mqtt devices, so there is nothing to check against"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeGatewayConfig(t, dir, tc.devs)
			list := tc.list
			if list == nil {
				list = bridgeFixture(t, nil)
			}
			zpath := filepath.Join(dir, "devices.json")
			if err := os.WriteFile(zpath, list, 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run([]string{"check", "--config", cfg, "--zigbee-devices", zpath}, strings.NewReader(""), &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout %q lacks %q", out.String(), w)
				}
			}
			for _, w := range tc.stderr {
				if strings.HasPrefix(w, "@") {
					w = cfg + line(int(w[1]-'0')) + w[2:]
				}
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks\n  %s\nstderr:\n%s", w, errb.String())
				}
			}
			if n := strings.Count(errb.String(), cfg+":"); n != tc.problem {
				t.Errorf("%d lines name a device in %s, want %d:\n%s", n, cfg, tc.problem, errb.String())
			}
		})
	}
}

// The devices file is checked against a gateway config only; a missing
// file is named.
func TestCheckZigbeeDevicesNeedsGatewayConfig(t *testing.T) {
	dir := t.TempDir()
	hub := writeHubConfig(t, dir, "127.0.0.1:8080", "127.0.0.1:1883")
	zpath := filepath.Join(dir, "devices.json")
	os.WriteFile(zpath, bridgeFixture(t, nil), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", hub, "--zigbee-devices", zpath}, strings.NewReader(""), &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "--zigbee-devices checks a gateway config; "+hub+" is a hub config") {
		t.Errorf("hub config: exit %d, stderr %s", code, errb.String())
	}
	gw := writeGatewayConfig(t, dir, []zdev{{"knapp-12", "personal_trigger", "rum-12/knapp", ""}})
	errb.Reset()
	missing := filepath.Join(dir, "nosuch.json")
	if code := run([]string{"check", "--config", gw, "--zigbee-devices", missing}, strings.NewReader(""), &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "check: --zigbee-devices: open "+missing+": no such file or directory") {
		t.Errorf("missing file: exit %d, stderr %s", code, errb.String())
	}
}
