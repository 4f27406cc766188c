package service_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

func do(t *testing.T, method, url, ctype, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// A Traccar device pointed at the hub's root (port-5055 habit) must never
// get the staff app's page with a 200: its SOS is evaluated and raised, and
// an unknown or malformed report is a 4xx the device can see.
func TestIntegrationTrackerAtRootNeverGetsTheApp(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s, _ := startTrackerHub(t)
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	<-st.Ready

	code, ctype, body := do(t, http.MethodGet, base+"/?id="+osmandID+"&alarm=sos", "", "")
	if code != 200 || strings.Contains(ctype, "html") || strings.Contains(body, "<html") {
		t.Fatalf("GET /?id=…&alarm=sos: %d %q %.60q, want the tracker's 200 OK", code, ctype, body)
	}
	a := st.Next(t, 3*time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindCall })
	if a.Device != "klocka-1" || a.Rule != "call_button" {
		t.Errorf("sos alarm %+v", a)
	}

	for _, tc := range []struct {
		name, method, path, ctype, body string
		want                            int
	}{
		{"unknown id sos", "GET", "/?id=no-such-watch-000000&alarm=sos", "", "", 404},
		{"deviceid, no fix", "GET", "/?deviceid=no-such-watch-000000", "", "", 404},
		{"no id", "GET", "/?lat=58.35&lon=11.93&alarm=sos", "", "", 400},
		{"form post unknown", "POST", "/", "application/x-www-form-urlencoded", "id=no-such-watch-000000&alarm=sos", 404},
		{"json body unknown", "POST", "/", "application/json", `{"location":{"timestamp":"2026-12-03T07:00:00Z","extras":{"alarm":"sos"}},"device_id":"no-such-watch-000000"}`, 404},
		{"json body malformed", "POST", "/", "application/json", `{"location":`, 400},
	} {
		code, ctype, body := do(t, tc.method, base+tc.path, tc.ctype, tc.body)
		if code != tc.want || strings.Contains(ctype, "html") || strings.Contains(body, "<html") {
			t.Errorf("%s: %d %q, want %d and no HTML", tc.name, code, ctype, tc.want)
		}
	}

	// Traccar Client's JSON body at the root, with the SOS in extras and
	// no fix: raised with the watch's last known position.
	body = `{"location":{"timestamp":"` + time.Now().UTC().Format(time.RFC3339) + `","is_moving":false,"event":"motionchange","battery":{"level":0.5,"is_charging":false},"extras":{"alarm":"fallDown"}},"device_id":"` + osmandID + `"}`
	if code, _, _ := do(t, http.MethodPost, base+"/", "application/json", body); code != 200 {
		t.Fatalf("JSON fall at /: %d", code)
	}
	st.Next(t, 3*time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindFall && a.Device == "klocka-1" })

	// The staff app itself is still served at "/".
	code, ctype, _ = do(t, http.MethodGet, base+"/", "", "")
	if code != 200 || !strings.Contains(ctype, "html") {
		t.Errorf("GET /: %d %q, want the staff app", code, ctype)
	}
}

// trackers.osmand_listen serves the protocol on its own port, on any path,
// as Traccar's port 5055 does.
func TestIntegrationOsmAndListener(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	var cfg hub.Config
	y := string(trackerHubYAML(t, t.TempDir())) + "trackers:\n  osmand_listen: 127.0.0.1:0\n"
	if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.OsmAndAddr() == "" {
		t.Fatal("no osmand listener")
	}
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	<-st.Ready
	if code, _, _ := do(t, http.MethodGet, "http://"+s.OsmAndAddr()+"/?id="+osmandID+"&lat=58.35&lon=11.93&alarm=sos", "", ""); code != 200 {
		t.Fatalf("osmand listener: %d", code)
	}
	st.Next(t, 3*time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindCall && a.Device == "klocka-1" })
	if code, _, _ := do(t, http.MethodGet, "http://"+s.OsmAndAddr()+"/?id=no-such-watch-000000", "", ""); code != 404 {
		t.Errorf("unknown id on the listener: %d", code)
	}
}

// A taken osmand_listen port fails the start with a clear error (and
// leaves nothing listening), rather than a hub whose trackers cannot
// report.
func TestOsmAndListenerPortTaken(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var cfg hub.Config
	y := string(trackerHubYAML(t, t.TempDir())) + "trackers:\n  osmand_listen: " + busy.Addr().String() + "\n"
	if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		s.Close()
		t.Fatal("started with the OsmAnd port taken")
	}
	if !strings.Contains(err.Error(), "service: listen osmand") {
		t.Errorf("error %q", err)
	}
}
