package hub

import (
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
)

func TestConfigErrorsNameFileLineField(t *testing.T) {
	yaml := `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
users:
  - {username: a, role: boss, password_hash: "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    residents:
      - id: r-a
        consent: {rules: [bed_exit, call_button]}
    gateways:
      - id: gw
        devices:
          - {id: d1, type: dorr}
          - {id: d1, type: door_sensor}
          - {id: d2, type: door_sensor, colour: red}
`
	var cfg Config
	err := config.Decode("hub.yaml", []byte(yaml), &cfg)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		"hub.yaml:17: field sites.0.gateways.0.devices.2.colour: unknown field",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// With the unknown key gone, validation names every other problem.
	err = config.Decode("hub.yaml", []byte(strings.Replace(yaml, ", colour: red", "", 1)), &cfg)
	for _, want := range []string{
		"hub.yaml:5: field users.0.role: must be staff",
		"hub.yaml:11: field sites.0.residents.0.consent.rules.1: \"call_button\" is not a rule that needs consent",
		"hub.yaml:11: field sites.0.residents.0.consent.recorded_by: missing",
		"hub.yaml:15: field sites.0.gateways.0.devices.0.type: unknown device type \"dorr\"",
		"hub.yaml:16: field sites.0.gateways.0.devices.1.id: duplicate device \"d1\"",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
