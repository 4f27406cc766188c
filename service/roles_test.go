package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/pilot"
	"github.com/vaka-care/vaka/pilot/web"
	"github.com/vaka-care/vaka/service"
)

// roleUsers are one login per role; the staff login is hubYAML's natt1.
var roleUsers = map[string][2]string{
	hub.RoleStaff:      {staffUser, staffPass},
	hub.RoleLead:       {"ledare1", "ledare1-secret"},
	hub.RoleAdmin:      {"adm1", "adm1-secret"},
	hub.RoleTechnician: {"tekn1", "tekn1-secret"},
}

// startRolesHub is hubYAML with a login per role, a 1 s body bound, and
// the pilot pages mounted as cmd/vaka mounts them.
func startRolesHub(t *testing.T) (*service.Hub, *logBuf) {
	t.Helper()
	y := string(hubYAML(t, filepath.Join(t.TempDir(), "data")))
	var extra strings.Builder
	for _, role := range []string{hub.RoleLead, hub.RoleAdmin, hub.RoleTechnician} {
		u := roleUsers[role]
		fmt.Fprintf(&extra, "  - {username: %s, name: %s, role: %s, password_hash: %q}\n", u[0], role, role, testenv.Hash(t, u[1]))
	}
	y = strings.Replace(y, "users:\n", "users:\n"+extra.String(), 1)
	y = strings.Replace(y, "http:\n  address: 127.0.0.1:0\n", "http:\n  address: 127.0.0.1:0\n  body_timeout: 1s\n  idle_timeout: 30s\n", 1)
	var cfg hub.Config
	if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	buf := &logBuf{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, buf), nil))
	s, err := service.Start(&cfg, log, service.WithRoutes(func(*hub.Hub) []httpapi.Route {
		// An empty but real model: the matrix checks who may reach the pilot
		// API, not what it answers.
		return web.Routes(web.Options{Model: func() *pilot.Model { return &pilot.Model{Config: &pilot.Config{}} }, Logger: log})
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, buf
}

// raise hands the hub a gateway event and waits (bounded) for its alarm.
func raise(t *testing.T, s *service.Hub, payload string, kind alarm.Kind) *alarm.Alarm {
	t.Helper()
	s.Hub.HandleEvent("solrosen", "avd-a", []byte(payload))
	for range 200 {
		for _, a := range s.Hub.Alarms() {
			if a.Kind == kind && a.Open() {
				return a
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no open %s alarm after the event", kind)
	return nil
}

// call sends method path with role's Basic auth (none for "") and body,
// and returns the status and content type. The stream is closed as soon
// as its headers arrive.
func call(t *testing.T, base, method, path, role, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, base+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if u, ok := roleUsers[role]; ok {
		req.SetBasicAuth(u[0], u[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s as %q: %v", method, path, role, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

// Every route in the access policy, for every role and for no login,
// answers as docs/roles.md says: forbidden (403), login required (401),
// or let through to its handler (anything else). The expected table is
// written out here, not derived from httpapi's policy table, and must name
// exactly the policy's routes, so a new route fails this test until
// someone decides who may use it.
func TestIntegrationRoleMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s, logs := startRolesHub(t)
	base := "http://" + s.HTTPAddr()
	care := raise(t, s, string(callEvent("m-1")), alarm.KindCall)
	tech := raise(t, s, fmt.Sprintf(`{"v":1,"id":"m-2","device":"knapp-12","dty":"0003","stc":"0016","ts":%q}`,
		time.Now().UTC().Format(time.RFC3339Nano)), alarm.KindTechnical)

	silence := fmt.Sprintf(`{"site":"solrosen","device":"knapp-12","rule":"battery_low","end":%q,"reason":"byte av batteri"}`,
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	var sil struct{ ID string }
	if code := testenv.DoJSON(t, http.MethodPost, base+"/api/v1/silences", "adm1", "adm1-secret", json.RawMessage(silence), &sil); code != http.StatusCreated {
		t.Fatalf("admin silence: %d", code)
	}

	const (
		S = hub.RoleStaff
		L = hub.RoleLead
		A = hub.RoleAdmin
		T = hub.RoleTechnician
	)
	pub := []string{"public"}
	want := map[string][]string{
		"GET /": pub, "GET /static/*": pub, "GET /sw.js": pub, "GET /healthz": pub, "GET /metrics": pub,
		"GET /api/v1/hub":    pub, // role single here; which hub in a redundant group
		"POST /api/v1/login": pub, "POST /api/v1/alarms/{id}/delivered": pub,
		"GET /osmand": pub, "POST /osmand": pub,
		"GET /devices": pub, "GET /devices/static/devices.js": pub, "GET /devices/static/devices.css": pub,

		"GET /api/v1/me":      {S, L, A, T},
		"POST /api/v1/logout": {S, L, A, T},
		"GET /api/v1/alarms":  {S, L, A, T}, // technicians see the technical ones
		"GET /api/v1/stream":  {S, L, A, T},
		// {id} is a care alarm (a call): not for technicians.
		"GET /api/v1/alarms/{id}":            {S, L, A},
		"POST /api/v1/alarms/{id}/accept":    {S, A},
		"POST /api/v1/alarms/{id}/presence":  {S, A},
		"POST /api/v1/alarms/{id}/resolve":   {S, A},
		"POST /api/v1/alarms/{id}/shown":     {S, A},
		"POST /api/v1/alarms/{id}/take_over": {S, A},
		"POST /api/v1/admin/sessions/revoke": {A},
		"GET /api/v1/alarms/{id}/members":    {S, L, A}, // {id} is a call: not a technician's

		"GET /api/v1/push/key":                                {S, L, A, T},
		"POST /api/v1/push/subscriptions":                     {S, L, A, T},
		"GET /api/v1/sites/{site}/residents/{resident}/rules": {S, L, A},
		// {id} is a battery_low silence: technicians may handle it.
		"GET /api/v1/silences":         {S, L, A, T},
		"POST /api/v1/silences":        {S, L, A, T},
		"DELETE /api/v1/silences/{id}": {S, L, A, T},
		"GET /api/v1/devices":          {L, A, T},
		"GET /api/v1/admin/routing":    {A},
		// Digital night supervision: care data; visits by carers.
		"GET /api/v1/tillsyn":         {S, L, A},
		"POST /api/v1/tillsyn/visits": {S, A},

		"GET /pilot": {L, A}, "GET /pilot/trials/{id}/report": {L, A}, "GET /pilot/static/pilot.css": {L, A},
		"GET /api/v1/trials": {L, A}, "GET /api/v1/trials/{id}": {L, A}, "GET /api/v1/trials/{id}/report.csv": {L, A},
		"GET /pilot/trials/{id}/benefits": {L, A}, "GET /api/v1/trials/{id}/benefits.csv": {L, A}, "GET /pilot/compare": {L, A},

		"GET /api/v1/roster": {L, A}, "PUT /api/v1/roster": {L, A},
		"GET /api/v1/sites/{site}/units/{unit}/floor-plan": {S, L, A},
	}
	keys := httpapi.PolicyKeys()
	for _, k := range keys {
		if _, ok := want[k]; !ok {
			t.Errorf("policy route %q has no row in this test", k)
		}
	}
	for k := range want {
		if !slices.Contains(keys, k) {
			t.Errorf("test row %q is not in httpapi's policy table", k)
		}
	}
	bodies := map[string]string{
		"POST /api/v1/login":               `{"username":"natt1","password":"natt1-secret"}`,
		"POST /api/v1/alarms/{id}/resolve": `{"outcome":"false"}`,
		"POST /api/v1/silences":            silence,
		"POST /api/v1/tillsyn/visits":      `{"site":"solrosen","resident":"r-7f3a"}`,
	}
	path := strings.NewReplacer("{site}", "solrosen", "{resident}", "r-7f3a", "{unit}", "avd-a", "/static/*", "/static/app.js")
	for _, k := range keys {
		method, pattern, _ := strings.Cut(k, " ")
		p := path.Replace(pattern)
		switch {
		case strings.HasPrefix(pattern, "/api/v1/alarms/{id}"):
			p = strings.Replace(p, "{id}", care.ID, 1)
		case strings.HasPrefix(pattern, "/api/v1/silences/{id}"):
			p = strings.Replace(p, "{id}", sil.ID, 1)
		default:
			p = strings.Replace(p, "{id}", "ingen", 1)
		}
		for _, role := range []string{S, L, A, T, ""} {
			code, ctype := call(t, base, method, p, role, bodies[k])
			if code == http.StatusMethodNotAllowed || code == http.StatusNotFound && strings.HasPrefix(ctype, "text/plain") {
				t.Errorf("%s %s: %d: the route is in the policy but not mounted", method, p, code)
				continue
			}
			allowed := slices.Contains(want[k], role) || slices.Equal(want[k], pub)
			switch {
			case allowed && (code == http.StatusForbidden || code == http.StatusUnauthorized):
				t.Errorf("%s as %q: %d, want it let through", k, role, code)
			case !allowed && role == "" && code != http.StatusUnauthorized:
				t.Errorf("%s without login: %d, want 401", k, code)
			case !allowed && role != "" && code != http.StatusForbidden:
				t.Errorf("%s as %q: %d, want 403", k, role, code)
			}
		}
	}
	if strings.Contains(logs.String(), "not in the access policy") {
		t.Errorf("a mounted route is missing from httpapi's policy table:\n%s", logs.String())
	}

	// A technician handles the technical alarm from accept to resolve…
	for _, step := range []struct{ action, body string }{{"accept", ""}, {"resolve", `{"outcome":"technical"}`}} {
		if code, _ := call(t, base, http.MethodPost, "/api/v1/alarms/"+tech.ID+"/"+step.action, T, step.body); code != http.StatusOK {
			t.Errorf("technician %s on a technical alarm: %d", step.action, code)
		}
	}
	// …sees only technical alarms…
	var list struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, base+"/api/v1/alarms", "tekn1", "tekn1-secret", &list)
	if len(list.Alarms) == 0 || slices.ContainsFunc(list.Alarms, func(a *alarm.Alarm) bool { return a.Kind != alarm.KindTechnical }) {
		t.Errorf("technician's list: %d alarms, want only technical ones", len(list.Alarms))
	}
	// …and may not silence a care rule.
	care2 := strings.Replace(silence, `"rule":"battery_low"`, `"rule":"bed_exit","resident":"r-7f3a"`, 1)
	care2 = strings.Replace(care2, `"device":"knapp-12",`, "", 1)
	if code, _ := call(t, base, http.MethodPost, "/api/v1/silences", T, care2); code != http.StatusForbidden {
		t.Errorf("technician silencing bed_exit: %d, want 403", code)
	}
	if code, _ := call(t, base, http.MethodPost, "/api/v1/silences", S, care2); code != http.StatusCreated {
		t.Errorf("staff silencing bed_exit: %d, want 201", code)
	}
}

// The roles httpapi enforces are the roles the config accepts.
func TestRoleNamesAgree(t *testing.T) {
	if !slices.Equal(httpapi.Roles(), []string{hub.RoleStaff, hub.RoleLead, hub.RoleAdmin, hub.RoleTechnician}) {
		t.Errorf("httpapi.Roles() %v", httpapi.Roles())
	}
}

// On the real hub, a login body trickled a byte every 300 ms is cut at
// http.body_timeout (1 s here), while a staff stream opened before it
// lives on for several times that.
func TestIntegrationTrickledBodyCutStreamLives(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s, _ := startRolesHub(t)
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	defer st.Close()
	<-st.Ready

	c, err := net.DialTimeout("tcp", s.HTTPAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /api/v1/login HTTP/1.1\r\nHost: vaka\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, _ = io.Copy(io.Discard, c)
	}()
	sent := 0
loop:
	for ; sent < 100; sent++ {
		select {
		case <-done:
			break loop
		case <-time.After(300 * time.Millisecond):
		}
		if _, err := c.Write([]byte{' '}); err != nil {
			break
		}
	}
	if sent >= 30 {
		t.Fatalf("%d bytes trickled over %v without the hub cutting the request", sent, time.Duration(sent)*300*time.Millisecond)
	}
	// The stream, open since before the trickle, still carries alarms
	// after three more body bounds.
	time.Sleep(3 * time.Second)
	s.Hub.HandleEvent("solrosen", "avd-a", callEvent("t-1"))
	st.Next(t, 5*time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindCall })
}
