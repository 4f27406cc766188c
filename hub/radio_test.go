package hub

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/zigbee2mqtt"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
)

const radioYAML = `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    supervision: {personal_trigger: 3m}
    gateways:
      - id: gw
        devices:
          - {id: knapp-scaip, type: personal_trigger}
          - {id: knapp-zigbee, type: personal_trigger, radio: zigbee}
          - {id: knapp-zigbee-2h, type: personal_trigger, radio: zigbee, supervision: 2h}
          - {id: dorr, type: door_sensor, radio: zigbee, supervision: 20m}
          - {id: seng, type: bed_monitor, radio: zigbee}
          - {id: plugg, type: occupancy_detector, radio: zigbee_mains}
          - {id: rok, type: smoke_detector, radio: zigbee}
          - {id: x, type: door_sensor, radio: lora}
`

func TestRadioRefusesPeriodItCannotDeliver(t *testing.T) {
	var cfg Config
	err := config.Decode("hub.yaml", []byte(radioYAML), &cfg)
	if err == nil {
		t.Fatal("a 3 min period for a battery zigbee button was accepted")
	}
	for _, want := range []string{
		"hub.yaml:12: field sites.0.gateways.0.devices.1.radio: supervised every 3m0s (the site's supervision.personal_trigger), but battery zigbee devices sleep and check in on their own schedule",
		"hub.yaml:14: field sites.0.gateways.0.devices.3.supervision: supervised every 20m0s (its supervision)",
		"Set supervision: 1h0m0s or more",
		"hub.yaml:18: field sites.0.gateways.0.devices.7.radio: unknown radio \"lora\"",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, ok := range []string{"devices.0.", "devices.2.", "devices.4.", "devices.5.", "devices.6."} {
		if strings.Contains(err.Error(), ok) {
			t.Errorf("refused a period the radio can deliver (%s):\n%v", ok, err)
		}
	}
}

func TestRadioDefaults(t *testing.T) {
	y := strings.NewReplacer("          - {id: knapp-zigbee, type: personal_trigger, radio: zigbee}\n", "",
		"          - {id: dorr, type: door_sensor, radio: zigbee, supervision: 20m}\n", "",
		"          - {id: x, type: door_sensor, radio: lora}\n", "").Replace(radioYAML)
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	rc := cfg.RuleConfig()
	for id, want := range map[string]time.Duration{
		"knapp-scaip":     3 * time.Minute,  // the site's, for a SCAIP button
		"knapp-zigbee-2h": 2 * time.Hour,    // its own
		"seng":            25 * time.Hour,   // zigbee idle sensor: no alarm for a quiet night
		"plugg":           30 * time.Minute, // zigbee router
		"rok":             2 * time.Hour,    // zigbee hazard: one missed check-in
	} {
		if got := rc.Sites["s"].Devices[id].Supervision; got == nil || *got != want {
			t.Errorf("%s supervised every %v, want %v", id, got, want)
		}
	}
	if rc.Sites["s"].Devices["rok"].Type != event.SmokeDetector {
		t.Errorf("smoke_detector type not parsed")
	}
}

// TestNightReplayIdleZigbeeSensors replays a night of idle zigbee sensors
// through the real driver and rule engine, in a synctest bubble so the
// driver's liveness clock and the engine's run on the same fake time: the
// sensors only check in (unchanged state, about every 50 min, as Aqara
// devices do), and no device_silent alarm may fire. Then the door sensor
// stops, and its alarm must come within its promised 2 h.
func TestNightReplayIdleZigbeeSensors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		y := `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    gateways:
      - id: gw
        devices:
          - {id: knapp, type: personal_trigger, radio: zigbee}
          - {id: dorr, type: door_sensor, radio: zigbee, supervision: 2h}
          - {id: seng, type: bed_monitor, radio: zigbee}
          - {id: pir, type: occupancy_detector, radio: zigbee, supervision: 2h}
`
		var cfg Config
		if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
			t.Fatal(err)
		}
		eng := rules.New(cfg.RuleConfig())
		checkin := map[string]string{
			"knapp": `{"battery":100,"voltage":3005,"linkquality":90}`,
			"dorr":  `{"contact":true,"battery":100,"voltage":3005,"linkquality":72}`,
			"seng":  `{"presence":true,"presence_event":"enter","linkquality":110}`,
			"pir":   `{"occupancy":false,"battery":100,"illuminance":0,"linkquality":60}`,
		}
		var devs []devices.Device
		for id, typ := range map[string]string{"knapp": "personal_trigger", "dorr": "door_sensor", "seng": "bed_monitor", "pir": "occupancy_detector"} {
			devs = append(devs, devices.Device{ID: id, Driver: zigbee2mqtt.Name, Type: typ, Options: map[string]string{"friendly_name": id}})
		}
		drv, err := zigbee2mqtt.New(zigbee2mqtt.DefaultOpts, devs, nil)
		if err != nil {
			t.Fatal(err)
		}
		var silent []rules.Action
		var seq int
		emit := func(ev event.Event) {
			seq++
			ev.V, ev.ID, ev.Site, ev.Gateway = event.Version, fmt.Sprintf("b-%d", seq), "s", "gw"
			acts, _ := eng.Eval(&ev, time.Now(), nil)
			for _, a := range acts {
				if a.Rule == rules.RuleDeviceSilent && a.Kind == rules.Raise {
					silent = append(silent, a)
				}
			}
		}
		drv.SetEmit(emit) // no broker: the replay calls Handle directly

		time.Sleep(21 * time.Hour) // 21:00 on the bubble's first day
		start := time.Now()
		eng.Expect(start)
		var doorLast time.Time
		for minute := range 12 * 60 { // 21:00 → 09:00
			now := time.Now()
			for i, id := range []string{"knapp", "dorr", "seng", "pir"} {
				if id == "dorr" && minute >= 9*60 { // the door sensor dies at 06:00
					continue
				}
				if (minute+7*i)%50 == 0 {
					drv.Handle("zigbee2mqtt/"+id, []byte(checkin[id]))
					if id == "dorr" {
						doorLast = now
					}
				}
			}
			eng.Heartbeat("s", "gw", now) // the gateway itself stays alive
			for _, a := range eng.Supervise(now) {
				if a.Rule == rules.RuleDeviceSilent && a.Kind == rules.Raise {
					a.Note = now.Format(time.RFC3339)
					silent = append(silent, a)
				}
			}
			time.Sleep(time.Minute)
		}
		if len(silent) != 1 || silent[0].Device != "dorr" {
			t.Fatalf("device_silent alarms %+v; want exactly one, for the door that stopped", silent)
		}
		at, _ := time.Parse(time.RFC3339, silent[0].Note)
		if d := at.Sub(doorLast); d > 2*time.Hour+time.Minute {
			t.Errorf("door alarm %v after its last check-in, promised 2h", d)
		}
		if drv.Stats().Liveness == 0 {
			t.Errorf("no liveness events: supervision cannot have seen the check-ins")
		}
	})
}

