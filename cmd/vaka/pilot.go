package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/pilot"
	"github.com/vaka-care/vaka/pilot/influx"
	"github.com/vaka-care/vaka/pilot/local"
	"github.com/vaka-care/vaka/pilot/web"
	"github.com/vaka-care/vaka/service"
)

// pilotParts is the pilot evidence wiring: the exporter (observer), the
// embedded store, InfluxDB when configured, and the dashboards.
type pilotParts struct {
	exp   *influx.Exporter
	store *local.Store
	model *pilot.Model
	key   []byte
}

// startPilot builds the pilot parts for cfg (validated) and returns the
// service options that add them to the hub. Call attach after Start.
func startPilot(cfg *hub.Config, log *slog.Logger) (*pilotParts, []service.Option, error) {
	dir := filepath.Join(cfg.DataDir, "pilot")
	if cfg.DataDir == "" {
		return nil, nil, nil // no data dir (a demo without one): no pilot evidence
	}
	key, err := pseudonymKey(cfg.Pilot.PseudonymKeyFile, filepath.Join(dir, "pseudonym.key"))
	if err != nil {
		return nil, nil, err
	}
	store, err := local.Open(filepath.Join(dir, "records.jsonl"), log)
	if err != nil {
		return nil, nil, err
	}
	p := &pilotParts{store: store, key: key, model: pilotModel(cfg, key)}
	eo := influx.Options{Model: p.model, Local: store, Logger: log.With("component", "pilot")}
	var src web.Source = store
	var client *influx.Client
	if ic := cfg.Pilot.Influx; ic != nil {
		client, err = influx.Dial(ic)
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		sp, err := influx.OpenSpool(filepath.Join(dir, "spool"), int64(cfg.Pilot.SpoolMaxMB)<<20)
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		eo.Spool, eo.Sink, src = sp, client, client
	}
	p.exp = influx.New(eo)
	opts := []service.Option{
		service.WithObserver(p.exp),
		service.WithRoutes(func(h *hub.Hub) []httpapi.Route {
			// The dashboards use the model the exporter tags with now.
			return web.Routes(web.Options{Source: src, Logger: log,
				Model: p.exp.Model})
		}),
		// A reload retags later points with the new trials and arms.
		service.WithReloader(func(c *hub.Config) { p.exp.SetModel(pilotModel(c, key)) }),
		service.WithCloser(func() error {
			err := p.exp.Close()
			if client != nil {
				client.Close()
			}
			return errors.Join(err, store.Close())
		}),
	}
	return p, opts, nil
}

// pilotModel compiles the pilot section of cfg, with each arm's device
// count (for device uptime) defaulting to the devices registered in the
// arm's units or to its residents. cfg is not changed.
func pilotModel(cfg *hub.Config, key []byte) *pilot.Model {
	c := cfg.Pilot
	c.Trials = slices.Clone(c.Trials)
	for i := range c.Trials {
		t := &c.Trials[i]
		t.Arms = slices.Clone(t.Arms)
		for k := range t.Arms {
			if a := &t.Arms[k]; a.DeviceCount == 0 {
				a.DeviceCount = armDevices(cfg, a)
			}
		}
	}
	return pilot.NewModel(&c, cfg.Loc, key)
}

// armDevices counts the registered devices in an arm's units or of its
// residents (a device without a unit is in its resident's unit).
func armDevices(cfg *hub.Config, a *pilot.Arm) int {
	n := 0
	for _, s := range cfg.Sites {
		unitOf := map[string]string{}
		for _, r := range s.Residents {
			unitOf[r.ID] = r.Unit
		}
		in := func(d hub.Device) bool {
			unit := d.Unit
			if unit == "" {
				unit = unitOf[d.Resident]
			}
			return (unit != "" && slices.Contains(a.Units, s.ID+"/"+unit)) ||
				(d.Resident != "" && slices.Contains(a.Residents, s.ID+"/"+d.Resident))
		}
		for _, g := range s.Gateways {
			for _, d := range g.Devices {
				if in(d) {
					n++
				}
			}
		}
		for _, d := range s.Trackers { // a tracker-only home's devices count too
			if in(d) {
				n++
			}
		}
	}
	return n
}

// attach raises pilot export drops as technical alarms and exports the
// exporter's counters.
func (p *pilotParts) attach(s *service.Hub) {
	if p == nil {
		return
	}
	s.Hub.AddDropSource(p.exp.Dropped)
	g := func(name, help string, f func(influx.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(p.exp.Stats()) })
	}
	for _, c := range []prometheus.Collector{
		g("vaka_pilot_dropped_total", "Pilot data lost anywhere in the export (raised as hub_integrity).", func(s influx.Stats) float64 {
			return float64(s.QueueDropped + s.SpoolDropped + s.SpoolCorrupt + s.StoreDropped + s.Rejected)
		}),
		g("vaka_pilot_points_written_total", "Points InfluxDB has taken.", func(s influx.Stats) float64 { return float64(s.Written) }),
		g("vaka_pilot_write_errors_total", "Failed InfluxDB writes (retried).", func(s influx.Stats) float64 { return float64(s.WriteErrors) }),
		g("vaka_pilot_spool_bytes", "Bytes waiting in the spool for InfluxDB.", func(s influx.Stats) float64 { return float64(s.SpoolBytes) }),
		g("vaka_pilot_queue_length", "Items in the exporter's in-memory queue.", func(s influx.Stats) float64 { return float64(s.Queued) }),
	} {
		_ = s.Registry().Register(c)
	}
}

