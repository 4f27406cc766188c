package hub

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
)

// Errors in names, addresses, door information and map settings name the
// file, line and field, and never repeat a door code.
func TestWhereConfigErrorsNameFileLineField(t *testing.T) {
	yaml := `demo: true
mqtt: {tcp: 127.0.0.1:0}
http:
  address: 127.0.0.1:0
  show_access_to: [staff, technician]
  map_tiles: "ftp://tiles.example/{z}/{x}/{y}.png"
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    units:
      - id: hem-1
        name: Gunnar Eks hem
        address: Björkvägen 4
        rooms: {hall: ""}
        access: {door_code: "SECRET-1234\nmore"}
        floor_plan: {image: plan.gif, south: 59.1, north: 59.0, west: 18.0, east: 18.1}
    residents:
      - id: r-a
        unit: hem-1
        access: {}
`
	var cfg Config
	err := config.Decode("hub.yaml", []byte(yaml), &cfg)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		"hub.yaml:5: field http.show_access_to.1: must be staff, lead or admin",
		"hub.yaml:6: field http.map_tiles: must be an http(s) URL template",
		"hub.yaml:14: field sites.0.units.0.rooms.hall: empty name",
		"hub.yaml:15: field sites.0.units.0.access.door_code: must be one line",
		"hub.yaml:16: field sites.0.units.0.floor_plan.image: must be a .png, .jpg or .svg file",
		"hub.yaml:16: field sites.0.units.0.floor_plan: south < north",
		"hub.yaml:20: field sites.0.residents.0.access: empty",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "SECRET-1234") {
		t.Errorf("the error repeats the door code:\n%v", err)
	}
	// The default: only staff see door information.
	ok := strings.NewReplacer("  show_access_to: [staff, technician]\n", "", "ftp:", "https:", `rooms: {hall: ""}`, `rooms: {hall: Hallen}`,
		`"SECRET-1234\nmore"`, "SECRET-1234", "plan.gif, south: 59.1, north: 59.0", "plan.png, south: 59.0, north: 59.1",
		"access: {}\n", "access: {key_box: i brevlådan}\n").Replace(yaml)
	cfg = Config{}
	if err := config.Decode("hub.yaml", []byte(ok), &cfg); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.HTTP.ShowAccessTo) != "[staff]" {
		t.Errorf("show_access_to default %v", cfg.HTTP.ShowAccessTo)
	}
	// A door code logged or printed by mistake is redacted.
	ac := *cfg.Sites[0].Units[0].Access
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "access", ac)
	if s := b.String() + fmt.Sprint(ac) + fmt.Sprintf("%v %+v %#v", ac, ac, ac); strings.Contains(s, "SECRET") {
		t.Errorf("door code printed: %s", s)
	}
}
