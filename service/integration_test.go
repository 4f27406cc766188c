package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
	"github.com/vaka-care/vaka/store"
)

const (
	gwPass    = "gw-secret-A1"
	otherPass = "gw-secret-B2"
	staffUser = "natt1"
	staffPass = "natt1-secret"
)

// hubYAML is a production-shaped config (not demo): credentials required.
func hubYAML(t *testing.T, dataDir string) []byte {
	return []byte(fmt.Sprintf(`data_dir: %s
timezone: Europe/Stockholm
mqtt:
  tcp: 127.0.0.1:0
http:
  address: 127.0.0.1:0
users:
  - username: %s
    name: Natt Ett
    role: staff
    password_hash: %q
sites:
  - id: solrosen
    night: {start: "00:00", end: "00:00"}
    gateways:
      - id: avd-a
        password_hash: %q
        heartbeat: 30s
        devices:
          - {id: knapp-12, type: personal_trigger, resident: r-7f3a, unit: avd-a, room: "12"}
          - {id: dorr-entre, type: door_sensor, unit: avd-a, room: entre, exit: true}
          - {id: sang-12, type: bed_monitor, resident: r-7f3a, unit: avd-a, room: "12"}
  - id: hem-norr
    night: {start: "22:00", end: "06:30"}
    gateways:
      - id: hem-1
        password_hash: %q
        devices:
          - {id: knapp-1, type: personal_trigger, resident: r-91cc}
`, dataDir, staffUser, testenv.Hash(t, staffPass), testenv.Hash(t, gwPass), testenv.Hash(t, otherPass)))
}

// logs collects each test hub's log output, to check no payload leaks.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startHub(t *testing.T, dataDir string) *service.Hub {
	s, _ := startHubLogs(t, dataDir)
	return s
}

