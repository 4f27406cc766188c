package service_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

const (
	otUser    = "ot-91cc"
	otPass    = "ot-secret-C3"
	osmandID  = "k3Xq9vT2mW8pL4rZ7nB1"
	techUser  = "tekn1"
	techPass  = "tekn1-secret"
	trkGWPass = "gw-secret-T4"
)

// trackerHubYAML: a home with a 100 m safe area, a resident who consented
// to geofence_exit with a 1 s hold (production is minutes), an OwnTracks
// phone and an OsmAnd watch.
func trackerHubYAML(t *testing.T, dataDir string) []byte {
	return []byte(fmt.Sprintf(`data_dir: %s
timezone: Europe/Stockholm
mqtt:
  tcp: 127.0.0.1:0
http:
  address: 127.0.0.1:0
users:
  - {username: %s, name: Natt Ett, role: staff, password_hash: %q}
  - {username: %s, name: Tekniker Ett, role: technician, password_hash: %q}
sites:
  - id: hem-norr
    night: {start: "22:00", end: "06:30"}
    geofences:
      - {id: hemma, circle: {lat: 58.35, lon: 11.93, radius: 100}}
    residents:
      - id: r-91cc
        geofences: [hemma]
        consent: {rules: [geofence_exit], recorded_by: ssk-1, recorded_at: "2026-01-10"}
        plan: {rules: {geofence_exit: {hold: 1s}}}
    owntracks_users:
      - {username: %s, password_hash: %q}
    gateways:
      - id: hem-1
        password_hash: %q
        devices:
          - {id: knapp-1, type: personal_trigger, resident: r-91cc}
          - {id: dorr-1, type: door_sensor}
          - {id: tel-1, type: tracking_device, resident: r-91cc, owntracks: %s/tel}
          - {id: klocka-1, type: tracking_device, resident: r-91cc, osmand_id: %s}
`, dataDir, staffUser, testenv.Hash(t, staffPass), techUser, testenv.Hash(t, techPass),
		otUser, testenv.Hash(t, otPass), testenv.Hash(t, trkGWPass), otUser, osmandID))
}

