package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/gateway"
)

const goodYAML = `site: home-north
id: gw-01
broker:
  url: ssl://hub.example.org:8883
  username: gw-01
  password_file: /etc/vaka/gw-01.secret
heartbeat: 15s
devices:
  - id: btn-101
    driver: sim
    type: personal_trigger
    resident: r-7f3a
    unit: unit-a
    room: "101"
  - {id: door-exit, driver: sim, type: "0014", unit: unit-a, exit: true}
sim:
  scenarios: [night_wander, call_button]
  interval: 40s
  seed: 3
`

func TestConfigGood(t *testing.T) {
	var cfg gateway.Config
	if err := config.Decode("gw.yaml", []byte(goodYAML), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Heartbeat != 15*time.Second || len(cfg.Devices) != 2 || !cfg.Devices[1].Exit {
		t.Errorf("decoded %+v", cfg)
	}
	if cfg.Sim == nil || cfg.Sim.Seed != 3 || len(cfg.Sim.Scenarios) != 2 {
		t.Errorf("sim section: %+v", cfg.Sim)
	}
}

func TestConfigErrorsNameFileLineAndField(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{
			name: "missing url and bad ids",
			yaml: "site: home north\nid: gw-01\nbroker:\n  username: gw\n",
			want: []string{"gw.yaml:1: field site:", "gw.yaml:3: field broker.url: missing"},
		},
		{
			name: "device fields",
			yaml: "site: s\nid: g\nbroker: {url: tcp://hub:1883}\ndevices:\n  - id: d1\n    driver: sim\n    type: toaster\n    resident: Anna Svensson\nsim: {}\n",
			want: []string{"gw.yaml:7: field devices.0.type", "gw.yaml:8: field devices.0.resident"},
		},
		{
			name: "duplicate device and missing sim section",
			yaml: "site: s\nid: g\nbroker: {url: tcp://hub:1883}\ndevices:\n  - {id: d1, driver: zigbee, type: door_sensor}\n  - {id: d1, driver: sim, type: door_sensor}\n",
			want: []string{"gw.yaml:6: field devices.1.id: duplicate of devices.0", "field devices.1.driver: driver sim needs a sim section"},
		},
		{
			name: "heartbeat too short",
			yaml: "site: s\nid: g\nbroker: {url: tcp://hub:1883}\nheartbeat: 500ms\n",
			want: []string{"gw.yaml:4: field heartbeat: must be at least 1s"},
		},
		{
			name: "bad broker url",
			yaml: "site: s\nid: g\nbroker:\n  url: http://hub\n  password: x\n  password_file: /x\n",
			want: []string{"gw.yaml:4: field broker.url: scheme", "gw.yaml:5: field broker.password: set password or password_file", "broker.username: missing"},
		},
		{
			name: "tcp without port",
			yaml: "site: s\nid: g\nbroker: {url: \"tcp://hub\"}\n",
			want: []string{"gw.yaml:3: field broker.url: needs host and port"},
		},
		{
			name: "unknown key",
			yaml: "site: s\nid: g\nbroker: {url: tcp://hub:1883}\nhartbeat: 30s\n",
			want: []string{"gw.yaml:4", "hartbeat", "unknown field"},
		},
		{
			name: "unknown sim scenario",
			yaml: "site: s\nid: g\nbroker: {url: tcp://hub:1883}\nsim:\n  scenarios:\n    - night_wander\n    - disco\n",
			want: []string{"gw.yaml:7: field sim.scenarios.1: unknown scenario"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg gateway.Config
			err := config.Decode("gw.yaml", []byte(tc.yaml), &cfg)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "Svensson") {
				t.Errorf("error echoes a personal name:\n%v", err)
			}
		})
	}
}

func TestConfigSecretNotEchoed(t *testing.T) {
	var cfg gateway.Config
	err := config.Decode("gw.yaml", []byte("site: s\nid: g\nbroker: {url: \"tcp://gw:hunter2@hub:1883\"}\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "broker.url: must not carry credentials") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error echoes the password: %v", err)
	}
}

func FuzzConfig(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte("site: s\nid: g\nbroker: {url: tcp://hub:1883}\n"))
	f.Add([]byte("devices: [{id: 1}]\nsim: {interval: -1s}\n"))
	f.Add([]byte("broker: {url: \"ws://[::1\"}\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg gateway.Config
		if err := config.Decode("gw.yaml", data, &cfg); err != nil {
			return
		}
		// Whatever decodes cleanly must validate again the same way.
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Decode accepted a config that Validate refuses: %v", err)
		}
	})
}
