package service_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/mosquitto"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

const (
	extHubUser = "vaka-hub"
	extHubPass = "hub-secret-C3"
	extButtons = 20
)

// extHubYAML is a hub on an external broker (mqtt.broker: external) with
// call buttons k0…k19 on solrosen/avd-a and one on hem-norr/hem-1.
func extHubYAML(t *testing.T, dataDir, brokerAddr, passwordFile string) []byte {
	var devs strings.Builder
	for i := range extButtons {
		fmt.Fprintf(&devs, "          - {id: k%d, type: personal_trigger, resident: r-%d, room: \"%d\"}\n", i, i, i)
	}
	return []byte(fmt.Sprintf(`data_dir: %s
mqtt:
  broker: external
  external:
    url: tcp://%s
    username: %s
    password_file: %s
    client_id: vaka-hub-test
http:
  address: 127.0.0.1:0
users:
  - {username: %s, name: Natt Ett, role: staff, password_hash: %q}
sites:
  - id: solrosen
    night: {start: "00:00", end: "00:00"}
    gateways:
      - id: avd-a
        heartbeat: 30s
        devices:
%s  - id: hem-norr
    night: {start: "22:00", end: "06:30"}
    gateways:
      - id: hem-1
        devices:
          - {id: knapp-1, type: personal_trigger, resident: r-91cc}
`, dataDir, brokerAddr, extHubUser, passwordFile, staffUser, testenv.Hash(t, staffPass), devs.String()))
}

func startExtHub(t *testing.T, yaml []byte) *service.Hub {
	t.Helper()
	var cfg hub.Config
	if err := config.Decode("hub.yaml", yaml, &cfg); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := service.Start(&cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func buttonEvent(id string, k int) []byte {
	return []byte(fmt.Sprintf(`{"v":1,"id":%q,"device":"k%d","dty":"0003","stc":"0010","state":"pressed","ts":%q}`,
		id, k, time.Now().UTC().Format(time.RFC3339Nano)))
}

// The hub on Mosquitto (Debian package, started here on a loopback port
// with a password file and a per-gateway ACL): a gateway's call-button
// press raises the alarm on the stream; a publish outside the gateway's
// own topics is refused by Mosquitto's ACL; events published while the
// hub is down wait in its persistent session and each raises its alarm
// exactly once after the restart.
func TestIntegrationExternalMosquittoPersistentSession(t *testing.T) {
	testenv.LookPath(t, "mosquitto")
	testenv.LookPath(t, "mosquitto_passwd")
	dir := t.TempDir()
	gwUser := "solrosen/avd-a"
	mq, err := mosquitto.Start(mosquitto.Options{Dir: dir,
		Users: []mosquitto.User{{Name: extHubUser, Password: extHubPass}, {Name: gwUser, Password: gwPass}},
		ACL:   mosquitto.ACL(extHubUser)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mq.Stop)
	pwFile := filepath.Join(dir, "hub-password")
	if err := os.WriteFile(pwFile, []byte(extHubPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	yaml := extHubYAML(t, data, mq.Addr, pwFile)
	s := startExtHub(t, yaml)
	if s.Broker != nil || s.MQTTAddr() != "" || s.External == nil || !s.External.Connected() {
		t.Fatalf("external mode: embedded broker %v, consumer %v", s.Broker, s.External)
	}
	st := testenv.OpenStream(t, "http://"+s.HTTPAddr(), staffUser, staffPass)

	gw, err := connect(t, mq.Addr, gwUser, gwPass, "solrosen-avd-a")
	if err != nil {
		t.Fatal(err)
	}
	// Not its own topic: Mosquitto acknowledges (MQTT 3.1.1) but drops it.
	foreign := []byte(fmt.Sprintf(`{"v":1,"id":"x-1","device":"knapp-1","dty":"0003","state":"pressed","ts":%q}`,
		time.Now().UTC().Format(time.RFC3339Nano)))
	if err := publish(t, gw, event.EventTopic("hem-norr", "hem-1"), foreign); err != nil {
		t.Fatal(err)
	}
	if err := publish(t, gw, event.EventTopic("solrosen", "avd-a"), buttonEvent("live-1", 0)); err != nil {
		t.Fatal(err)
	}
	a := st.Next(t, 5*time.Second, func(a *alarm.Alarm) bool { return a.EventID != "" })
	if a.EventID != "solrosen/avd-a/live-1" || a.Device != "k0" || a.Rule == "" {
		t.Fatalf("first alarm = %+v, want the call button k0's (the foreign publish must be refused)", a)
	}
	// A wrong password is refused by Mosquitto.
	if _, err := connect(t, mq.Addr, gwUser, "wrong", "bad-1"); err == nil {
		t.Fatal("Mosquitto accepted a wrong gateway password")
	}

	// The hub goes down; the gateway keeps publishing into Mosquitto.
	st.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for k := 1; k < extButtons; k++ {
		if err := publish(t, gw, event.EventTopic("solrosen", "avd-a"), buttonEvent(fmt.Sprintf("q-%d", k), k)); err != nil {
			t.Fatal(err)
		}
	}
	// Restart with the same client id: the queued events arrive (during
	// Start, before any stream could listen: read the alarm list).
	s2 := startExtHub(t, yaml)
	var list []alarm.Alarm
	deadline := time.Now().Add(10 * time.Second)
	for {
		var resp struct{ Alarms []alarm.Alarm }
		testenv.GetJSON(t, "http://"+s2.HTTPAddr()+"/api/v1/alarms", staffUser, staffPass, &resp)
		list = resp.Alarms
		if len(list) >= extButtons || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Exactly once: one alarm per event, none missing.
	perEvent := map[string]int{}
	for _, a := range list {
		perEvent[a.EventID]++
	}
	if len(list) != extButtons || len(perEvent) != extButtons {
		t.Errorf("alarms after restart = %d for %d events, want %d: %v", len(list), len(perEvent), extButtons, perEvent)
	}
	for id, n := range perEvent {
		if n != 1 {
			t.Errorf("event %s raised %d alarms", id, n)
		}
	}
}
