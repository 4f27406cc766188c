package hub

import (
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/vaka-care/vaka/config"
)

// Access is how staff get into a home or unit: the key box, the door
// code, a note ("ring twice, the dog is friendly"). It is sensitive: sent
// only to the roles in http.show_access_to, never logged, never in the
// journal, InfluxDB, pilot exports or /metrics. Config errors about it
// name the field, never the value.
type Access struct {
	KeyBox   string `yaml:"key_box"`
	DoorCode string `yaml:"door_code"`
	Note     string `yaml:"note"`
}

// LogValue keeps the door code out of a log line that logs the value.
func (Access) LogValue() slog.Value { return slog.StringValue("[access redacted]") }

// String likewise for fmt.
func (Access) String() string { return "[access redacted]" }

// GoString likewise for %#v.
func (Access) GoString() string { return "[access redacted]" }

// FloorPlan is a unit's own floor-plan image (PNG, JPEG or SVG), served
// by the hub to staff, with the latitude/longitude box its edges stand for.
type FloorPlan struct {
	Image string  `yaml:"image"` // relative to the config file's directory
	South float64 `yaml:"south"`
	West  float64 `yaml:"west"`
	North float64 `yaml:"north"`
	East  float64 `yaml:"east"`

	path string // Image resolved against the config's directory
}

// Path is the image's file path.
func (f *FloorPlan) Path() string {
	if f.path != "" {
		return f.path
	}
	return f.Image
}

// resolveFloorPlans makes floor-plan paths absolute (from Include).
func (c *Config) resolveFloorPlans(dir string) {
	for i := range c.Sites {
		for k := range c.Sites[i].Units {
			if fp := c.Sites[i].Units[k].FloorPlan; fp != nil && fp.Image != "" {
				fp.path = fp.Image
				if !filepath.IsAbs(fp.path) {
					fp.path = filepath.Join(dir, fp.path)
				}
			}
		}
	}
}

const maxAccessLen = 200

func (a *Access) check(field string) []error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"key_box", a.KeyBox}, {"door_code", a.DoorCode}, {"note", a.Note}} {
		// Never echo the value: the error goes to the log.
		if !utf8.ValidString(f.v) || strings.ContainsAny(f.v, "\r\n") || len(f.v) > maxAccessLen {
			errs = append(errs, config.Errorf(field+"."+f.name, "must be one line of at most %d characters", maxAccessLen))
		}
	}
	if a.KeyBox == "" && a.DoorCode == "" && a.Note == "" {
		errs = append(errs, config.Errorf(field, "empty: set key_box, door_code or note, or leave access out"))
	}
	return errs
}

// validateWhere checks the names, addresses, access and map settings.
func (c *Config) validateWhere() []error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, config.Errorf(field, format, a...)) }
	if c.HTTP.ShowAccessTo == nil {
		c.HTTP.ShowAccessTo = []string{RoleStaff}
	}
	for i, r := range c.HTTP.ShowAccessTo {
		if r != RoleStaff && r != RoleLead && r != RoleAdmin {
			add(config.Field("http", "show_access_to", i), "must be staff, lead or admin")
		}
	}
	if t := c.HTTP.MapTiles; t != "" {
		u, err := url.Parse(strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0", "{s}", "a").Replace(t))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("http.map_tiles", "must be an http(s) URL template, e.g. https://tiles.kommun.se/{z}/{x}/{y}.png")
		} else if !strings.Contains(t, "{z}") || !strings.Contains(t, "{x}") || !strings.Contains(t, "{y}") {
			add("http.map_tiles", "must contain {z}, {x} and {y}")
		}
	}
	for i, s := range c.Sites {
		f := func(parts ...any) string { return config.Field(append([]any{"sites", i}, parts...)...) }
		for k, u := range s.Units {
			if u.Access != nil {
				errs = append(errs, u.Access.check(f("units", k, "access"))...)
			}
			for room := range u.Rooms {
				if u.Rooms[room] == "" {
					add(f("units", k, "rooms", room), "empty name")
				}
			}
			if fp := u.FloorPlan; fp != nil {
				switch ext := strings.ToLower(filepath.Ext(fp.Image)); {
				case fp.Image == "":
					add(f("units", k, "floor_plan", "image"), "missing: a PNG, JPEG or SVG file")
				case ext != ".png" && ext != ".jpg" && ext != ".jpeg" && ext != ".svg":
					add(f("units", k, "floor_plan", "image"), "must be a .png, .jpg or .svg file")
				}
				if !(fp.South < fp.North && fp.West < fp.East) || fp.South < -90 || fp.North > 90 || fp.West < -180 || fp.East > 180 {
					add(f("units", k, "floor_plan"), "south < north and west < east (degrees) must give the area the image shows")
				}
			}
		}
		for k, r := range s.Residents {
			if r.Access != nil {
				errs = append(errs, r.Access.check(f("residents", k, "access"))...)
			}
		}
		for j, g := range s.Gateways {
			for k, d := range g.Devices {
				if len(d.Placement) > maxAccessLen || len(d.PlacementEN) > maxAccessLen {
					add(f("gateways", j, "devices", k, "placement"), "at most %d characters", maxAccessLen)
				}
			}
		}
	}
	return errs
}