func startTrackerHub(t *testing.T) (*service.Hub, *logBuf) {
	t.Helper()
	var cfg hub.Config
	if err := config.Decode("hub.yaml", trackerHubYAML(t, t.TempDir()), &cfg); err != nil {
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

func mosquittoPub(t *testing.T, s *service.Hub, user, pass, topic, payload string, qos int) error {
	t.Helper()
	host, port, _ := strings.Cut(s.MQTTAddr(), ":")
	out, err := exec.Command(testenv.LookPath(t, "mosquitto_pub"), "-h", host, "-p", port, "-u", user, "-P", pass,
		"-q", fmt.Sprint(qos), "-i", "pub-"+fmt.Sprint(time.Now().UnixNano()), "-t", topic, "-m", payload).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mosquitto_pub: %v: %s", err, out)
	}
	return nil
}

func otLocation(lat, lon, acc float64, tst time.Time) string {
	return fmt.Sprintf(`{"_type":"location","lat":%g,"lon":%g,"acc":%g,"batt":64,"tid":"an","tst":%d,"conn":"m"}`, lat, lon, acc, tst.Unix())
}

// An OwnTracks phone publishing with its own MQTT login: a fix inside the
// safe area, then one 1 km outside, raises geofence_exit after the hold,
// with the fix; the login may not write anyone else's topics.
func TestIntegrationOwnTracksGeofence(t *testing.T) {
	s, _ := startTrackerHub(t)
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	<-st.Ready
	topic := "owntracks/" + otUser + "/tel"
	now := time.Now()
	if err := mosquittoPub(t, s, otUser, otPass, topic, otLocation(58.35, 11.93, 10, now.Add(-time.Minute)), 1); err != nil {
		t.Fatal(err)
	}
	if err := mosquittoPub(t, s, otUser, otPass, topic, otLocation(58.36, 11.93, 12, now), 1); err != nil {
		t.Fatal(err)
	}
	a := st.Next(t, 6*time.Second, func(a *alarm.Alarm) bool { return a.Rule == "geofence_exit" })
	if a.Device != "tel-1" || a.Resident != "r-91cc" || a.Kind != alarm.KindWander {
		t.Errorf("alarm %+v", a)
	}
	if a.Position() == nil || a.Position().Lat != 58.36 || a.Position().Accuracy != 12 {
		t.Errorf("alarm position %+v, want the outside fix", a.Position())
	}
	if v := testenv.Metric(t, base+"/metrics", `vaka_tracker_reports_total{result="ok",source="owntracks"}`); v != 2 {
		t.Errorf("owntracks ok = %v, want 2", v)
	}

	// Bad input: counted, the hub carries on.
	if err := mosquittoPub(t, s, otUser, otPass, topic, `{"_type":"location","lat":"x"}`, 1); err != nil {
		t.Fatal(err)
	}
	// Wrong password and another user's topic are refused.
	if err := mosquittoPub(t, s, otUser, "wrong", topic, otLocation(58.35, 11.93, 10, now), 0); err == nil {
		t.Error("wrong OwnTracks password accepted")
	}
	_ = mosquittoPub(t, s, otUser, otPass, "owntracks/someone/tel", otLocation(58.35, 11.93, 10, now), 0)
	_ = mosquittoPub(t, s, otUser, otPass, "vaka/v1/hem-norr/hem-1/event", `{}`, 0)
	deadline := time.Now().Add(3 * time.Second)
	for testenv.Metric(t, base+"/metrics", `vaka_mqtt_refused_total{reason="acl_publish"}`) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if v := testenv.Metric(t, base+"/metrics", `vaka_mqtt_refused_total{reason="acl_publish"}`); v != 2 {
		t.Errorf("acl_publish refusals = %v, want 2", v)
	}
	if v := testenv.Metric(t, base+"/metrics", `vaka_mqtt_refused_total{reason="auth"}`); v != 1 {
		t.Errorf("auth refusals = %v, want 1", v)
	}
	if v := testenv.Metric(t, base+"/metrics", `vaka_tracker_reports_total{result="malformed",source="owntracks"}`); v != 1 {
		t.Errorf("owntracks malformed = %v, want 1", v)
	}
}

func osmand(t *testing.T, base, method string, q url.Values) int {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = http.PostForm(base+"/osmand", q)
	} else {
		resp, err = http.Get(base + "/osmand?" + q.Encode())
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A watch on the OsmAnd protocol: SOS raises a call alarm with its fix, a
// fix outside the safe area raises geofence_exit after the hold, an unknown
// id is 404 and a malformed report 400, both counted; the id (the watch's
// secret) never reaches the log; a report stamped two days ago is flagged.
func TestIntegrationOsmAndTracker(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s, logs := startTrackerHub(t)
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	<-st.Ready
	now := time.Now()
	fix := func(lat float64, at time.Time, extra ...string) url.Values {
		q := url.Values{"id": {osmandID}, "lat": {fmt.Sprint(lat)}, "lon": {"11.93"}, "accuracy": {"8"},
			"timestamp": {fmt.Sprint(at.Unix())}, "batt": {"81.5"}, "speed": {"0.4"}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Set(extra[i], extra[i+1])
		}
		return q
	}
	if c := osmand(t, base, http.MethodGet, fix(58.35, now.Add(-2*time.Second))); c != 200 {
		t.Fatalf("fix: %d", c)
	}
	if c := osmand(t, base, http.MethodPost, fix(58.3501, now.Add(-time.Second), "alarm", "sos")); c != 200 {
		t.Fatalf("sos: %d", c)
	}
	a := st.Next(t, 3*time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindCall })
	if a.Device != "klocka-1" || a.Rule != "call_button" || a.Status != "0010" || a.Position() == nil || a.Position().Accuracy != 8 {
		t.Errorf("sos alarm %+v", a)
	}
	if c := osmand(t, base, http.MethodGet, fix(58.36, now)); c != 200 {
		t.Fatalf("outside fix: %d", c)
	}
	g := st.Next(t, 6*time.Second, func(a *alarm.Alarm) bool { return a.Rule == "geofence_exit" })
	if g.Device != "klocka-1" || g.Position() == nil || g.Position().Lat != 58.36 {
		t.Errorf("geofence alarm %+v", g)
	}

	// A fall reported with a timestamp two days old: raised at once, flagged.
	if c := osmand(t, base, http.MethodGet, fix(58.36, now.Add(-48*time.Hour), "alarm", "fallDown")); c != 200 {
		t.Fatalf("fall: %d", c)
	}
	f := st.Next(t, 3*time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindFall })
	if !strings.Contains(f.Note, "device clock off by") || !strings.Contains(f.Note, "klocka avviker") {
		t.Errorf("fall alarm note %q does not flag the clock", f.Note)
	}
	if v := testenv.Metric(t, base+"/metrics", `vaka_events_clock_skew_total`); v != 1 {
		t.Errorf("clock skew = %v, want 1", v)
	}

	// Unknown id, malformed report, wrong method.
	if c := osmand(t, base, http.MethodGet, url.Values{"id": {"no-such-watch-0000"}, "lat": {"1"}, "lon": {"2"}}); c != 404 {
		t.Errorf("unknown id: %d", c)
	}
	if c := osmand(t, base, http.MethodGet, url.Values{"id": {osmandID}, "lat": {"north"}, "lon": {"2"}}); c != 400 {
		t.Errorf("malformed: %d", c)
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"/osmand?id="+osmandID, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %v %v", resp, err)
	}
	for sample, want := range map[string]float64{
		`vaka_tracker_reports_total{result="ok",source="osmand"}`:        4,
		`vaka_tracker_reports_total{result="unknown",source="osmand"}`:   1,
		`vaka_tracker_reports_total{result="malformed",source="osmand"}`: 1,
	} {
		if v := testenv.Metric(t, base+"/metrics", sample); v != want {
			t.Errorf("%s = %v, want %v", sample, v, want)
		}
	}
	if strings.Contains(logs.String(), osmandID) {
		t.Error("the OsmAnd id, the watch's secret, reached the log")
	}
}