func startHubLogs(t *testing.T, dataDir string) (*service.Hub, *logBuf) {
	t.Helper()
	var cfg hub.Config
	if err := config.Decode("hub.yaml", hubYAML(t, dataDir), &cfg); err != nil {
		t.Fatal(err)
	}
	buf := &logBuf{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, buf), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := service.Start(&cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, buf
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// connect logs a paho gateway in (MQTT 3.1.1, no auto-reconnect: a test
// sees a refused or dropped connection as it happens).
func connect(t testing.TB, addr, user, pass, id string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).SetConnectTimeout(3 * time.Second).
		SetConnectRetry(false).SetProtocolVersion(4)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func publish(t *testing.T, c paho.Client, topic string, payload []byte) error {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5 * time.Second) {
		return fmt.Errorf("publish timed out")
	}
	return tok.Error()
}

func callEvent(id string) []byte {
	return []byte(fmt.Sprintf(`{"v":1,"id":%q,"device":"knapp-12","dty":"0003","stc":"0010","state":"pressed","ts":%q}`,
		id, time.Now().UTC().Format(time.RFC3339Nano)))
}

// store.sync_every reaches the journal: /metrics reports the configured
// group-commit window.
func TestIntegrationStoreSyncWindowFromConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	var cfg hub.Config
	yml := append(hubYAML(t, t.TempDir()), "store: {sync_every: 7ms}\n"...)
	if err := config.Decode("hub.yaml", yml, &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := testenv.Metric(t, "http://"+s.HTTPAddr()+"/metrics", "vaka_store_sync_window_seconds"); v != 0.007 {
		t.Errorf("sync window = %v s, want 0.007 from store.sync_every", v)
	}
}

// A paho gateway publishes over real TCP; the alarm is on the stream within
// 1 s and in GET /api/v1/alarms, enriched from the device registry.
func TestIntegrationPahoAlarmReachesStreamAndAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s := startHub(t, t.TempDir())
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "solrosen-avd-a")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("e-1")); err != nil {
		t.Fatal(err)
	}
	a := st.Next(t, time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindCall })
	t.Logf("publish → stream: %v", time.Since(start))
	if a.Resident != "r-7f3a" || a.Room != "12" || a.Unit != "avd-a" || a.State != alarm.Raised || a.Status != event.ManualAlarm {
		t.Errorf("alarm not enriched from registry: %+v", a)
	}
	var list struct{ Alarms []*alarm.Alarm }
	if code := testenv.GetJSON(t, base+"/api/v1/alarms", staffUser, staffPass, &list); code != 200 {
		t.Fatalf("GET alarms: %d", code)
	}
	if len(list.Alarms) != 1 || list.Alarms[0].ID != a.ID {
		t.Fatalf("alarms = %+v, want the one raised", list.Alarms)
	}

	// The same event again (a redelivery) raises nothing new.
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("e-1")); err != nil {
		t.Fatal(err)
	}
	// A new press while open is a repeat of the same alarm.
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("e-2")); err != nil {
		t.Fatal(err)
	}
	r := st.Next(t, time.Second, func(x *alarm.Alarm) bool { return x.ID == a.ID && x.Repeats() == 1 })
	if r.Repeats() != 1 {
		t.Fatalf("repeats = %d", r.Repeats())
	}
	testenv.GetJSON(t, base+"/api/v1/alarms", staffUser, staffPass, &list)
	if len(list.Alarms) != 1 {
		t.Fatalf("duplicate or repeat raised a new alarm: %d alarms", len(list.Alarms))
	}
	if v := testenv.Metric(t, base+"/metrics", "vaka_events_duplicate_total"); v != 1 {
		t.Errorf("duplicates = %v, want 1", v)
	}
	// The alarm was fsynced within the default group-commit window, and
	// /metrics says how long that window is (what a power cut can lose).
	if v := testenv.Metric(t, base+"/metrics", "vaka_store_sync_window_seconds"); v != store.DefaultSyncEvery.Seconds() {
		t.Errorf("sync window = %v s, want the default %v", v, store.DefaultSyncEvery)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		v := testenv.Metric(t, base+"/metrics", "vaka_store_fsyncs_total")
		if v >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no journal fsync %v after the alarm", time.Since(start))
		}
	}

	// Staff lifecycle over the API.
	for _, step := range []struct {
		action string
		body   any
		want   alarm.State
	}{
		{"accept", map[string]string{}, alarm.Accepted},
		{"presence", map[string]string{}, alarm.Presence},
		{"resolve", map[string]string{"outcome": "real_need", "note": "hjälp till toaletten"}, alarm.Resolved},
	} {
		var got alarm.Alarm
		code := testenv.DoJSON(t, http.MethodPost, base+"/api/v1/alarms/"+a.ID+"/"+step.action, staffUser, staffPass, step.body, &got)
		if code != 200 || got.State != step.want {
			t.Fatalf("%s: %d %+v", step.action, code, got)
		}
		st.Next(t, time.Second, func(x *alarm.Alarm) bool { return x.ID == a.ID && x.State == step.want })
	}
}

// The docs' examples, sent by a third-party client (mosquitto_pub) exactly
// as docs/mqtt.md shows them, raise the documented alarms.
func TestIntegrationMosquittoPubDocsExamples(t *testing.T) {
	pub := testenv.LookPath(t, "mosquitto_pub")
	doc, err := os.ReadFile(filepath.Join("..", "docs", "mqtt.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- example:([a-z-]+) topic=(\\S+) -->\\s*```json\\n(.*?)\\n```")
	examples := re.FindAllStringSubmatch(string(doc), -1)
	if len(examples) < 2 {
		t.Fatalf("found %d examples in docs/mqtt.md, want ≥ 2", len(examples))
	}
	s := startHub(t, t.TempDir())
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	host, port, _ := strings.Cut(s.MQTTAddr(), ":")
	want := map[string]alarm.Kind{"call-button": alarm.KindCall, "exit-door": alarm.KindWander}
	for _, ex := range examples {
		name, topic, payload := ex[1], ex[2], ex[3]
		out, err := exec.Command(pub, "-h", host, "-p", port, "-u", "solrosen/avd-a", "-P", gwPass,
			"-q", "1", "-i", "docs-"+name, "-t", topic, "-m", payload).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: mosquitto_pub: %v: %s", name, err, out)
		}
		k, ok := want[name]
		if !ok {
			t.Fatalf("example %q has no expected alarm in this test", name)
		}
		a := st.Next(t, 2*time.Second, func(a *alarm.Alarm) bool { return a.Kind == k })
		if !strings.HasSuffix(a.EventID, "/avd-a-00000"+map[string]string{"call-button": "1", "exit-door": "2"}[name]) {
			t.Errorf("%s: event id %q", name, a.EventID)
		}
	}
}

