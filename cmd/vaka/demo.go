package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/sim"
	"github.com/vaka-care/vaka/gateway"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/pilot"
	"github.com/vaka-care/vaka/service"
)

func runGateway(ctx context.Context, args []string, log *slog.Logger) error {
	path, err := configFlag("gateway", args)
	if err != nil {
		return err
	}
	var cfg gateway.Config
	if err := config.Load(path, &cfg); err != nil {
		return err
	}
	defaultSpool(&cfg, log)
	g, err := gateway.New(cfg, log, nil)
	if err != nil {
		return err
	}
	// Under systemd: READY once the spool is open (gateway.New), the
	// watchdog fed while the queue lock answers (sdnotify.go).
	sd := newNotifier(log)
	sd.ready()
	go sd.watchdog(ctx, func() { _ = g.Stats() })
	defer sd.stopping()
	return g.Run(ctx)
}

// demoUser is a demo login, printed at start.
type demoUser struct{ user, pass, name, role string }

var demoUsers = []demoUser{
	{"natt1", "natt1", "Nour Natt", hub.RoleStaff},
	{"natt2", "natt2", "Nils Natt (simulerad)", hub.RoleStaff},
	{"lead", "lead", "Piloten Ledare", hub.RoleLead},
	{"admin", "admin", "Admin", hub.RoleAdmin},
	{"tekniker", "tekniker", "Tekniker Tova", hub.RoleTechnician},
}

// demoGateway is one simulated gateway of the demo.
type demoGateway struct {
	site    string
	id      string
	devices []devices.Device
	sim     sim.Options
}

// demoWorld is a dementia unit with its exit door and three homes, each
// with a call button, a front door and a bed sensor.
func demoWorld() []demoGateway {
	unit := demoGateway{site: "solrosen", id: "avd-a", devices: sim.DefaultDevices(),
		sim: sim.Options{Interval: 40 * time.Second, First: 3 * time.Second}}
	out := []demoGateway{unit}
	residents := []string{"r-91cc", "r-5d02", "r-e8a7"}
	for i, r := range residents {
		home := fmt.Sprintf("hem-%d", i+1)
		mk := func(id, typ, room string, exit bool) devices.Device {
			return devices.Device{ID: id, Driver: sim.Name, Type: typ, Resident: r, Unit: home, Room: room, Exit: exit}
		}
		out = append(out, demoGateway{site: "hemtjanst-norr", id: home, devices: []devices.Device{
			mk("knapp-"+home, "personal_trigger", "hall", false),
			mk("dorr-"+home, "door_sensor", "hall", true),
			mk("sang-"+home, "bed_monitor", "sovrum", false),
		}, sim: sim.Options{Scenarios: []string{"call_button", "bed_exit_no_return"},
			Interval: time.Duration(90+30*i) * time.Second, First: time.Duration(20+15*i) * time.Second}})
	}
	// The first home presses its call button within seconds, so a newcomer
	// sees an alarm at once; the unit's night scenarios take minutes.
	out[1].sim.Scenarios, out[1].sim.First = []string{"call_button"}, 4*time.Second
	return out
}

