package service

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
)

// The where index keeps only the devices with a placement (a call button
// without one costs its frame no lookup among the region's devices), and
// the words are the same either way: a device without a placement gets its
// type's words, one with a placement in one language only gets it there.
func TestWherePlacementsIndexOnlyPlacedDevices(t *testing.T) {
	y := whereYAML + "          - {id: knapp-10, type: personal_trigger, unit: hem-1, placement: vid sängen}\n"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hub.yaml"), []byte(y), 0o600); err != nil {
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
	pl := p.sites["hem-norr"].placements
	if len(pl) != 2 || pl["klocka-1"] != (placement{"på handleden", "on the wrist"}) || pl["knapp-10"] != (placement{"vid sängen", ""}) {
		t.Fatalf("placements %+v, want klocka-1 and knapp-10 only", pl)
	}
	for _, c := range []struct {
		dev    string
		sv, en string
	}{
		{"knapp-9", "larmknapp", "call button"},
		{"knapp-10", "larmknapp vid sängen", "call button"},
	} {
		w := p.where(&alarm.Alarm{Kind: alarm.KindCall, Site: "hem-norr", Unit: "hem-1", Device: c.dev, DeviceType: event.PersonalTrigger}, false)
		if w == nil || w.DeviceText == nil || w.DeviceText.SV != c.sv || w.DeviceText.EN != c.en {
			t.Errorf("%s: device text %+v, want %q / %q", c.dev, w, c.sv, c.en)
		}
	}
}
