package service_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
	"github.com/vaka-care/vaka/webpush"
)

const adminUser, adminPass = "admin1", "admin1-secret"

// staffHubYAML: two staff, a lead and an admin; optional routing section.
func staffHubYAML(t testing.TB, dataDir, routing string) []byte {
	return []byte(fmt.Sprintf(`data_dir: %s
mqtt:
  tcp: 127.0.0.1:0
http:
  address: 127.0.0.1:0
users:
  - {username: natt1, name: Natt Ett, role: staff, password_hash: %q}
  - {username: natt2, name: Natt Två, role: staff, password_hash: %q}
  - {username: %s, name: Admin, role: admin, password_hash: %q}
sites:
  - id: solrosen
    night: {start: "00:00", end: "00:00"}
    gateways:
      - id: avd-a
        password_hash: %q
        devices:
          - {id: knapp-12, type: personal_trigger, resident: r-7f3a, unit: avd-a, room: "12"}
          - {id: dorr-entre, type: door_sensor, unit: avd-a, room: entre, exit: true}
%s`, dataDir, testenv.Hash(t, "natt1-secret"), testenv.Hash(t, "natt2-secret"), adminUser, testenv.Hash(t, adminPass),
		testenv.Hash(t, gwPass), routing))
}

func startStaffHub(t testing.TB, dataDir, routing string, opts ...service.Option) *service.Hub {
	t.Helper()
	var cfg hub.Config
	if err := config.Decode("hub.yaml", staffHubYAML(t, dataDir, routing), &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// phone is a local push service with one subscribed phone behind it: it
// checks VAPID, decrypts each push as the phone would and, like the
// service worker, posts the delivery receipt to the hub.
type phone struct {
	srv      *httptest.Server
	key      *ecdh.PrivateKey
	auth     []byte
	payloads chan webpush.Payload
}

func newPhone(t *testing.T, hubBase, vapidKey string) *phone {
	p := &phone{payloads: make(chan webpush.Payload, 16), auth: make([]byte, 16)}
	p.key, _ = ecdh.P256().GenerateKey(rand.Reader)
	_, _ = rand.Read(p.auth)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, err := webpush.VerifyAuthorization(r.Header.Get("Authorization"), "http://"+r.Host, time.Now())
		if err != nil || k != vapidKey {
			t.Errorf("push: VAPID: %v", err)
			http.Error(w, "vapid", http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		pt, err := webpush.Decrypt(p.key, p.auth, body)
		if err != nil {
			t.Errorf("push: decrypt: %v", err)
			http.Error(w, "decrypt", 400)
			return
		}
		var pl webpush.Payload
		if err := json.Unmarshal(pt, &pl); err != nil {
			t.Errorf("push: payload: %v", err)
		}
		w.WriteHeader(http.StatusCreated)
		p.payloads <- pl
		// The service worker's receipt: no session, only the token.
		rb, _ := json.Marshal(map[string]any{"receipt": pl.Receipt, "step": pl.Step, "tier": pl.Tier})
		go func() {
			resp, err := http.Post(hubBase+"/api/v1/alarms/"+pl.Alarm+"/delivered", "application/json", bytes.NewReader(rb))
			if err == nil {
				resp.Body.Close()
			}
		}()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *phone) subscription() map[string]any {
	return map[string]any{"endpoint": p.srv.URL + "/push/" + fmt.Sprint(time.Now().UnixNano()), "expirationTime": nil,
		"keys": map[string]string{"p256dh": base64.RawURLEncoding.EncodeToString(p.key.PublicKey().Bytes()),
			"auth": base64.RawURLEncoding.EncodeToString(p.auth)}}
}

// An MQTT call-button press reaches natt1's phone as an encrypted Web Push
// (checked by decrypting at a loopback push endpoint); the phone's receipt
// is recorded on the alarm as proof of delivery, visible on the stream.
func TestIntegrationPushDeliveryReceipt(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s := startStaffHub(t, t.TempDir(), "", service.WithLoopbackPush())
	base := "http://" + s.HTTPAddr()
	var key struct{ Key string }
	if code := testenv.GetJSON(t, base+"/api/v1/push/key", "natt1", "natt1-secret", &key); code != 200 || key.Key == "" {
		t.Fatalf("push key: %d", code)
	}
	ph := newPhone(t, base, key.Key)
	var sub struct{ ID string }
	if code := testenv.DoJSON(t, http.MethodPost, base+"/api/v1/push/subscriptions", "natt1", "natt1-secret", ph.subscription(), &sub); code != 201 {
		t.Fatalf("subscribe: %d", code)
	}
	bad := ph.subscription()
	bad["endpoint"] = "http://example.org/push"
	if code := testenv.DoJSON(t, http.MethodPost, base+"/api/v1/push/subscriptions", "natt1", "natt1-secret", bad, nil); code != 400 {
		t.Fatalf("plain-http non-loopback endpoint: %d, want 400", code)
	}
	st := testenv.OpenStream(t, base, "natt2", "natt2-secret")
	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "push-gw")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("p-1")); err != nil {
		t.Fatal(err)
	}
	var pl webpush.Payload
	select {
	case pl = <-ph.payloads:
	case <-time.After(3 * time.Second):
		t.Fatal("no push within 3 s")
	}
	t.Logf("MQTT publish → decrypted push at the phone: %v", time.Since(start))
	if pl.Step != alarm.ActNotify || pl.Sub != sub.ID || pl.Room != "12" || pl.Kind != alarm.KindCall {
		t.Errorf("payload %+v", pl)
	}
	a := st.Next(t, 3*time.Second, func(a *alarm.Alarm) bool { return len(a.Deliveries) > 0 })
	t.Logf("MQTT publish → receipt on the alarm: %v", time.Since(start))
	if d := a.Deliveries[0]; d.User != "natt1" || d.Phone != sub.ID || d.Tier != 0 {
		t.Errorf("delivery %+v", d)
	}
	var steps []string
	for _, h := range a.History() {
		steps = append(steps, string(h.Action))
	}
	if got := strings.Join(steps, ","); got != "raise,notify,delivered" {
		t.Errorf("history %s", got)
	}
	// A forged receipt is refused.
	resp, err := http.Post(base+"/api/v1/alarms/"+a.ID+"/delivered", "application/json", strings.NewReader(`{"receipt":"forged","step":"notify"}`))
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("forged receipt: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

// A staff member cannot reach an admin endpoint; an admin can, and sees
// who an alarm would reach.
func TestIntegrationAdminOnlyRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s := startStaffHub(t, t.TempDir(), "")
	base := "http://" + s.HTTPAddr()
	if code := testenv.GetJSON(t, base+"/api/v1/admin/routing?site=solrosen&kind=call", "natt1", "natt1-secret", nil); code != http.StatusForbidden {
		t.Fatalf("staff: %d, want 403", code)
	}
	var out struct {
		Plans []struct {
			Schedule []struct{ Receiver string }
		}
	}
	if code := testenv.GetJSON(t, base+"/api/v1/admin/routing?site=solrosen&kind=call", adminUser, adminPass, &out); code != 200 {
		t.Fatalf("admin: %d", code)
	}
	if len(out.Plans) != 1 || out.Plans[0].Schedule[0].Receiver != "alla" {
		t.Errorf("plans %+v", out)
	}
}

// Five wrong passwords lock the account: the sixth try is 429 even with
// the right password.
func TestIntegrationLoginLockout(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s := startStaffHub(t, t.TempDir(), "")
	base := "http://" + s.HTTPAddr()
	login := func(pw string) int {
		resp, err := http.Post(base+"/api/v1/login", "application/json", strings.NewReader(fmt.Sprintf(`{"username":"natt2","password":%q}`, pw)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 5 {
		if code := login("wrong"); code != 401 {
			t.Fatalf("try %d: %d, want 401", i+1, code)
		}
	}
	if code := login("natt2-secret"); code != http.StatusTooManyRequests {
		t.Fatalf("after 5 failures: %d, want 429", code)
	}
	if code := login("natt1-secret"); code != http.StatusTooManyRequests {
		t.Fatalf("still locked: %d", code)
	}
}

// Escalation steps survive a restart: they are in the journal.
func TestIntegrationEscalationPersisted(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	dir := t.TempDir()
	routing := `routing:
  receivers:
    - {name: natt, users: [natt1]}
    - {name: natt-b, users: [natt2]}
  route: {receiver: natt, escalate: [natt-b], delivery_timeout: 5s, accept_timeout: 0s, remind_every: 0s}
`
	var cfg hub.Config
	if err := config.Decode("hub.yaml", staffHubYAML(t, dir, routing), &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, "natt2", "natt2-secret")
	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "esc-gw")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("x-1")); err != nil {
		t.Fatal(err)
	}
	// natt1 has no phone subscribed: no receipt, so 5 s later natt2 is alerted.
	a := st.Next(t, 8*time.Second, func(a *alarm.Alarm) bool { return a.Tier() == 1 })
	st.Close()
	c.Disconnect(50)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startStaffHub(t, dir, routing)
	var got alarm.Alarm
	testenv.GetJSON(t, "http://"+s2.HTTPAddr()+"/api/v1/alarms/"+a.ID, "natt1", "natt1-secret", &got)
	var steps []string
	for _, h := range got.History() {
		steps = append(steps, fmt.Sprintf("%s:%d:%s", h.Action, h.Tier, strings.Join(h.To, "+")))
	}
	if j := strings.Join(steps, " "); j != "raise:0: notify:0:natt1 escalate:1:natt2" || got.Tier() != 1 {
		t.Errorf("after restart: tier %d, %s", got.Tier(), j)
	}
}