// pseudonymKey reads the HMAC key, or creates one (32 random bytes, 0600).
func pseudonymKey(configured, generated string) ([]byte, error) {
	if configured != "" {
		b, err := os.ReadFile(configured)
		if err != nil {
			return nil, fmt.Errorf("pilot: pseudonym_key_file: %w", err)
		}
		if len(b) < 16 {
			return nil, fmt.Errorf("pilot: pseudonym_key_file %s: at least 16 bytes needed", configured)
		}
		return b, nil
	}
	if b, err := os.ReadFile(generated); err == nil && len(b) >= 16 {
		return b, nil
	}
	if err := os.MkdirAll(filepath.Dir(generated), 0o750); err != nil {
		return nil, fmt.Errorf("pilot: %w", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(generated, key, 0o600); err != nil {
		return nil, fmt.Errorf("pilot: %w", err)
	}
	return key, nil
}

// demoTrial is the demo's two-arm trial: the dementia unit with sensors
// against the home-care homes on the call button only, from eight weeks
// ago to four weeks ahead.
func demoTrial(now time.Time, loc *time.Location) pilot.Trial {
	n := now.In(loc)
	monday := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc)
	for monday.Weekday() != time.Monday {
		monday = monday.AddDate(0, 0, -1)
	}
	start := monday.AddDate(0, 0, -56)
	t := pilot.Trial{
		ID: "natt-sensorer", Title: "Sensorer mot larmknapp, natt",
		Need:       "Nattpersonalen väcker boende vid tillsynsrundor och hinner ändå inte se alla som behöver hjälp.",
		Hypothesis: "Säng- och dörrsensorer kan ersätta fysiska nattbesök utan fler missade eller sent kvitterade larm.",
		Start:      start.Format(time.DateOnly), End: monday.AddDate(0, 0, 28).Format(time.DateOnly),
		Arms: []pilot.Arm{
			// Device counts as the simulator has them (8 residents with a
			// button each, and a bed and a door sensor in the sensor arm).
			{ID: "sensors", Name: "Sensorer", Units: []string{"solrosen/unit-a"}, ResidentCount: 8, PlannedNightVisits: 2, DeviceCount: 24},
			{ID: "button", Name: "Bara larmknapp", Units: []string{"hemtjanst-norr/hem-1", "hemtjanst-norr/hem-2", "hemtjanst-norr/hem-3"},
				ResidentCount: 8, PlannedNightVisits: 2, DeviceCount: 8},
		},
		Baseline: "button",
		Criteria: []pilot.Criterion{
			{ID: "visits", Text: "Minst 30 % färre fysiska nattbesök", Metric: "night_visits_per_resident_night", Arm: "sensors", Op: pilot.OpReducedByPct, Value: 30, Baseline: "button"},
			{ID: "unaccepted", Text: "Ingen ökning av larm som inte kvitteras före eskalering", Metric: "unaccepted_share", Arm: "sensors", Op: pilot.OpNoRise, Value: 0, Baseline: "button"},
			{ID: "p90", Text: "p90 tid till kvittens ≤ 60 s", Metric: "p90_to_accept_s", Arm: "sensors", Op: pilot.OpAtMost, Value: 60},
			{ID: "tsa60", Text: "97,5 % kvitterade inom 60 s (TSA)", Metric: "accepted_within_60s_share", Arm: "sensors", Op: pilot.OpAtLeast, Value: 0.975},
			{ID: "uptime", Text: "Enheternas drifttid minst 99,5 %", Metric: "device_uptime", Arm: "sensors", Op: pilot.OpAtLeast, Value: 0.995},
			{ID: "detect", Text: "Tyst enhet upptäckt inom 15 min (p90)", Metric: "p90_to_detect_offline_s", Arm: "sensors", Op: pilot.OpAtMost, Value: 900, MinSamples: 5},
			{ID: "continue", Text: "Minst 85 % fortsätter med sensorerna", Metric: "continuation_rate", Arm: "sensors", Op: pilot.OpAtLeast, Value: 0.85, MinSamples: 8},
		},
	}
	// Consent records for the simulated residents, a few withdrawn
	// before today.
	t.Consent = pilot.SimConsent(&t, loc, monday, 2026)
	return t
}

// seedDemoTrial fills the embedded store with simulated weeks of the demo
// trial (deterministic seed), once per data dir.
func (p *pilotParts) seedDemoTrial(t *pilot.Trial, now time.Time) error {
	if p == nil {
		return nil
	}
	from, _ := t.Period(p.model.Loc)
	have, _ := p.store.Records(context.Background(), t.ID, from, now)
	if len(have) > 0 {
		return nil
	}
	n := now.In(p.model.Loc)
	today := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, p.model.Loc)
	d := pilot.SimulateData(t, from, today, p.model.Loc, 2026, p.model.Pseud)
	var recs []pilot.Record
	for _, r := range d.Alarms {
		if r.RaisedAt.Before(today) {
			recs = append(recs, r)
		}
	}
	var outs []pilot.Outage
	for _, o := range d.Outages {
		if o.DetectedAt.Before(today) {
			if o.RestoredAt.After(now) {
				o.RestoredAt = time.Time{} // still down
			}
			outs = append(outs, o)
		}
	}
	// Night visits replaced come from the supervision records (digital
	// look-ins standing in for the 2 planned visits a night), not from a
	// count: the sensor arm plans the same visits as the button arm.
	var ls []pilot.LookIn
	for _, l := range d.LookIns {
		if l.Planned.Before(today) {
			ls = append(ls, l)
		}
	}
	var vs []pilot.Visit
	for _, v := range d.Visits {
		if v.At.Before(today) {
			vs = append(vs, v)
		}
	}
	return errors.Join(p.store.Add(recs), p.store.AddOutages(outs), p.store.AddSupervision(ls, vs))
}

// close releases the parts when the hub did not start.
func (p *pilotParts) close() {
	if p != nil {
		p.exp.Close()
		p.store.Close()
	}
}
