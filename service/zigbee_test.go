package service_test

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/gateway"
	"github.com/vaka-care/vaka/internal/mosquitto"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

// TestIntegrationZigbee2MQTTToStaff is the whole path a zigbee press
// takes: mosquitto_pub (playing zigbee2mqtt, with payloads as
// zigbee-herdsman-converters defines them) → a real Mosquitto → the real
// gateway with its zigbee2mqtt driver → the real hub → the staff stream.
// It also proves that a configured device zigbee2mqtt's bridge/devices
// does not know, zigbee2mqtt's own death (bridge/state offline) and a
// malformed payload (counted at the gateway, carried in the heartbeat)
// reach staff as technical alarms, and that the counts are in /metrics.
func TestIntegrationZigbee2MQTTToStaff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Mosquitto, a hub and a gateway")
	}
	if runtime.GOARCH == "386" {
		t.Skip("child processes crash under qemu-i386 user emulation")
	}
	mq, err := mosquitto.Start(mosquitto.Options{Dir: t.TempDir()}) // zigbee2mqtt's own broker on the Pi
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mq.Stop)
	send := testenv.MosquittoPub(t, mq.Addr)
	// As zigbee2mqtt leaves them retained (lib/mqtt.ts, availability.ts).
	send("zigbee2mqtt/bridge/state", `{"state":"online"}`, true)
	send("zigbee2mqtt/rum-12/knapp/availability", `{"state":"online"}`, true)
	// Its device list (lib/extension/bridge.ts): the button is a Tuya
	// TS0042; the door sensor the gateway is configured for was never
	// paired.
	send("zigbee2mqtt/bridge/devices", `[{"ieee_address":"0xa4c1380000000012","type":"EndDevice","friendly_name":"rum-12/knapp",`+
		`"supported":true,"definition":{"source":"native","model":"TS0042","vendor":"Tuya","description":"Wireless switch with 2 buttons",`+
		`"exposes":[{"type":"numeric","name":"battery","property":"battery","access":5,"unit":"%"},`+
		`{"type":"enum","name":"action","property":"action","access":1,"values":["1_single","1_double","1_hold","2_single","2_double","2_hold"]}]},`+
		`"power_source":"Battery","interview_state":"SUCCESSFUL"}]`, true)

	s := startHub(t, t.TempDir())
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)

	cfg := gateway.Config{
		Site: "solrosen", ID: "avd-a", Heartbeat: time.Second,
		Broker: gateway.Broker{URL: "tcp://" + s.MQTTAddr(), Username: "solrosen/avd-a", Password: gwPass},
		Devices: []devices.Device{{ID: "knapp-12", Driver: "zigbee2mqtt", Type: "personal_trigger",
			Options: map[string]string{"friendly_name": "rum-12/knapp"}},
			{ID: "dorr-entre", Driver: "zigbee2mqtt", Type: "door_sensor", Options: map[string]string{"friendly_name": "entre/dorr"}}},
		Drivers: map[string]map[string]string{"zigbee2mqtt": {"url": "tcp://" + mq.Addr, "liveness_interval": "1s"}},
	}
	gw, err := gateway.New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)), devices.NewRegistry(),
		gateway.WithReconnectMax(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The retained "online" is a report: the hub hears the button.
	heard := func() bool {
		devs, _ := s.Hub.Engine().Health()
		for _, d := range devs {
			if d.Device == "knapp-12" && !d.NeverHeard {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !heard(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hub never heard knapp-12 through the gateway")
		}
	}

	// The gateway checked its devices against zigbee2mqtt's list: the
	// unpaired door sensor is a technical alarm before anyone relies on it.
	// Technical alarms reach the screen as their group (grouping by site
	// and gateway is the default): the alarm is one of its members.
	notPaired := func(a *alarm.Alarm) bool {
		return a.Kind == alarm.KindTechnical && strings.Contains(a.Note, "dorr-entre: not paired")
	}
	p := memberOr(s, st.Next(t, 10*time.Second, func(a *alarm.Alarm) bool { return memberOr(s, a, notPaired) != nil }), notPaired)
	if p.Gateway != "avd-a" || strings.Contains(p.Note, "knapp-12") {
		t.Errorf("device problem alarm %+v", p)
	}

	// A Tuya TS0042's first key (src/devices/tuya.ts): a call on the phone.
	start := time.Now()
	send("zigbee2mqtt/rum-12/knapp", `{"action":"1_single","battery":100,"linkquality":87}`, false)
	a := st.Next(t, 5*time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindCall })
	t.Logf("mosquitto_pub → staff stream: %v", time.Since(start))
	if a.Device != "knapp-12" || a.Resident != "r-7f3a" || a.Room != "12" {
		t.Errorf("call alarm %+v", a)
	}

	// zigbee2mqtt dies: its Will sets bridge/state offline.
	send("zigbee2mqtt/bridge/state", `{"state":"offline"}`, true)
	bridge := func(a *alarm.Alarm) bool { return a.Kind == alarm.KindTechnical && a.Device == "zigbee2mqtt" }
	b := memberOr(s, st.Next(t, 5*time.Second, func(a *alarm.Alarm) bool { return memberOr(s, a, bridge) != nil }), bridge)
	if b.Gateway != "avd-a" || b.Rule != "gateway_fault" {
		t.Errorf("bridge alarm %+v", b)
	}

	// A payload that does not decode: counted at the gateway, carried in
	// its next heartbeat, a technical alarm at the hub and in /metrics.
	send("zigbee2mqtt/bridge/state", `{"state":"online"}`, true)
	send("zigbee2mqtt/rum-12/knapp", `{"action":"single","batt`, false)
	malformed := func(a *alarm.Alarm) bool {
		return a.Kind == alarm.KindTechnical && strings.Contains(a.Note, "malformed")
	}
	c := memberOr(s, st.Next(t, 10*time.Second, func(a *alarm.Alarm) bool { return memberOr(s, a, malformed) != nil }), malformed)
	if c.Gateway != "avd-a" || !strings.Contains(c.Note, "zigbee2mqtt: 1") {
		t.Errorf("input alarm %+v", c)
	}
	sample := `vaka_gateway_input_total{driver="zigbee2mqtt",gateway="avd-a",reason="malformed",site="solrosen"}`
	if v := testenv.Metric(t, base+"/metrics", sample); v != 1 {
		t.Errorf("%s = %v, want 1", sample, v)
	}
}

// memberOr returns a if it is what pred wants, else the member of group
// alarm a that is (nil if none): technical alarms reach the staff stream
// as their group.
func memberOr(s *service.Hub, a *alarm.Alarm, pred func(*alarm.Alarm) bool) *alarm.Alarm {
	if a == nil || pred(a) {
		return a
	}
	if a.Group() != nil {
		ms, _ := s.Hub.GroupMembers(a.ID)
		for _, m := range ms {
			if pred(m) {
				return m
			}
		}
	}
	return nil
}
