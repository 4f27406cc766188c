package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/hub"
)

// demoNames are the demo residents' display names (made up), shown to the
// roles in http.show_names_to.
var demoNames = map[string]string{
	"r-7f3a": "Karin Andersson", "r-2c9e": "Olle Berg", "r-b41d": "Maj Lindqvist",
	"r-91cc": "Gunnar Ek", "r-5d02": "Ingrid Sjöberg", "r-e8a7": "Stig Holm",
}

// demoHomes are the home-care homes: street address and how to get in.
// The door codes are made up and shown only to staff (http.show_access_to).
var demoHomes = map[string]struct {
	name, address string
	access        hub.Access
}{
	"hem-1": {"Gunnar Eks hem", "Björkvägen 4, 123 45 Norrby", hub.Access{KeyBox: "Nyckelgömma vid garaget, kod 1357", DoorCode: "4711", Note: "Ring på två gånger innan du går in"}},
	"hem-2": {"Ingrid Sjöbergs hem", "Storgatan 12 lgh 1102, 123 46 Norrby", hub.Access{DoorCode: "2580#", Note: "Porten: tryck 2580 och #, hiss till plan 1"}},
	"hem-3": {"Stig Holms hem", "Ekstigen 9, 123 47 Norrby", hub.Access{KeyBox: "Nyckelskåp på verandan, kod 8642", Note: "Hunden är snäll"}},
}

// demoRooms name the rooms devices report from.
var demoRooms = map[string]string{
	"101": "Rum 101", "102": "Rum 102", "103": "Rum 103", "corridor": "Korridoren", "exit": "Entrédörren",
	"hall": "Hallen", "sovrum": "Sovrummet",
}

// demoPlacement says where each type of demo device sits or is worn.
var demoPlacement = map[string][2]string{
	"personal_trigger":   {"på handleden", "on the wrist"},
	"door_sensor":        {"på dörren", "on the door"},
	"bed_monitor":        {"i sängen", "in the bed"},
	"occupancy_detector": {"i taket", "on the ceiling"},
}

// decorateDemo gives the demo's config what a real one has: residents'
// names, units and homes with names, addresses and door information,
// rooms by name and devices in words.
func decorateDemo(cfg *hub.Config) {
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		seen := map[string]bool{}
		addUnit := func(id string) {
			if id == "" || seen[id] {
				return
			}
			seen[id] = true
			u := hub.Unit{ID: id, Rooms: map[string]string{}}
			if h, ok := demoHomes[id]; ok {
				u.Name, u.Address = h.name, h.address
				ac := h.access
				u.Access = &ac
			} else {
				u.Name = "Avdelning A"
				u.Access = &hub.Access{Note: "Entrédörren låses kl 21, personalbricka"}
			}
			s.Units = append(s.Units, u)
		}
		for j := range s.Gateways {
			for k := range s.Gateways[j].Devices {
				d := &s.Gateways[j].Devices[k]
				addUnit(d.Unit)
				if p, ok := demoPlacement[d.Type]; ok && !d.Exit {
					d.Placement, d.PlacementEN = p[0], p[1]
				}
				if d.Exit {
					d.Placement, d.PlacementEN = "på ytterdörren", "on the front door"
				}
			}
		}
		for k := range s.Units {
			for room, name := range demoRooms {
				s.Units[k].Rooms[room] = name
			}
		}
		for k := range s.Residents {
			s.Residents[k].Name = demoNames[s.Residents[k].ID]
		}
		if s.ID == "solrosen" {
			s.Address = "Solrosvägen 2, 123 40 Norrby"
		}
	}
}

// demoActor is the simulated colleague: natt2 on the other phone takes
// alarms nobody has taken for a while, goes there and closes them, so the
// demo's list shows alarms being handled, not only growing. It leaves new
// alarms to the person trying the demo for the first minute.
type demoActor struct {
	hub  *hub.Hub
	user string
	log  *slog.Logger
	// after how long an untaken alarm is taken, presence marked, resolved
	take, arrive, resolve time.Duration
}

func (d *demoActor) run(ctx context.Context, every time.Duration) { tickUntilDone(ctx, every, d.step) }

// tickUntilDone calls step with the time of each tick, every apart, until
// ctx is done: the pace of the demo's pretend people.
func tickUntilDone(ctx context.Context, every time.Duration, step func(time.Time)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			step(now)
		}
	}
}