func getJSON(t *testing.T, url, user, pass string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// The device-health API lists never-heard devices before low battery
// before the rest, with the gateway's own health report; technicians may
// read it, staff may not; the page shell loads without login and without
// inline script or style.
func TestIntegrationDeviceHealth(t *testing.T) {
	s, _ := startTrackerHub(t)
	base := "http://" + s.HTTPAddr()
	now := time.Now()
	q := url.Values{"id": {osmandID}, "lat": {"58.35"}, "lon": {"11.93"}, "accuracy": {"8"}, "batt": {"5"}, "timestamp": {fmt.Sprint(now.Unix())}}
	if c := osmand(t, base, http.MethodGet, q); c != 200 {
		t.Fatalf("osmand: %d", c)
	}
	if err := mosquittoPub(t, s, otUser, otPass, "owntracks/"+otUser+"/tel", otLocation(58.35, 11.93, 10, now), 1); err != nil {
		t.Fatal(err)
	}
	beat := `{"ts":"` + now.UTC().Format(time.RFC3339) + `","seq":3,"spool":17,"dropped":2,"drivers":[{"name":"gpio","state":"running"},{"name":"nmea","state":"failed","err":"no such device"}]}`
	if err := mosquittoPub(t, s, "hem-norr/hem-1", trkGWPass, "vaka/v1/hem-norr/hem-1/heartbeat", beat, 1); err != nil {
		t.Fatal(err)
	}
	if c := getJSON(t, base+"/api/v1/devices", staffUser, staffPass, nil); c != http.StatusForbidden {
		t.Errorf("staff: %d, want 403", c)
	}
	if c := getJSON(t, base+"/api/v1/devices", "", "", nil); c != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", c)
	}
	var h hub.Health
	if c := getJSON(t, base+"/api/v1/devices", techUser, techPass, &h); c != 200 {
		t.Fatalf("technician: %d", c)
	}
	var order []string
	for _, d := range h.Devices {
		order = append(order, d.Device+":"+d.Status)
	}
	want := "dorr-1:never_heard knapp-1:never_heard klocka-1:low_battery tel-1:ok"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("order %q, want %q", got, want)
	}
	for _, d := range h.Devices {
		if d.Device == "tel-1" && (d.Battery != 64 || d.LastSeen.IsZero()) {
			t.Errorf("tel-1 %+v", d)
		}
	}
	if len(h.Gateways) != 1 || h.Gateways[0].Report == nil || h.Gateways[0].Report.Spool != 17 ||
		h.Gateways[0].Report.Dropped != 2 || len(h.Gateways[0].Report.Drivers) != 2 || h.Gateways[0].Report.Drivers[1].State != "failed" {
		t.Errorf("gateways %+v", h.Gateways)
	}

	// The page: no login needed for the shell, CSP on, no inline code.
	for _, p := range []string{"/devices", "/devices/static/devices.js", "/devices/static/devices.css"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: %d CSP %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
		if p == "/devices" {
			html := string(body)
			if strings.Count(html, "<script") != strings.Count(html, "<script src=") || strings.Contains(html, "<style") || strings.Contains(html, " style=") || strings.Contains(html, "onclick") {
				t.Error("the page has inline script or style")
			}
		}
	}
}
