package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/pilot"
)

// trackerOnlyHome is a home-care site whose resident has only a GPS watch
// and a phone: no gateway at all.
func trackerOnlyHome(t *testing.T) string {
	h := testenv.Hash(t, "secret-secret")
	return `data_dir: /var/lib/vaka
mqtt:
  tcp: 127.0.0.1:1883
http:
  address: 127.0.0.1:8080
users:
  - {username: natt1, role: staff, password_hash: "` + h + `"}
sites:
  - id: hem-norr
    night: {start: "22:00", end: "06:30"}
    geofences:
      - {id: hemma, circle: {lat: 58.35, lon: 11.93, radius: 100}}
    residents:
      - id: r-91cc
        geofences: [hemma]
        consent: {rules: [geofence_exit], recorded_by: ssk-1, recorded_at: "2026-01-10"}
    owntracks_users:
      - {username: ot-91cc, password_hash: "` + h + `"}
    trackers:
      - {id: klocka-1, resident: r-91cc, osmand_id: 3f9c1e0b7a5d42c8b1e6f0a9d3c7b5e2, supervision: 24h}
      - {id: tel-1, type: tracking_device, resident: r-91cc, owntracks: ot-91cc/tel}
`
}

// A tracker-only home passes vaka check with no gateway in the config.
func TestCheckTrackerOnlyHome(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.yaml")
	if err := os.WriteFile(path, []byte(trackerOnlyHome(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", path}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "OK – hub config, 1 sites, 2 devices") {
		t.Errorf("output %q", out.String())
	}
}

// Mistakes in a site's trackers are named by file, line and field.
func TestCheckTrackerOnlyHomeErrors(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		{"no way to report", "{id: klocka-1, resident: r-91cc, osmand_id: 3f9c1e0b7a5d42c8b1e6f0a9d3c7b5e2, supervision: 24h}",
			"{id: klocka-1, resident: r-91cc}", ":20: field sites.0.trackers.0.id: a tracker without a gateway needs owntracks or osmand_id"},
		{"not a tracker", "{id: tel-1, type: tracking_device,", "{id: tel-1, type: door_sensor,", ":21: field sites.0.trackers.1.type: must be tracking_device"},
		{"duplicate id", "{id: tel-1,", "{id: klocka-1,", ":21: field sites.0.trackers.1.id: duplicate device"},
		{"negative supervision", "supervision: 24h", "supervision: -1h", ":20: field sites.0.trackers.0.supervision: must not be negative"},
		{"short osmand id", "osmand_id: 3f9c1e0b7a5d42c8b1e6f0a9d3c7b5e2", "osmand_id: 1234", ":20: field sites.0.trackers.0.osmand_id: want 16–128"},
		{"room", "{id: tel-1,", "{room: \"12\", id: tel-1,", ":21: field sites.0.trackers.1.room: a tracker has no room"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := trackerOnlyHome(t)
			bad := strings.Replace(y, tc.old, tc.new, 1)
			if bad == y {
				t.Fatalf("%q not found", tc.old)
			}
			path := filepath.Join(t.TempDir(), "hub.yaml")
			if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := run([]string{"check", "--config", path}, strings.NewReader(""), &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if !strings.Contains(errb.String(), path+tc.want) {
				t.Errorf("stderr %q, want %q", errb.String(), path+tc.want)
			}
		})
	}
}

// A pilot arm's device count includes a tracker-only home's trackers.
func TestArmDevicesCountsSiteTrackers(t *testing.T) {
	var cfg hub.Config
	if err := config.Decode("hub.yaml", []byte(trackerOnlyHome(t)), &cfg); err != nil {
		t.Fatal(err)
	}
	if n := armDevices(&cfg, &pilot.Arm{Residents: []string{"hem-norr/r-91cc"}}); n != 2 {
		t.Errorf("arm devices %d, want 2", n)
	}
}
