package service

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
)

const whereYAML = `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0, map_tiles: "https://tiles.kommun.example/{z}/{x}/{y}.png"}
sites:
  - id: hem-norr
    name: Hemtjänst Norr
    address: Centralen 1
    night: {start: "22:00", end: "07:00"}
    units:
      - id: hem-1
        name: Gunnar Eks hem
        address: Björkvägen 4
        rooms: {hall: Hallen}
        access: {key_box: "vid garaget", door_code: "1234"}
        floor_plan: {image: plan.png, south: 59.32, west: 18.05, north: 59.34, east: 18.07}
    geofences:
      - {id: tomten, circle: {lat: 59.33, lon: 18.06, radius: 80}}
    residents:
      - {id: r-1, unit: hem-1, address: "Björkvägen 4 lgh 2", access: {door_code: "9876"}, geofences: [tomten],
         consent: {rules: [geofence_exit], recorded_by: x, recorded_at: "2026-01-01"}}
    gateways:
      - id: hem-1
        devices:
          - {id: klocka-1, type: tracking_device, resident: r-1, unit: hem-1, placement: på handleden, placement_en: on the wrist}
          - {id: knapp-9, type: personal_trigger, unit: hem-1, room: hall}
`

// What "where" and "access" say for a wander alarm and a call alarm: the
// unit's names and address, the resident's own address only to personal
// viewers, the device in words, the home circle, the floor plan and the
// tile template; the resident's door code over the unit's.
func TestWhereAndAccessFromConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hub.yaml"), []byte(whereYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.png"), []byte("\x89PNG\r\n\x1a\nfake"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg hub.Config
	if err := config.Load(filepath.Join(dir, "hub.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	p := indexPlaces(&cfg)
	wander := &alarm.Alarm{Kind: alarm.KindWander, Site: "hem-norr", Device: "klocka-1", DeviceType: event.Tracker, Resident: "r-1"}
	wander.SetPosition(&event.Position{Lat: 59.331, Lon: 18.062})
	w := p.where(wander, true)
	if w == nil || w.SiteName != "Hemtjänst Norr" || w.UnitName != "Gunnar Eks hem" || w.Address != "Björkvägen 4 lgh 2" ||
		w.DeviceText == nil || w.DeviceText.SV != "GPS-larm på handleden" || w.DeviceText.EN != "GPS tracker on the wrist" {
		t.Fatalf("wander where: %+v %+v", w, w.DeviceText)
	}
	if g := w.Geofence; g == nil || g.Lat != 59.33 || g.Lon != 18.06 || g.RadiusM != 80 {
		t.Errorf("geofence %+v", g)
	}
	if f := w.FloorPlan; f == nil || f.URL != "/api/v1/sites/hem-norr/units/hem-1/floor-plan" || f.South != 59.32 || f.East != 18.07 {
		t.Errorf("floor plan %+v", f)
	}
	if w.MapTiles != "https://tiles.kommun.example/{z}/{x}/{y}.png" {
		t.Errorf("map tiles %q", w.MapTiles)
	}
	if w := p.where(wander, false); w.Address != "Björkvägen 4" {
		t.Errorf("non-personal viewer gets address %q, want the unit's", w.Address)
	}
	if a := p.access(wander); a == nil || a.DoorCode != "9876" || a.KeyBox != "" {
		t.Errorf("resident's access should win: %+v", a)
	}
	call := &alarm.Alarm{Kind: alarm.KindCall, Site: "hem-norr", Unit: "hem-1", Room: "hall", Device: "knapp-9", DeviceType: event.PersonalTrigger}
	w = p.where(call, true)
	if w.RoomName != "Hallen" || w.DeviceText.SV != "larmknapp" || w.Geofence != nil || w.MapTiles != "" {
		t.Errorf("call where: %+v", w)
	}
	if a := p.access(call); a == nil || a.DoorCode != "1234" || a.KeyBox != "vid garaget" {
		t.Errorf("unit access: %+v", a)
	}
	if p.where(&alarm.Alarm{Site: "okänd"}, true) != nil {
		t.Error("unknown site gave a where")
	}
	if got := tileOrigin(cfg.HTTP.MapTiles); len(got) != 1 || got[0] != "https://tiles.kommun.example" {
		t.Errorf("CSP origin %v", got)
	}
	// The floor plan is served, to staff, from the file next to the config.
	y := whereYAML + "users:\n  - {username: natt1, name: N, role: staff, password_hash: \"" + testenv.Hash(t, "natt1-secret") + "\"}\n" +
		"  - {username: tekn, name: T, role: technician, password_hash: \"" + testenv.Hash(t, "tekn-secret") + "\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "hub.yaml"), []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = hub.Config{}
	if err := config.Load(filepath.Join(dir, "hub.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(dir, "data")
	s, err := Start(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(user, pass string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTPAddr()+"/api/v1/sites/hem-norr/units/hem-1/floor-plan", nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ctype, body := get("natt1", "natt1-secret"); code != 200 || ctype != "image/png" || body != "\x89PNG\r\n\x1a\nfake" {
		t.Errorf("floor plan for staff: %d %s %q", code, ctype, body)
	}
	if code, _, _ := get("tekn", "tekn-secret"); code != http.StatusForbidden {
		t.Errorf("floor plan for a technician: %d", code)
	}
}
