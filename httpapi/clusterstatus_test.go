package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

var testHubs = []HubURL{{Node: "hub-a", URL: "https://hub-a.example.se"}, {Node: "hub-b", URL: "https://hub-b.example.se"}}

func getHub(t *testing.T, url, origin string) (*http.Response, HubStatus) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st HubStatus
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return res, st
}

// The active hub of a group says which hub it is (no login needed), lets
// the other hubs' origins read that, and lets its page ask them; a
// single hub says "single" and its CSP is unchanged.
func TestHubStatusActiveAndSingle(t *testing.T) {
	auth := NewAuth(nil, time.Hour, nil)
	act := httptest.NewServer(New(Options{Alarms: &queuedAlarms{ch: make(chan *alarm.Alarm)}, Auth: auth,
		Cluster: &ClusterInfo{Node: "hub-b", Hubs: testHubs}}))
	defer act.Close()
	res, st := getHub(t, act.URL+"/api/v1/hub", "https://hub-a.example.se")
	if res.StatusCode != 200 || st.Node != "hub-b" || st.Role != RoleActive || st.Active != "hub-b" ||
		st.ActiveURL != "https://hub-b.example.se" || len(st.Hubs) != 2 {
		t.Fatalf("active: %d %+v", res.StatusCode, st)
	}
	if o := res.Header.Get("Access-Control-Allow-Origin"); o != "https://hub-a.example.se" {
		t.Errorf("CORS for a listed hub: %q", o)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' https://hub-a.example.se https://hub-b.example.se") {
		t.Errorf("CSP lets the app not ask the other hubs: %s", csp)
	}
	res, _ = getHub(t, act.URL+"/api/v1/hub", "https://evil.example.com")
	if o := res.Header.Get("Access-Control-Allow-Origin"); o != "" {
		t.Errorf("CORS for an unlisted origin: %q", o)
	}

	single := httptest.NewServer(New(Options{Alarms: &queuedAlarms{ch: make(chan *alarm.Alarm)}, Auth: auth}))
	defer single.Close()
	res, st = getHub(t, single.URL+"/api/v1/hub", "")
	if res.StatusCode != 200 || st.Role != RoleSingle || st.Node != "" || len(st.Hubs) != 0 {
		t.Fatalf("single: %d %+v", res.StatusCode, st)
	}
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "connect-src") {
		t.Errorf("a single hub's CSP changed: %s", csp)
	}
}

// A standby answers every request 503 with Retry-After: the API and
// /healthz in JSON naming the active hub and its address once known, a
// page in Swedish and English otherwise. It takes no login.
func TestStandbyAnswers503(t *testing.T) {
	var active atomic.Value
	active.Store("")
	sb := httptest.NewServer(StandbyHandler(&ClusterInfo{Node: "hub-b", Hubs: testHubs}, func() string { return active.Load().(string) }))
	defer sb.Close()

	res, st := getHub(t, sb.URL+"/api/v1/hub", "https://hub-a.example.se")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "2" ||
		st.Role != RoleStandby || st.Node != "hub-b" || st.Active != "" || st.ActiveURL != "" {
		t.Fatalf("standby, no active hub known: %d Retry-After %q %+v", res.StatusCode, res.Header.Get("Retry-After"), st)
	}
	if o := res.Header.Get("Access-Control-Allow-Origin"); o != "https://hub-a.example.se" {
		t.Errorf("CORS on the standby: %q", o)
	}
	active.Store("hub-a")
	for _, p := range []string{"/api/v1/hub", "/healthz", "/api/v1/stream"} {
		res, st = getHub(t, sb.URL+p, "")
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "2" ||
			st.Active != "hub-a" || st.ActiveURL != "https://hub-a.example.se" {
			t.Errorf("%s: %d Retry-After %q %+v", p, res.StatusCode, res.Header.Get("Retry-After"), st)
		}
	}
	res, err := http.Post(sb.URL+"/api/v1/login", "application/json", strings.NewReader(`{"username":"a","password":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Set-Cookie") != "" {
		t.Errorf("login on a standby: %d, cookie %q", res.StatusCode, res.Header.Get("Set-Cookie"))
	}
	res, err = http.Get(sb.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(b), "reserv") || !strings.Contains(string(b), "standby") ||
		!strings.Contains(string(b), `href="https://hub-a.example.se/"`) {
		t.Errorf("page: %d %s", res.StatusCode, b)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("standby page without the security headers")
	}
}
