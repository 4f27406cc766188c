package hub

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/store"
	"github.com/vaka-care/vaka/trackers"
)

// An event stamped far ahead of or behind the hub's clock still raises at
// once (the rules run at the hub's time), and is counted and noted.
func TestClockSkewFlagged(t *testing.T) {
	c := newClock(dayTime)
	h, reg := trackerHub(t, hubYAML, c)
	ch, cancel := h.Subscribe()
	defer cancel()
	for i, tc := range []struct {
		at      time.Time
		flagged bool
	}{
		{dayTime.Add(4 * time.Minute), false},
		{dayTime.Add(-23 * time.Hour), false},
		{dayTime.Add(10 * time.Minute), true},
		{dayTime.Add(-25 * time.Hour), true},
		{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), true}, // a Pi without RTC before NTP
	} {
		before := counter(t, reg, "vaka_events_clock_skew_total")
		id := "e" + string(rune('a'+i))
		wantOK(t, h.HandleEvent("s", "gw", press(id, tc.at)), id)
		as := drain(ch)
		if len(as) != 1 {
			t.Fatalf("%v: %d alarm changes, want 1", tc.at, len(as))
		}
		a := as[0]
		noted := strings.Contains(a.Note, "device clock off by")
		if noted != tc.flagged || (counter(t, reg, "vaka_events_clock_skew_total") > before) != tc.flagged {
			t.Errorf("%v: note %q, counted %v, want flagged %v", tc.at, a.Note, counter(t, reg, "vaka_events_clock_skew_total")-before, tc.flagged)
		}
		if !a.RaisedAt.Equal(dayTime) {
			t.Errorf("raised at %v, want the hub's time %v", a.RaisedAt, dayTime)
		}
		// Resolve so the next press raises anew.
		mustAct(t, h, a.ID, alarm.ActAccept, "natt1", "")
		mustAct(t, h, a.ID, alarm.ActResolve, "natt1", alarm.OutcomeTest)
		drain(ch)
	}
}

const trackerYAML = `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    residents:
      - {id: r-a}
    gateways:
      - id: gw
        devices:
          - {id: tel-a, type: tracking_device, resident: r-a, owntracks: anna/tel}
          - {id: watch-a, type: tracking_device, resident: r-a, osmand_id: 0123456789abcdefXYZ}
`

