package hub

import (
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/tillsyn"
)

const tillsynYAML = `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    residents:
      - id: r-a
        consent: {rules: [tillsyn, bed_exit], recorded_by: anna, recorded_at: "2026-11-01"}
        plan:
          tillsyn:
            times: ["23:00", "02:00", "05:00"]
            tolerance: 15m
            all_right: {in_bed: true, door_closed: true, no_alarm_open: true}
            sensors: [bed-a, door-a]
            not_all_right: {do: alarm, kind: call, priority: 2}
            replaces: ["02:00"]
    gateways:
      - id: gw
        devices:
          - {id: bed-a, type: bed_monitor, resident: r-a, room: "12"}
          - {id: door-a, type: door_sensor, resident: r-a, room: "12"}
          - {id: btn-a, type: personal_trigger, resident: r-a}
`

func TestTillsynConfig(t *testing.T) {
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(tillsynYAML), &cfg); err != nil {
		t.Fatalf("good plan refused: %v", err)
	}
	plans := cfg.TillsynPlans()
	if len(plans) != 1 {
		t.Fatalf("%d plans", len(plans))
	}
	p := plans[0]
	if p.Resident != "r-a" || !p.Consent || p.Tolerance != 15*time.Minute || p.Action.Kind != tillsyn.DoAlarm ||
		len(p.Sensors) != 2 || p.Sensors[0] != (tillsyn.SensorRef{Device: "bed-a", Role: tillsyn.RoleBed}) ||
		p.NightStart != 22*60 || p.NightEnd != 6*60+30 || len(p.Replaces) != 1 {
		t.Errorf("plan %+v", p)
	}
}

func TestTillsynConfigErrorsNameFileLineField(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"sensor the resident does not have", "sensors: [bed-a, door-a]", "sensors: [bed-a, door-b]",
			`hub.yaml:15: field sites.0.residents.0.plan.tillsyn.sensors.1: resident "r-a" has no device "door-b"`},
		{"sensor of another kind", "sensors: [bed-a, door-a]", "sensors: [bed-a, door-a, btn-a]",
			`hub.yaml:15: field sites.0.residents.0.plan.tillsyn.sensors.2: device "btn-a" is a personal_trigger`},
		{"criterion without a sensor", "all_right: {in_bed: true, door_closed: true, no_alarm_open: true}", "all_right: {in_bed: true, presence_within: 30m}",
			`hub.yaml:14: field sites.0.residents.0.plan.tillsyn.all_right.presence_within: resident "r-a" has no presence sensor`},
		{"look-in outside the night", `times: ["23:00", "02:00", "05:00"]`, `times: ["23:00", "02:00", "07:00"]`,
			"hub.yaml:12: field sites.0.residents.0.plan.tillsyn.times.2: 07:00 is outside the night window 22:00–06:30"},
		{"overlapping windows", `times: ["23:00", "02:00", "05:00"]`, `times: ["23:00", "02:00", "02:10"]`,
			"hub.yaml:13: field sites.0.residents.0.plan.tillsyn.tolerance: the look-ins at 02:00 and 02:10 overlap"},
		{"no consent", "rules: [tillsyn, bed_exit]", "rules: [bed_exit]",
			`hub.yaml:11: field sites.0.residents.0.plan.tillsyn: no recorded consent`},
		{"bad clock", `times: ["23:00", "02:00", "05:00"]`, `times: ["23:00", "2:00", "05:00"]`,
			`hub.yaml:12: field sites.0.residents.0.plan.tillsyn.times.1: "2:00" is not HH:MM`},
		{"bad action", "do: alarm", "do: ring",
			"hub.yaml:16: field sites.0.residents.0.plan.tillsyn.not_all_right.do: must be visit or alarm"},
		{"replaces a visit without a look-in", `replaces: ["02:00"]`, `replaces: ["03:00"]`,
			"hub.yaml:17: field sites.0.residents.0.plan.tillsyn.replaces.0: no look-in at 03:00"},
		{"on a site plan", "    residents:\n", "    plan: {tillsyn: {every: 2h}}\n    residents:\n",
			"hub.yaml:7: field sites.0.plan.tillsyn: tillsyn is planned per resident"},
	}
	for _, c := range cases {
		y := strings.Replace(tillsynYAML, c.from, c.to, 1)
		if y == tillsynYAML {
			t.Fatalf("%s: replacement did not apply", c.name)
		}
		var cfg Config
		err := config.Decode("hub.yaml", []byte(y), &cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error lacks %q:\n%v", c.name, c.want, err)
		}
	}
}
