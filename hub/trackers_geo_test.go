package hub

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

const geoYAML = `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    geofences:
      - {id: hemma, circle: {lat: 58.35, lon: 11.93, radius: 100}}
    residents:
      - id: r-a
        geofences: [hemma]
        consent: {rules: [geofence_exit], recorded_by: ssk-1, recorded_at: "2026-01-10"}
    gateways:
      - id: gw
        devices:
          - {id: watch-a, type: tracking_device, resident: r-a, osmand_id: 0123456789abcdefXYZ}
`

// A wander alarm follows the resident until staff resolve it: each fix
// after the raise moves the alarm's position and extends its track
// (bounded by alarm.MaxTrack), a valid=false fix does neither, the step back
// inside carries its fix, and after resolve fixes touch the alarm no more.
func TestGeofenceAlarmPositionFollowsUntilResolved(t *testing.T) {
	c := newClock(dayTime)
	h, _ := trackerHub(t, geoYAML, c)
	fix := func(metresNorth float64, extra ...string) {
		t.Helper()
		q := url.Values{"id": {"0123456789abcdefXYZ"}, "lat": {fmt.Sprint(58.35 + metresNorth/111195)}, "lon": {"11.93"},
			"accuracy": {"10"}, "timestamp": {fmt.Sprint(c.Now().Unix())}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Set(extra[i], extra[i+1])
		}
		if err := h.HandleOsmAnd(q); err != nil {
			t.Fatal(err)
		}
	}
	fix(20)
	c.Add(10 * time.Second)
	fix(400)
	c.Add(3 * time.Minute)
	h.Tick()
	var geo *alarm.Alarm
	for _, a := range h.Alarms() {
		if a.Rule == "geofence_exit" {
			geo = a
		}
	}
	if geo == nil {
		t.Fatal("no geofence alarm")
	}
	lat := func(m float64) float64 { return 58.35 + m/111195 }
	if geo.Position() == nil || geo.Position().Lat != lat(400) {
		t.Fatalf("raised at %+v, want 400 m north", geo.Position())
	}
	raisedTrack := len(geo.Track())
	for i := 1; i <= alarm.MaxTrack+5; i++ {
		c.Add(10 * time.Second)
		fix(400 + float64(i)*50)
	}
	got, _ := h.Alarm(geo.ID)
	if got.Position() == nil || got.Position().Lat != lat(400+float64(alarm.MaxTrack+5)*50) {
		t.Errorf("after fixes: position %+v, want the newest fix", got.Position())
	}
	if len(got.Track()) != alarm.MaxTrack || got.Track()[len(got.Track())-1] != *got.Position() || raisedTrack >= alarm.MaxTrack {
		t.Errorf("track %d long (raised with %d), want %d ending at the newest fix", len(got.Track()), raisedTrack, alarm.MaxTrack)
	}
	newest := *got.Position()
	c.Add(10 * time.Second)
	fix(10, "valid", "false") // a stale fix flagged not valid: not a return, not a move
	got, _ = h.Alarm(geo.ID)
	if *got.Position() != newest || got.RestoredAt() != nil {
		t.Errorf("after valid=false: position %+v restored %v, want unchanged", got.Position(), got.RestoredAt())
	}
	c.Add(10 * time.Second)
	fix(30)
	got, _ = h.Alarm(geo.ID)
	if got.RestoredAt() == nil || got.Position() == nil || got.Position().Lat != lat(30) {
		t.Fatalf("back inside: restored %v position %+v, want restored at the 30 m fix", got.RestoredAt(), got.Position())
	}
	last := got.History()[len(got.History())-1]
	if last.Action != alarm.ActRestore || last.Pos == nil || last.Pos.Lat != lat(30) {
		t.Errorf("restore step %+v, want it to carry its fix", last)
	}
}

// Resolved while the resident is still outside (staff are with them): later
// fixes neither change the resolved alarm nor raise a new one.
func TestGeofenceUpdatesStopAtResolve(t *testing.T) {
	c := newClock(dayTime)
	h, _ := trackerHub(t, geoYAML, c)
	fix := func(metresNorth float64) {
		t.Helper()
		q := url.Values{"id": {"0123456789abcdefXYZ"}, "lat": {fmt.Sprint(58.35 + metresNorth/111195)}, "lon": {"11.93"},
			"accuracy": {"10"}, "timestamp": {fmt.Sprint(c.Now().Unix())}}
		if err := h.HandleOsmAnd(q); err != nil {
			t.Fatal(err)
		}
	}
	fix(20)
	c.Add(10 * time.Second)
	fix(400)
	c.Add(3 * time.Minute)
	h.Tick()
	id := ""
	for _, a := range h.Alarms() {
		if a.Rule == "geofence_exit" {
			id = a.ID
		}
	}
	if id == "" {
		t.Fatal("no geofence_exit alarm")
	}
	mustAct(t, h, id, alarm.ActAccept, "natt1", "")
	mustAct(t, h, id, alarm.ActResolve, "natt1", alarm.OutcomeTest)
	before, _ := h.Alarm(id)
	for i := 0; i < 3; i++ {
		c.Add(time.Minute)
		fix(600)
		h.Tick()
	}
	after, _ := h.Alarm(id)
	if after.Repeats() != before.Repeats() || *after.Position() != *before.Position() {
		t.Errorf("resolved alarm changed: repeats %d→%d", before.Repeats(), after.Repeats())
	}
	for _, a := range h.Alarms() {
		if a.ID != id && a.Rule == "geofence_exit" {
			t.Errorf("a fix after resolve raised %s %s", a.ID, a.Rule)
		}
	}
}