func TestHandleOwnTracksAndOsmAnd(t *testing.T) {
	c := newClock(dayTime)
	h, reg := trackerHub(t, trackerYAML, c)
	loc := []byte(`{"_type":"location","lat":58.35,"lon":11.93,"acc":0,"batt":50,"tst":` + strconv.FormatInt(dayTime.Unix(), 10) + `}`)
	if err := h.HandleOwnTracks("anna", "tel", "", loc); err != nil {
		t.Fatal(err)
	}
	if err := h.HandleOwnTracks("anna", "tel", "", loc); err != nil { // redelivered
		t.Fatal(err)
	}
	if got := counter(t, reg, "vaka_events_duplicate_total"); got != 1 {
		t.Errorf("duplicates %v, want 1", got)
	}
	if err := h.HandleOwnTracks("anna", "phone2", "", loc); !errors.Is(err, trackers.ErrUnknown) {
		t.Errorf("unmapped topic: %v", err)
	}
	var te *trackers.Error
	if err := h.HandleOwnTracks("anna", "tel", "", []byte(`{"_type":"location"}`)); !errors.As(err, &te) {
		t.Errorf("malformed: %v", err)
	}
	for _, p := range []string{`{"_type":"lwt","tst":1}`, `{"_type":"waypoints"}`} {
		if err := h.HandleOwnTracks("anna", "tel", "", []byte(p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if err := h.HandleOwnTracks("anna", "tel", "cmd", []byte(`x`)); err != nil {
		t.Errorf("other leaf: %v", err)
	}
	if err := h.HandleOsmAnd(url.Values{"id": {"0123456789abcdefXYZ"}, "lat": {"58.35"}, "lon": {"11.93"}, "batt": {"9"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.HandleOsmAnd(url.Values{"id": {"nope"}, "lat": {"1"}, "lon": {"2"}}); !errors.Is(err, trackers.ErrUnknown) {
		t.Errorf("unknown osmand id: %v", err)
	}
	for _, tc := range []struct{ src, result string }{
		{"owntracks", "ok"}, {"owntracks", "unknown"}, {"owntracks", "malformed"}, {"owntracks", "lwt"}, {"owntracks", "ignored"},
		{"osmand", "ok"}, {"osmand", "unknown"},
	} {
		want := 1.0
		if tc.src == "owntracks" && tc.result == "ok" {
			want = 2 // the redelivery is ok at the tracker layer, a duplicate at the event layer
		}
		if tc.src == "owntracks" && tc.result == "ignored" {
			want = 2 // waypoints and the cmd leaf
		}
		if got := counter(t, reg, "vaka_tracker_reports_total", "source", tc.src, "result", tc.result); got != want {
			t.Errorf("%s/%s = %v, want %v", tc.src, tc.result, got, want)
		}
	}
	// Health sees the tracker (accuracy 0 is kept, battery recorded).
	hl := h.Health()
	for _, d := range hl.Devices {
		switch d.Device {
		case "tel-a":
			if d.NeverHeard || d.Battery != 50 {
				t.Errorf("tel-a %+v", d)
			}
		case "watch-a":
			if d.Status != "low_battery" {
				t.Errorf("watch-a %+v", d)
			}
		}
	}
	// A reload that remaps the phone is honoured at once.
	h.Reload(loadConfig(t, strings.Replace(trackerYAML, "owntracks: anna/tel", "owntracks: anna/tel2", 1)))
	if err := h.HandleOwnTracks("anna", "tel", "", loc); !errors.Is(err, trackers.ErrUnknown) {
		t.Errorf("after reload, old mapping: %v", err)
	}
	if err := h.HandleOwnTracks("anna", "tel2", "", loc); err != nil {
		t.Errorf("after reload, new mapping: %v", err)
	}
}

func trackerHub(t *testing.T, yaml string, c *clock) (*Hub, *prometheus.Registry) {
	t.Helper()
	j, _, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	reg := prometheus.NewRegistry()
	h, err := New(Options{Config: loadConfig(t, yaml), Journal: j, Now: c.Now, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

// counter reads one counter sample from reg; labels are name, value pairs.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s %v not found", name, labels)
	return 0
}

func TestTrackerConfigValidation(t *testing.T) {
	const hash = "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"
	base := `mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
data_dir: /var/lib/vaka
users:
  - {username: anna, role: staff, password_hash: "` + hash + `"}
  - {username: tek, role: technician, password_hash: "` + hash + `"}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    owntracks_users:
      - {username: ot-1, password_hash: "` + hash + `"}
    gateways:
      - id: gw
        password_hash: "` + hash + `"
        devices:
          - {id: t1, type: tracking_device, owntracks: ot-1/tel}
          - {id: t2, type: tracking_device, osmand_id: 0123456789abcdef0123}
  - id: s2
    night: {start: "22:00", end: "06:30"}
    owntracks_users:
      - {username: ot-2, password_hash: "` + hash + `"}
`
	if err := config.Decode("hub.yaml", []byte(base), &Config{}); err != nil {
		t.Fatalf("base config refused: %v", err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"owntracks not user/device", "owntracks: ot-1/tel", "owntracks: ot-1", `field sites.0.gateways.0.devices.0.owntracks: want "<user>/<device>"`},
		{"owntracks user unlisted", "owntracks: ot-1/tel", "owntracks: ot-9/tel", `owntracks: user "ot-9" is not listed`},
		{"owntracks user of another site", "owntracks: ot-1/tel", "owntracks: ot-2/tel", `owntracks: user "ot-2" belongs to site "s2"`},
		{"duplicate mapping", "osmand_id: 0123456789abcdef0123}", "owntracks: ot-1/tel}", `devices.1.owntracks: duplicate`},
		{"not a tracker", "{id: t1, type: tracking_device,", "{id: t1, type: door_sensor,", `devices.0.type: must be tracking_device`},
		{"short osmand id", "osmand_id: 0123456789abcdef0123", "osmand_id: 12345", `devices.1.osmand_id: want 16–128`},
		{"osmand id with odd characters", "osmand_id: 0123456789abcdef0123", "osmand_id: \"0123456789abcdef/123\"", `devices.1.osmand_id: want 16–128`},
		{"duplicate owntracks user", "username: ot-2,", "username: ot-1,", `sites.1.owntracks_users.0.username: duplicate`},
		{"owntracks user with slash", "username: ot-1,", "username: \"s/gw\",", `sites.0.owntracks_users.0.username: has '/'`},
		{"owntracks user without hash", `{username: ot-2, password_hash: "` + hash + `"}`, `{username: ot-2}`, `sites.1.owntracks_users.0.password_hash: missing`},
		{"unknown role", "role: technician", "role: tekniker", `users.1.role: must be staff, lead, admin or technician`},
		{"owntracks_key without owntracks", "osmand_id: 0123456789abcdef0123}", "osmand_id: 0123456789abcdef0123, owntracks_key: mysecreTpass01}", `devices.1.owntracks_key: only for a device with owntracks`},
		{"owntracks_key too long", "owntracks: ot-1/tel}", "owntracks: ot-1/tel, owntracks_key: 0123456789abcdef0123456789abcdefX}", `devices.0.owntracks_key: want 8–32 bytes`},
		{"owntracks_key too short", "owntracks: ot-1/tel}", "owntracks: ot-1/tel, owntracks_key: short}", `devices.0.owntracks_key: want 8–32 bytes`},
		{"osmand_listen", "data_dir: /var/lib/vaka", "data_dir: /var/lib/vaka\ntrackers: {osmand_listen: \"5055\"}", `trackers.osmand_listen: want host:port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(base, tc.old, tc.new, 1)
			if y == base {
				t.Fatalf("replacement %q not found", tc.old)
			}
			err := config.Decode("hub.yaml", []byte(y), &Config{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