// A wrong password is refused and counted; a gateway publishing under
// another site's topic is refused and nothing reaches the rules.
func TestIntegrationAuthAndTopicRights(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s, logs := startHubLogs(t, t.TempDir())
	base := "http://" + s.HTTPAddr()
	if _, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", "wrong", "bad-1"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := connect(t, s.MQTTAddr(), "", "", "anon-1"); err == nil {
		t.Fatal("anonymous client accepted outside demo mode")
	}
	if v := testenv.Metric(t, base+"/metrics", `vaka_mqtt_refused_total{reason="auth"}`); v != 2 {
		t.Errorf("auth refusals = %v, want 2", v)
	}

	// hem-1 (site hem-norr) tries to raise an alarm as solrosen/avd-a.
	c, err := connect(t, s.MQTTAddr(), "hem-norr/hem-1", otherPass, "hem-norr-hem-1")
	if err != nil {
		t.Fatal(err)
	}
	err = publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("x-1"))
	// MQTT 3.1.1 cannot refuse one message: the broker disconnects the
	// client, so the publish never completes.
	if err == nil && c.IsConnected() {
		t.Fatal("publish to a foreign topic was accepted")
	}
	if v := testenv.Metric(t, base+"/metrics", `vaka_mqtt_refused_total{reason="acl_publish"}`); v != 1 {
		t.Errorf("acl refusals = %v, want 1", v)
	}
	if v := testenv.Metric(t, base+"/metrics", `vaka_messages_received_total{leaf="event"}`); v != 0 {
		t.Errorf("the refused event reached the rules: received = %v", v)
	}
	var list struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, base+"/api/v1/alarms", staffUser, staffPass, &list)
	if len(list.Alarms) != 0 {
		t.Fatalf("foreign publish raised %d alarms", len(list.Alarms))
	}
	// mochi logs the refused packet; the payload (personal data) and the
	// passwords must not reach the log.
	for _, leak := range []string{"Payload:", "knapp-12", otherPass, "wrong"} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("log contains %q", leak)
		}
	}
	// Subscribing outside its own subtree is refused too.
	c2, err := connect(t, s.MQTTAddr(), "hem-norr/hem-1", otherPass, "hem-norr-hem-1-sub")
	if err != nil {
		t.Fatal(err)
	}
	tok := c2.Subscribe("vaka/v1/solrosen/#", 1, nil)
	tok.WaitTimeout(3 * time.Second)
	if st, ok := tok.(*paho.SubscribeToken); ok {
		if r := st.Result()["vaka/v1/solrosen/#"]; r != 0x80 {
			t.Errorf("foreign subscribe granted qos %d, want failure 0x80", r)
		}
	}
	// No anonymous /api access either.
	resp, err := http.Get(base + "/api/v1/alarms")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET /api/v1/alarms = %d, want 401", resp.StatusCode)
	}
}

