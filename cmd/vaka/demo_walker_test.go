package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

// The demo's GPS watch walks out of its home area and back: a wander
// alarm with the latest position and a track, sent to staff with the home
// circle for the map, and marked back inside when the walk ends. The
// geofence hold is set to zero here so no test waits two minutes.
func TestDemoWalkerRaisesWanderWithTrack(t *testing.T) {
	cfg, _, err := demoConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", demoWorld())
	if err != nil {
		t.Fatal(err)
	}
	zero := time.Duration(0)
	for i := range cfg.Sites {
		for k := range cfg.Sites[i].Residents {
			if r := &cfg.Sites[i].Residents[k]; r.ID == "r-e8a7" {
				r.Plan.Rules["geofence_exit"] = hub.RuleOverride{Hold: &zero}
			}
		}
	}
	s, err := service.Start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := &demoWalker{hub: s.Hub, rest: 5}
	find := func() *alarm.Alarm {
		for _, a := range s.Hub.Alarms() {
			if a.Device == demoWatch && a.Kind == alarm.KindWander {
				return a
			}
		}
		return nil
	}
	for i := 0; i < len(demoWalk); i++ {
		w.step(time.Now())
		time.Sleep(15 * time.Millisecond) // the hub's timers run on its own clock
		if i == 12 {
			a := find()
			for n := 0; a == nil && n < 100; n++ {
				time.Sleep(10 * time.Millisecond)
				a = find()
			}
			if a == nil || a.Position() == nil || len(a.Track()) < 3 {
				t.Fatalf("after leaving: %+v", a)
			}
		}
	}
	var list struct{ Alarms []map[string]any }
	testenv.GetJSON(t, "http://"+s.HTTPAddr()+"/api/v1/alarms", "natt1", "natt1", &list)
	var where map[string]any
	for _, a := range list.Alarms {
		if a["device"] == demoWatch {
			where, _ = a["where"].(map[string]any)
		}
	}
	g, _ := where["geofence"].(map[string]any)
	if g["lat"] != demoHomeLat || g["lon"] != demoHomeLon || g["radius_m"] != demoHomeArea {
		t.Errorf("where.geofence %v", where["geofence"])
	}
	a := find()
	for n := 0; (a == nil || a.RestoredAt() == nil) && n < 100; n++ {
		time.Sleep(10 * time.Millisecond)
		a = find()
	}
	if a == nil || a.RestoredAt() == nil {
		t.Errorf("not marked back inside after the walk: %+v", a)
	}
}