// While zigbee2mqtt is down at a gateway, its zigbee devices' silence is a
// symptom: staff get the gateway_fault, not one device_silent per device;
// when it is back, each device gets a full period again. A SCAIP device on
// the same gateway is still supervised.
func TestZigbeeDownHoldsBackDeviceSilent(t *testing.T) {
	if !slices.Equal(Radios["zigbee"].Links, []string{zigbee2mqtt.BridgeDevice, zigbee2mqtt.BrokerDevice}) {
		t.Fatalf("zigbee links %v do not name the driver's link devices", Radios["zigbee"].Links)
	}
	y := `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    gateways:
      - id: gw
        heartbeat: 24h
        devices:
          - {id: knapp-z, type: personal_trigger, radio: zigbee}
          - {id: knapp-scaip, type: personal_trigger}
`
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	eng := rules.New(cfg.RuleConfig())
	t0 := time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)
	eng.Expect(t0)
	comm := func(stc event.StatusCode, at time.Time) []rules.Action {
		ev := event.Event{V: 1, ID: "c-" + string(stc), Site: "s", Gateway: "gw", Device: zigbee2mqtt.BridgeDevice,
			Type: event.CommLink, Status: stc, Time: at}
		acts, _ := eng.Eval(&ev, at, nil)
		return acts
	}
	silent := func(at time.Time) []string {
		var out []string
		for _, a := range eng.Supervise(at) {
			if a.Rule == rules.RuleDeviceSilent && a.Kind == rules.Raise {
				out = append(out, a.Device)
			}
		}
		return out
	}
	if acts := comm(event.Offline, t0.Add(time.Minute)); len(acts) != 1 || acts[0].Rule != rules.RuleGatewayFault {
		t.Fatalf("bridge offline: %+v", acts)
	}
	if got := silent(t0.Add(3 * time.Hour)); !slices.Equal(got, []string{"knapp-scaip"}) {
		t.Fatalf("while zigbee2mqtt is down: silent %v, want only the SCAIP button", got)
	}
	back := t0.Add(5 * time.Hour)
	comm(event.Restoral, back)
	if got := silent(back.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("within a fresh period after zigbee2mqtt returned: %v", got)
	}
	if got := silent(back.Add(2*time.Hour + time.Minute)); !slices.Equal(got, []string{"knapp-z"}) {
		t.Fatalf("a full period after the return: %v, want the zigbee button reported", got)
	}
}

// A link reported down and never restored holds its devices back for at
// most rules.MaxLinkInhibit.
func TestLinkInhibitIsBounded(t *testing.T) {
	y := `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    gateways:
      - id: gw
        heartbeat: 240h
        devices:
          - {id: knapp-z, type: personal_trigger, radio: zigbee}
`
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	eng := rules.New(cfg.RuleConfig())
	t0 := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	eng.Expect(t0)
	ev := event.Event{V: 1, ID: "c-1", Site: "s", Gateway: "gw", Device: zigbee2mqtt.BrokerDevice, Type: event.CommLink, Status: event.Offline, Time: t0}
	eng.Eval(&ev, t0, nil)
	var raisedAt time.Time
	for at := t0; at.Before(t0.Add(24 * time.Hour)); at = at.Add(time.Minute) {
		for _, a := range eng.Supervise(at) {
			if a.Rule == rules.RuleDeviceSilent && a.Kind == rules.Raise && raisedAt.IsZero() {
				raisedAt = at
			}
		}
	}
	if raisedAt.IsZero() || raisedAt.Sub(t0) < rules.MaxLinkInhibit || raisedAt.Sub(t0) > rules.MaxLinkInhibit+2*time.Hour+time.Minute {
		t.Fatalf("device_silent at %v after the link went down, want after %v and within its period", raisedAt.Sub(t0), rules.MaxLinkInhibit)
	}
}