func runDemo(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	data := fs.String("data", "", "data directory (default: a new temporary directory)")
	httpAddr := fs.String("http", "127.0.0.1:8080", "web address")
	mqttAddr := fs.String("mqtt", "127.0.0.1:1883", "MQTT address")
	tlsCert := fs.String("tls-cert", "", "serve the web app over HTTPS with this PEM certificate (a phone needs HTTPS for\nnotifications; README: the demo on a phone)")
	tlsKey := fs.String("tls-key", "", "the certificate's PEM key")
	sipAddr := fs.String("sip", "127.0.0.1:5060", "SCAIP receiver's SIP address (UDP and TCP)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" {
		d, err := os.MkdirTemp("", "vaka-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		*data = d
	}
	world := demoWorld()
	cfg, passwords, err := demoConfig(*data, *httpAddr, *mqttAddr, world)
	if err != nil {
		return err
	}
	scheme := "http"
	if *tlsCert != "" || *tlsKey != "" {
		if *tlsCert == "" || *tlsKey == "" {
			return errors.New("demo: --tls-cert and --tls-key go together")
		}
		cfg.HTTP.TLS = &hub.TLSConfig{CertFile: *tlsCert, KeyFile: *tlsKey}
		scheme = "https"
	}
	scaipPass, err := addDemoSCAIP(cfg, *sipAddr)
	if err != nil {
		return err
	}
	pp, popts, err := startPilot(cfg, log)
	if err != nil {
		return err
	}
	if err := pp.seedDemoTrial(&cfg.Pilot.Trials[0], time.Now()); err != nil {
		pp.close()
		return err
	}
	s, err := service.Start(cfg, log, popts...)
	if err != nil {
		pp.close()
		return err
	}
	pp.attach(s)
	defer s.Close()

	fmt.Fprintf(stdout, `
Vaka demo – trygghetslarm och nattillsyn
  Personalappen / staff app:  %s://%s/
  MQTT:                       tcp://%s   (demo mode: anonymous clients allowed)
  Data:                       %s
  Pilotresultat / pilot:      %s://%s/pilot   (lead / lead: a two-arm trial, 8 simulated weeks)
  Enhetsstatus / devices:     %s://%s/devices   (tekniker / tekniker)
  Inloggningar / logins:`, scheme, s.HTTPAddr(), s.MQTTAddr(), *data, scheme, s.HTTPAddr(), scheme, s.HTTPAddr())
	for _, u := range demoUsers {
		fmt.Fprintf(stdout, "\n    %-8s / %-8s  (%s: %s)", u.user, u.pass, u.role, u.name)
	}
	fmt.Fprint(stdout, "\n  natt2 is simulated: it takes alarms nobody took within a minute, goes there and closes them.")
	fmt.Fprintf(stdout, "\n  SCAIP (SIP UDP/TCP):        %s   unit cid %s, Digest %s / %s\n"+
		"    try: vaka scaip send --to %s --user %s --password %s --cid %s --dty 0003",
		s.SCAIPAddr("udp"), demoSCAIPCid, demoSCAIPAccount, scaipPass, s.SCAIPAddr("udp"), demoSCAIPAccount, scaipPass, demoSCAIPCid)
	fmt.Fprintf(stdout, `

  Solrosens demensboende, avd-a: three residents, the unit's exit door; natten gäller
  dygnet runt i demot (the night window covers all day so the door rule shows by day).
  Hemtjänst Norr: three homes with a call button, a front door and a bed sensor
  (night 22:00–06:30 Europe/Stockholm); Stig Holm's GPS watch (hem-3) goes for a walk
  every quarter of an hour and leaves his home area: a wander alarm with its track;
  hem-2 also has a SCAIP trygghetslarm (heartbeat every minute, an alarm with a
  callback number after a minute).
  The first alarm arrives within a few seconds. Ctrl-C stops the demo.

`)
	var wg sync.WaitGroup
	gctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	actor := &demoActor{hub: s.Hub, user: "natt2", log: log, take: time.Minute, arrive: 2 * time.Minute, resolve: 3 * time.Minute}
	wg.Add(1)
	go func() { defer wg.Done(); actor.run(gctx, 5*time.Second) }()
	walker := &demoWalker{hub: s.Hub, rest: 25}
	wg.Add(1)
	go func() { defer wg.Done(); walker.run(gctx, 20*time.Second) }()
	for _, dg := range world {
		gcfg := gateway.Config{
			Site: dg.site, ID: dg.id,
			Broker: gateway.Broker{URL: "tcp://" + s.MQTTAddr(), Username: dg.site + "/" + dg.id,
				Password: passwords[dg.site+"/"+dg.id]},
			Heartbeat: 10 * time.Second,
			Devices:   dg.devices,
			Sim:       &dg.sim,
		}
		g, err := gateway.New(gcfg, log.With("component", "gateway"), nil)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("demo gateway stopped", "gateway", dg.id, "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runDemoSCAIPUnit(gctx, s.SCAIPAddr("udp"), scaipPass, log.With("component", "scaip-unit"))
	}()
	<-ctx.Done()
	return nil
}

// demoResident has consent recorded for every supervision rule, and a
// short bed-exit hold so the demo shows the rule within minutes.
func demoResident(id, unit string) hub.Resident {
	hold := 2 * time.Minute
	return hub.Resident{ID: id, Unit: unit,
		Consent: hub.Consent{Rules: []string{"bed_exit", "room_door_at_night", "geofence_exit", "inactivity"},
			RecordedBy: "demo", RecordedAt: "2026-01-01", Note: "demo"},
		Plan: hub.PlanConfig{Rules: map[string]hub.RuleOverride{"bed_exit": {Hold: &hold}}}}
}

// demoConfig builds the demo hub's config: real per-gateway credentials
// (random, so the secure path is exercised), demo staff logins.
func demoConfig(data, httpAddr, mqttAddr string, world []demoGateway) (*hub.Config, map[string]string, error) {
	cfg := &hub.Config{DataDir: data, Demo: true, MQTT: hub.MQTTConfig{TCP: mqttAddr}, HTTP: hub.HTTPConfig{Address: httpAddr}}
	for _, u := range demoUsers {
		h, err := bcrypt.GenerateFromPassword([]byte(u.pass), bcrypt.MinCost)
		if err != nil {
			return nil, nil, err
		}
		cfg.Users = append(cfg.Users, hub.User{Username: u.user, Name: u.name, Role: u.role, PasswordHash: string(h)})
	}
	passwords := map[string]string{}
	sites := map[string]*hub.Site{}
	var order []string
	for _, dg := range world {
		s, ok := sites[dg.site]
		if !ok {
			s = &hub.Site{ID: dg.site, Night: hub.Night{Start: "22:00", End: "06:30"}}
			if dg.site == "solrosen" {
				s.Name, s.Night = "Solrosens demensboende", hub.Night{Start: "00:00", End: "00:00"}
			} else {
				s.Name = "Hemtjänst Norr"
			}
			// The simulator reports each device every few minutes, not
			// every minute as a real call button does: supervise at 30 min
			// so the demo shows real silences, not simulator gaps.
			s.Supervision = map[string]time.Duration{}
			for t := range hub.DefaultSupervision {
				s.Supervision[string(t)] = 30 * time.Minute
			}
			sites[dg.site] = s
			order = append(order, dg.site)
		}
		var rnd [12]byte
		_, _ = rand.Read(rnd[:])
		pw := hex.EncodeToString(rnd[:])
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			return nil, nil, err
		}
		passwords[dg.site+"/"+dg.id] = pw
		g := hub.Gateway{ID: dg.id, PasswordHash: string(h), Heartbeat: 10 * time.Second, Missed: 3}
		seen := map[string]bool{}
		for _, r := range s.Residents {
			seen[r.ID] = true
		}
		for _, d := range dg.devices {
			g.Devices = append(g.Devices, hub.Device{ID: d.ID, Type: d.Type, Resident: d.Resident, Unit: d.Unit, Room: d.Room, Exit: d.Exit})
			if d.Resident != "" && !seen[d.Resident] {
				seen[d.Resident] = true
				s.Residents = append(s.Residents, demoResident(d.Resident, d.Unit))
			}
		}
		s.Gateways = append(s.Gateways, g)
	}
	for _, id := range order {
		cfg.Sites = append(cfg.Sites, *sites[id])
	}
	decorateDemo(cfg)
	addDemoWatch(cfg)
	loc, _ := time.LoadLocation(hub.DefaultTimezone)
	cfg.Pilot.Trials = []pilot.Trial{demoTrial(time.Now(), loc)}
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("demo: built-in config invalid: %w", err)
	}
	return cfg, passwords, nil
}