// step does at most one action per alarm, as a person would.
func (d *demoActor) step(now time.Time) {
	for _, a := range d.hub.Alarms() {
		if !a.Open() {
			continue
		}
		age := now.Sub(a.RaisedAt)
		var err error
		switch {
		case a.State == alarm.Raised && age >= d.take:
			_, err = d.hub.Act(a.ID, alarm.ActAccept, d.user, "", "")
		case a.AcceptedBy() != d.user:
			continue // someone else's alarm
		case a.State == alarm.Accepted && age >= d.arrive && a.Kind != alarm.KindTechnical:
			_, err = d.hub.Act(a.ID, alarm.ActPresence, d.user, "", "")
		case (a.State == alarm.Presence || a.Kind == alarm.KindTechnical) && age >= d.resolve:
			outcome := alarm.OutcomeRealNeed
			if a.Kind == alarm.KindTechnical {
				outcome = alarm.OutcomeTechnical
			}
			_, err = d.hub.Act(a.ID, alarm.ActResolve, d.user, outcome, "")
		}
		if err != nil {
			d.log.Debug("demo actor: action refused", "alarm", a.ID, "err", err)
		}
	}
}

// The demo's GPS watch: Stig Holm (hem-3) goes for a walk now and then,
// leaves his home area, wanders for a few minutes and comes back, so the
// staff app shows a wander alarm with its track on the map.
const (
	demoWatch    = "klocka-hem-3"
	demoWatchGW  = "hem-3"
	demoHomeLat  = 59.8586
	demoHomeLon  = 17.6389
	demoHomeArea = 60.0 // metres
)

// addDemoWatch registers the watch and the home area it is checked against.
func addDemoWatch(cfg *hub.Config) {
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		if s.ID != "hemtjanst-norr" {
			continue
		}
		s.Geofences = append(s.Geofences, hub.Geofence{ID: "hem-3-tomten", Circle: &hub.Circle{Lat: demoHomeLat, Lon: demoHomeLon, Radius: demoHomeArea}})
		for k := range s.Residents {
			if s.Residents[k].ID == "r-e8a7" {
				s.Residents[k].Geofences = []string{"hem-3-tomten"}
			}
		}
		for j := range s.Gateways {
			if s.Gateways[j].ID == demoWatchGW {
				s.Gateways[j].Devices = append(s.Gateways[j].Devices, hub.Device{ID: demoWatch, Type: "tracking_device",
					Resident: "r-e8a7", Unit: "hem-3", Placement: "på handleden", PlacementEN: "on the wrist"})
			}
		}
	}
}

// demoWalk is the walk's path in metres north and east of home, one
// point per step: home, out through the garden gate, along the road and
// back. It leaves the 60 m area at step 4 and is back at step 19.
var demoWalk = [][2]float64{
	{0, 0}, {5, 3}, {20, 10}, {45, 20}, {70, 35}, {95, 55}, {110, 85}, {120, 120}, {125, 150},
	{130, 175}, {120, 190}, {100, 185}, {90, 160}, {85, 130}, {80, 100}, {75, 80}, {65, 60}, {50, 40}, {30, 20}, {10, 5},
}

type demoWalker struct {
	hub  *hub.Hub
	n    int
	rest int // steps at home between walks
}

// step reports the watch's next position.
func (w *demoWalker) step(now time.Time) {
	i := w.n % (len(demoWalk) + w.rest)
	w.n++
	p := [2]float64{0, 0}
	if i < len(demoWalk) {
		p = demoWalk[i]
	}
	const r = 6378137.0
	lat := demoHomeLat + p[0]/r*180/math.Pi
	lon := demoHomeLon + p[1]/(r*math.Cos(demoHomeLat*math.Pi/180))*180/math.Pi
	w.hub.HandleEvent("hemtjanst-norr", demoWatchGW, []byte(fmt.Sprintf(
		`{"v":1,"id":"walk-%d","device":%q,"dty":"0051","ts":%q,"pos":{"lat":%.7f,"lon":%.7f,"acc":8},"battery":76}`,
		w.n, demoWatch, now.UTC().Format(time.RFC3339Nano), lat, lon)))
}

func (w *demoWalker) run(ctx context.Context, every time.Duration) { tickUntilDone(ctx, every, w.step) }
