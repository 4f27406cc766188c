package hub

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
)

const inventoryYAML = `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: region
    night: {start: "22:00", end: "06:30"}
    units: [{id: hemtjanst-norr}, {id: avd-a}]
    devices_file: knappar.csv
    gateways:
      - id: gw1
        devices:
          - {id: dorr-1, type: door_sensor, unit: avd-a, exit: true}
      - id: gw2
`

func writeInventory(t *testing.T, csv string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hub.yaml"), []byte(inventoryYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "knappar.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A site's devices come from the alarm provider's CSV export as well as
// the YAML: columns in any order, a spreadsheet's byte-order mark, comment
// lines, yes/no in Swedish, and the file path relative to the config.
func TestDevicesFileAddsRowsToGateways(t *testing.T) {
	dir := writeInventory(t, "\ufeffId,Gateway,Type,Resident,Unit,Room,Exit\n"+
		"# exported 2026-11-20 from the alarm register\n"+
		"knapp-1,gw1,personal_trigger,r-0001,hemtjanst-norr,,\n"+
		"knapp-2, gw2 ,0003,r-0002,hemtjanst-norr,12,nej\n"+
		"dorr-2,gw2,door_sensor,,avd-a,,ja\n")
	var cfg Config
	if err := config.Load(filepath.Join(dir, "hub.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	gws := cfg.Sites[0].Gateways
	if len(gws[0].Devices) != 2 || len(gws[1].Devices) != 2 {
		t.Fatalf("gw1 %d devices, gw2 %d devices, want 2 and 2", len(gws[0].Devices), len(gws[1].Devices))
	}
	k2 := gws[1].Devices[0]
	if k2.ID != "knapp-2" || k2.Type != "0003" || k2.Resident != "r-0002" || k2.Room != "12" || k2.Exit {
		t.Errorf("knapp-2 read as %+v", k2)
	}
	if d := gws[1].Devices[1]; d.ID != "dorr-2" || !d.Exit {
		t.Errorf("dorr-2 read as %+v, want an exit door", d)
	}
	if got := cfg.IncludedFiles(); len(got) != 1 || got[0] != filepath.Join(dir, "knappar.csv") {
		t.Errorf("included files %v", got)
	}
	// The rules engine knows them: a press on knapp-1 is a known device.
	rc := cfg.RuleConfig()
	if d := rc.Sites["region"].Devices["knapp-1"]; d == nil || d.Resident != "r-0001" || d.Gateway != "gw1" {
		t.Errorf("rules device knapp-1 = %+v", d)
	}
}

// Every problem names the CSV file, its line and the column; a device that
// clashes with the YAML is reported at its CSV line.
func TestDevicesFileErrorsNameFileLineColumn(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		want      []string
	}{
		{"unknown gateway, type, unit, duplicate", "gateway,id,type,unit\n" +
			"gw1,knapp-1,personal_trigger,\n" +
			"gw9,knapp-2,personal_trigger,\n" +
			"gw2,knapp-3,knappen,\n" +
			"gw2,knapp-4,personal_trigger,hemtjanst-syd\n" +
			"gw2,dorr-1,door_sensor,\n" +
			"gw2,knapp-1,personal_trigger,\n",
			[]string{
				"knappar.csv:3: field gateway: no gateway \"gw9\"",
				"knappar.csv:4: field type: unknown device type \"knappen\"",
				"knappar.csv:5: field unit: unit \"hemtjanst-syd\" is not listed",
				"knappar.csv:6: field id: duplicate device \"dorr-1\"",
				"knappar.csv:7: field id: duplicate device \"knapp-1\"",
			}},
		{"radio", "gateway,id,type,radio\n" +
			"gw2,knapp-5,personal_trigger,zigbee\n" +
			"gw2,knapp-6,personal_trigger,lora\n",
			[]string{"knappar.csv:3: field radio: unknown radio \"lora\""}},
		{"header", "gateway,id,kind,gateway\n", []string{
			"knappar.csv:1: field kind: unknown column",
			"knappar.csv:1: field gateway: column named twice",
			"knappar.csv:1: field type: required column missing",
		}},
		{"field count and a name as resident", "gateway,id,type,resident\n" +
			"gw1,knapp-1,personal_trigger\n" +
			"gw1,knapp-2,personal_trigger,Anna Andersson\n" +
			"gw1,knapp-3,personal_trigger,r-3,extra\n",
			[]string{
				"knappar.csv:2: wrong number of fields",
				"knappar.csv:3: field resident: must be a pseudonymous id",
				"knappar.csv:4: wrong number of fields",
			}},
		{"exit", "gateway,id,type,exit\ngw1,dorr-9,door_sensor,kanske\n", []string{
			"knappar.csv:2: field exit: want true/false or ja/nej, not \"kanske\"",
		}},
		{"empty", "", []string{"knappar.csv:1: empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeInventory(t, tc.csv)
			var cfg Config
			err := config.Load(filepath.Join(dir, "hub.yaml"), &cfg)
			if err == nil {
				t.Fatal("broken inventory accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "Anna") {
				t.Errorf("the error echoes a resident's name:\n%v", err)
			}
		})
	}
	// A missing file is reported at the YAML line that names it.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hub.yaml"), []byte(inventoryYAML), 0o600)
	var cfg Config
	err := config.Load(filepath.Join(dir, "hub.yaml"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "hub.yaml:8: field sites.0.devices_file:") {
		t.Errorf("missing devices_file: %v", err)
	}
}

// The inventory is outside input (an export from another system): no
// input makes the reader panic, and every error names the file.
func FuzzReadDevices(f *testing.F) {
	f.Add([]byte("gateway,id,type\ngw1,k1,personal_trigger\n"))
	f.Add([]byte("\ufeffid,gateway,type,exit\nk1,gw1,door_sensor,ja\n# c\n"))
	f.Add([]byte("gateway,id,type\n\"gw1,k1\n"))
	f.Add([]byte("gateway;id;type\ngw1;k1;x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := Site{ID: "s", Gateways: []Gateway{{ID: "gw1"}}}
		err := s.ReadDevices("f.csv", strings.NewReader(string(data)))
		for _, e := range flattenErrs(err) {
			var ce *config.Error
			if !errors.As(e, &ce) || ce.File != "f.csv" {
				t.Fatalf("error without its file: %v", e)
			}
		}
		for _, d := range s.Gateways[0].Devices {
			if d.from != "f.csv" || d.line < 2 {
				t.Fatalf("device %q without its line", d.ID)
			}
		}
	})
}

func flattenErrs(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrs(e)...)
		}
		return out
	}
	return []error{err}
}