// Malformed payloads are counted, answered on the reply topic, and never
// cost the alarm sent right after them on the same connection.
func TestIntegrationMalformedPayloadAnsweredAndCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s := startHub(t, t.TempDir())
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "solrosen-avd-a")
	if err != nil {
		t.Fatal(err)
	}
	replies := make(chan event.Reply, 10)
	tok := c.Subscribe(event.ReplyTopic("solrosen", "avd-a"), 1, func(_ paho.Client, m paho.Message) {
		var r event.Reply
		if json.Unmarshal(m.Payload(), &r) == nil {
			replies <- r
		}
	})
	if !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe reply topic: %v", tok.Error())
	}
	topic := event.EventTopic("solrosen", "avd-a")
	secret := "Karin Andersson 19340212-1234"
	for _, p := range [][]byte{
		[]byte("not json " + secret),
		[]byte(`{"v":1,"id":"m-2","device":"knapp-12","ts":"2026-11-23T03:00:00Z","note":"` + secret + `"}`),
		[]byte(`{"v":1,"id":"m-3","device":"knapp-12","dty":"0003","ts":"2026-11-23T03:00:00Z","state":"` + secret + `"}`),
		bytes.Repeat([]byte("x"), event.MaxPayload+1),
	} {
		if err := publish(t, c, topic, p); err != nil {
			t.Fatalf("malformed publish not acknowledged: %v", err)
		}
	}
	codes := map[event.ReplyCode]int{}
	for range 4 {
		select {
		case r := <-replies:
			codes[r.Code]++
			if strings.Contains(r.Reason, "Karin") {
				t.Errorf("reply leaks payload content: %q", r.Reason)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("only %v replies arrived", codes)
		}
	}
	if codes[event.ReplyInvalidFormat] != 1 || codes[event.ReplyWrongData] != 2 || codes[event.ReplyTooLong] != 1 {
		t.Errorf("reply codes = %v", codes)
	}
	if err := publish(t, c, topic, callEvent("ok-1")); err != nil {
		t.Fatal(err)
	}
	st.Next(t, time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindCall })
	for sample, want := range map[string]float64{
		`vaka_events_rejected_total{reason="invalid_format"}`: 1,
		`vaka_events_rejected_total{reason="wrong_data"}`:     2,
		`vaka_events_rejected_total{reason="too_long"}`:       1,
	} {
		if v := testenv.Metric(t, base+"/metrics", sample); v != want {
			t.Errorf("%s = %v, want %v", sample, v, want)
		}
	}
}

// A gateway whose link dies (its Last Will) raises a technical alarm; when
// it comes back the alarm records the restoral.
func TestIntegrationLastWillRaisesTechnicalAlarm(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s := startHub(t, t.TempDir())
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	o := paho.NewClientOptions().AddBroker("tcp://"+s.MQTTAddr()).SetClientID("solrosen-avd-a").
		SetUsername("solrosen/avd-a").SetPassword(gwPass).SetAutoReconnect(false).
		SetWill(event.StatusTopic("solrosen", "avd-a"), `{"state":"offline"}`, 1, true).
		SetKeepAlive(2 * time.Second)
	c := paho.NewClient(o)
	t.Cleanup(func() { c.Disconnect(100) })
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	publish(t, c, event.StatusTopic("solrosen", "avd-a"), []byte(`{"state":"online"}`))
	// Kill the TCP connection without DISCONNECT: the broker sends the Will.
	if !s.Broker.CloseConnection("solrosen-avd-a") {
		t.Fatal("client not connected at the broker")
	}
	// Technical alarms reach the screen as their group (zigbee_test.go).
	tech := func(a *alarm.Alarm) bool { return a.Kind == alarm.KindTechnical && a.Group() == nil }
	a := memberOr(s, st.Next(t, 3*time.Second, func(a *alarm.Alarm) bool { return memberOr(s, a, tech) != nil }), tech)
	if a.Status != event.Offline || a.Gateway != "avd-a" {
		t.Fatalf("technical alarm = %+v", a)
	}
	// Its group lists it, on request.
	var page struct {
		Count   int            `json:"count"`
		Members []*alarm.Alarm `json:"members"`
	}
	if code := testenv.GetJSON(t, base+"/api/v1/alarms/"+a.GroupID()+"/members", staffUser, staffPass, &page); code != 200 ||
		page.Count != 1 || len(page.Members) != 1 || page.Members[0].ID != a.ID {
		t.Errorf("members of %s: %d %+v", a.GroupID(), code, page)
	}
	c2, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "solrosen-avd-a-2")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, c2, event.StatusTopic("solrosen", "avd-a"), []byte(`{"state":"online"}`))
	back := func(x *alarm.Alarm) bool { return x.ID == a.ID && x.RestoredAt() != nil }
	st.Next(t, 2*time.Second, func(x *alarm.Alarm) bool { return memberOr(s, x, back) != nil })
}
