package service_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/service"
)

// startWatched starts a hub on the config at path, as `vaka hub` does,
// and has it check the file (and what it includes) every 20 ms.
func startWatched(t *testing.T, path string, opts ...service.Option) *service.Hub {
	t.Helper()
	var cfg hub.Config
	if err := config.Load(path, &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		s.Close()
	})
	s.WatchConfig(ctx, path, 20*time.Millisecond)
	return s
}

// A config reload that fails keeps the old rules in force; a good one
// takes effect without a restart.
func TestIntegrationHotReloadKeepsOldRulesOnError(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.yaml")
	good := hubYAML(t, filepath.Join(dir, "data"))
	withResident := strings.Replace(string(good), "    gateways:\n      - id: avd-a",
		"    residents:\n      - {id: r-7f3a, unit: avd-a, consent: {rules: [bed_exit], recorded_by: ssk, recorded_at: \"2026-01-01\"}, plan: {rules: {bed_exit: {hold: 7m}}}}\n    gateways:\n      - id: avd-a", 1)
	if err := os.WriteFile(path, []byte(withResident), 0o600); err != nil {
		t.Fatal(err)
	}
	// Parts that follow reloads (the pilot exporter) hear of good ones only.
	var reloaded atomic.Int32
	s := startWatched(t, path, service.WithReloader(func(*hub.Config) { reloaded.Add(1) }))
	base := "http://" + s.HTTPAddr()

	hold := func() string {
		x, err := s.Hub.Engine().Explain("solrosen", "r-7f3a", time.Now())
		if err != nil {
			return "err: " + err.Error()
		}
		for _, r := range x.Rules {
			if r.Rule == rules.RuleBedExit {
				return r.HoldText
			}
		}
		return "missing"
	}
	if h := hold(); h != "7m0s" {
		t.Fatalf("initial bed_exit hold %s", h)
	}
	waitMetric := func(sample string, want float64) {
		t.Helper()
		for i := 0; i < 200; i++ {
			if testenv.Metric(t, base+"/metrics", sample) >= want {
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
		t.Fatalf("%s never reached %v", sample, want)
	}
	// A typo: the reload fails, the old rules stay.
	bad := strings.Replace(withResident, "hold: 7m", "hodl: 3m", 1)
	os.WriteFile(path, []byte(bad), 0o600)
	waitMetric(`vaka_config_reloads_total{result="failed"}`, 1)
	if h := hold(); h != "7m0s" {
		t.Fatalf("after a failed reload the hold is %s, want the old 7m0s", h)
	}
	if n := reloaded.Load(); n != 0 {
		t.Fatalf("a failed reload reached %d reloaders", n)
	}
	// A good change takes effect.
	os.WriteFile(path, []byte(strings.Replace(withResident, "hold: 7m", "hold: 3m", 1)), 0o600)
	waitMetric(`vaka_config_reloads_total{result="ok"}`, 1)
	if h := hold(); h != "3m0s" {
		t.Fatalf("after a good reload the hold is %s, want 3m0s", h)
	}
	if n := reloaded.Load(); n != 1 {
		t.Fatalf("a good reload reached the reloader %d times", n)
	}
}

// A change to a site's devices_file (the CSV inventory) reloads the
// config like a change to the YAML: a newly registered button is known.
func TestIntegrationHotReloadDevicesFile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.yaml")
	inv := filepath.Join(dir, "inventory.csv")
	yaml := strings.Replace(string(hubYAML(t, filepath.Join(dir, "data"))),
		"  - id: solrosen\n", "  - id: solrosen\n    devices_file: inventory.csv\n", 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inv, []byte("gateway,id,type,resident\navd-a,knapp-99,personal_trigger,r-99\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startWatched(t, path)
	known := func(dev string) bool { _, ok := s.Hub.Engine().Lookup("solrosen", dev); return ok }
	if !known("knapp-99") || known("knapp-100") {
		t.Fatalf("at start: knapp-99 known %v, knapp-100 known %v", known("knapp-99"), known("knapp-100"))
	}
	if err := os.WriteFile(inv, []byte("gateway,id,type,resident\navd-a,knapp-99,personal_trigger,r-99\navd-a,knapp-100,personal_trigger,r-100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.HTTPAddr()
	for i := 0; i < 200 && testenv.Metric(t, base+"/metrics", `vaka_config_reloads_total{result="ok"}`) < 1; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if !known("knapp-100") {
		t.Fatal("knapp-100 added to the devices file is not known after the reload")
	}
}
