//go:build !nocluster

package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/internal/testenv"
)

// staffLogin logs natt1 in on base and returns the session cookie and
// its CSRF token.
func staffLogin(t *testing.T, base string) (*http.Cookie, string) {
	t.Helper()
	res, err := http.Post(base+"/api/v1/login", "application/json", strings.NewReader(`{"username":"natt1","password":"natt1-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var me struct{ CSRF string }
	if err := json.NewDecoder(res.Body).Decode(&me); err != nil || res.StatusCode != 200 {
		t.Fatalf("login on %s: %d %v", base, res.StatusCode, err)
	}
	for _, c := range res.Cookies() {
		if c.Name == httpapi.CookieName {
			return c, me.CSRF
		}
	}
	t.Fatal("no session cookie")
	return nil, ""
}

func staffDo(t *testing.T, method, url string, c *http.Cookie, csrf string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.AddCookie(c)
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// pushKey is the VAPID public key base serves to c's session.
func pushKey(t *testing.T, base string, c *http.Cookie) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/push/key", nil)
	req.AddCookie(c)
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var k struct{ Key string }
	if err := json.NewDecoder(res.Body).Decode(&k); err != nil || res.StatusCode != 200 || k.Key == "" {
		t.Fatalf("push key from %s: %d %v", base, res.StatusCode, err)
	}
	return k.Key
}

// subscribePush stores a Web Push subscription for c's session on base
// and returns its id.
func subscribePush(t *testing.T, base string, c *http.Cookie, csrf string) string {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	body, _ := json.Marshal(map[string]any{"endpoint": "https://push.example.net/send/phone-1",
		"keys": map[string]string{"p256dh": base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
			"auth": base64.RawURLEncoding.EncodeToString(auth)}})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/push/subscriptions", bytes.NewReader(body))
	req.AddCookie(c)
	req.Header.Set("X-CSRF-Token", csrf)
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || res.StatusCode != http.StatusCreated || r.ID == "" {
		t.Fatalf("push subscription on %s: %d %v", base, res.StatusCode, err)
	}
	return r.ID
}

func hubStatusOf(t *testing.T, base string) (int, string, httpapi.HubStatus) {
	t.Helper()
	res, err := (&http.Client{Timeout: 2 * time.Second}).Get(base + "/api/v1/hub")
	if err != nil {
		return 0, "", httpapi.HubStatus{}
	}
	defer res.Body.Close()
	var st httpapi.HubStatus
	_ = json.NewDecoder(res.Body).Decode(&st)
	return res.StatusCode, res.Header.Get("Retry-After"), st
}

// TestIntegrationClusterStaffFollows: two vaka hub processes on a 3-node
// NATS cluster. The standby answers the web 503 with Retry-After, naming
// the active hub and its address; the active hub says which hub it is.
// A nurse logged in on the active hub is still logged in on the other
// one after the active hub is SIGKILLed (same cookie), while a session
// logged out before the kill stays logged out. Both hubs serve the same
// VAPID public key, and the push subscription stored on the first hub is
// on the second: a locked phone is reached after the failover too.
func TestIntegrationClusterStaffFollows(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: hub processes and a NATS cluster")
	}
	bin := buildVaka(t)
	_, urls := clusterNATS(t)
	var hubs []*clusterHub
	for _, name := range []string{"hub-a", "hub-b"} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o750)
		hubs = append(hubs, &clusterHub{name: name, http: testenv.FreeAddr(t), mqtt: testenv.FreeAddr(t)})
		hubs[len(hubs)-1].cfg = writeManyButtonsConfig(t, dir, filepath.Join(dir, "data"), hubs[len(hubs)-1].http, hubs[len(hubs)-1].mqtt, 2)
	}
	for _, h := range hubs {
		f, err := os.OpenFile(h.cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "cluster:\n  node: %s\n  lease_ttl: 2s\n  nats:\n    urls: [%s, %s, %s]\n  web_urls:\n", h.name, urls[0], urls[1], urls[2])
		for _, o := range hubs {
			fmt.Fprintf(f, "    - {node: %s, url: \"http://%s\"}\n", o.name, o.http)
		}
		f.Close()
		h.start(t, bin)
	}
	active := activeHub(t, hubs, 60*time.Second)
	standby := hubs[0]
	if standby == active {
		standby = hubs[1]
	}
	code, _, st := hubStatusOf(t, "http://"+active.http)
	if code != 200 || st.Node != active.name || st.Role != httpapi.RoleActive || len(st.Hubs) != 2 {
		t.Fatalf("active %s: /api/v1/hub %d %+v", active.name, code, st)
	}
	var retry string
	for range 50 { // the standby reads the lease once a second
		code, retry, st = hubStatusOf(t, "http://"+standby.http)
		if st.Active != "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable || retry == "" || st.Role != httpapi.RoleStandby ||
		st.Active != active.name || st.ActiveURL != "http://"+active.http {
		t.Fatalf("standby %s: %d Retry-After %q %+v", standby.name, code, retry, st)
	}

	keep, keepCSRF := staffLogin(t, "http://"+active.http)
	gone, goneCSRF := staffLogin(t, "http://"+active.http)
	if c := staffDo(t, http.MethodPost, "http://"+active.http+"/api/v1/logout", gone, goneCSRF); c != http.StatusNoContent && c != 200 {
		t.Fatalf("logout: %d", c)
	}
	if c := staffDo(t, http.MethodGet, "http://"+active.http+"/api/v1/me", keep, ""); c != 200 {
		t.Fatalf("/me on %s before the kill: %d", active.name, c)
	}
	key := pushKey(t, "http://"+active.http, keep)
	subID := subscribePush(t, "http://"+active.http, keep, keepCSRF)
	at := time.Now()
	active.cmd.Process.Signal(syscall.SIGKILL)
	active.cmd.Wait()
	next := activeHub(t, hubs, 60*time.Second)
	t.Logf("%s SIGKILLed; %s active after %s", active.name, next.name, time.Since(at).Round(time.Millisecond))
	if c := staffDo(t, http.MethodGet, "http://"+next.http+"/api/v1/me", keep, ""); c != 200 {
		t.Log(active.log.String())
		t.Log(next.log.String())
		t.Fatalf("the nurse's session on %s after the failover: %d, want 200 (still logged in)", next.name, c)
	}
	if c := staffDo(t, http.MethodGet, "http://"+next.http+"/api/v1/me", gone, ""); c != http.StatusUnauthorized {
		t.Errorf("a logged-out session on %s after the failover: %d, want 401", next.name, c)
	}
	if k := pushKey(t, "http://"+next.http, keep); k != key {
		t.Errorf("VAPID key on %s %q, on %s %q: not shared", active.name, key, next.name, k)
	}
	// The new active hub took the group's subscriptions over (its store
	// file is rewritten at takeover).
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(next.cfg), "data", "push-subscriptions.json")); err != nil || !bytes.Contains(b, []byte(subID)) {
		t.Errorf("%s after the failover does not hold the push subscription %s made on %s: %v", next.name, subID, active.name, err)
	}
	if code, _, st := hubStatusOf(t, "http://"+next.http); code != 200 || st.Node != next.name || st.Role != httpapi.RoleActive {
		t.Errorf("%s after taking over: /api/v1/hub %d %+v", next.name, code, st)
	}
}
