package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A small config type with nested lists, like the hub's.
type tDevice struct {
	ID   string `yaml:"id"`
	Type string `yaml:"type"`
	Exit bool   `yaml:"exit"`
}

type tGateway struct {
	ID        string        `yaml:"id"`
	Heartbeat time.Duration `yaml:"heartbeat"`
	Missed    int           `yaml:"missed"`
	Devices   []tDevice     `yaml:"devices"`
}

type tSite struct {
	ID       string            `yaml:"id"`
	Tags     map[string]string `yaml:"tags"`
	Gateways []tGateway        `yaml:"gateways"`
}

type tConfig struct {
	Name  string  `yaml:"name"`
	Debug bool    `yaml:"debug"`
	Sites []tSite `yaml:"sites"`
}

func (c *tConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, Errorf("name", "missing"))
	}
	for i, s := range c.Sites {
		if s.ID == "" {
			errs = append(errs, Errorf(Field("sites", i, "id"), "missing"))
		}
		for j, g := range s.Gateways {
			if g.Missed < 0 {
				errs = append(errs, Errorf(Field("sites", i, "gateways", j, "missed"), "must be at least 1"))
			}
			for k, d := range g.Devices {
				switch d.Type {
				case "door_sensor", "personal_trigger":
				default:
					errs = append(errs, Errorf(Field("sites", i, "gateways", j, "devices", k, "type"), "unknown device type"))
				}
			}
		}
	}
	// A non-field error is reported too, without a line.
	if c.Debug && c.Name == "plain" {
		errs = append(errs, errors.New("debug is not allowed here"))
	}
	return errors.Join(errs...)
}

const good = `name: test
sites:
  - id: s1
    tags: {floor: "2"}
    gateways:
      - id: gw-a
        heartbeat: 30s
        devices:
          - {id: d1, type: door_sensor, exit: true}
      - id: gw-b
        missed: 3
        devices:
          - id: d2
            type: personal_trigger
`

func TestDecodeGood(t *testing.T) {
	var c tConfig
	if err := Decode("hub.yaml", []byte(good), &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "test" || len(c.Sites) != 1 || len(c.Sites[0].Gateways) != 2 ||
		c.Sites[0].Gateways[0].Heartbeat != 30*time.Second || !c.Sites[0].Gateways[0].Devices[0].Exit ||
		c.Sites[0].Gateways[1].Devices[0].Type != "personal_trigger" || c.Sites[0].Tags["floor"] != "2" {
		t.Errorf("decoded %+v", c)
	}
}

// edit replaces one exact substring of good, which must be there.
func edit(t *testing.T, old, new string) []byte {
	t.Helper()
	if strings.Count(good, old) != 1 {
		t.Fatalf("%q is not in the test config exactly once", old)
	}
	return []byte(strings.Replace(good, old, new, 1))
}

func TestDecodeErrorsAreLocated(t *testing.T) {
	const secret = "hunter2-Secretsson"
	for _, tc := range []struct {
		name string
		data []byte
		want []string // each error's exact text prefix, in order
	}{
		{"unknown top-level key", edit(t, "name: test\n", "name: test\ncolour: red\n"),
			[]string{"hub.yaml:2: field colour: unknown field"}},
		{"unknown nested key", edit(t, "        missed: 3\n", "        missed: 3\n        password: "+secret+"\n"),
			[]string{"hub.yaml:12: field sites.0.gateways.1.password: unknown field"}},
		{"unknown key in flow mapping", edit(t, "exit: true}", "exit: true, colour: red}"),
			[]string{"hub.yaml:9: field sites.0.gateways.0.devices.0.colour: unknown field"}},
		{"unknown key in a nested list", edit(t, "            type: personal_trigger\n", "            type: personal_trigger\n            colour: "+secret+"\n"),
			[]string{"hub.yaml:15: field sites.0.gateways.1.devices.0.colour: unknown field"}},
		{"wrong type: text for number", edit(t, "missed: 3", "missed: "+secret),
			[]string{"hub.yaml:11: field sites.0.gateways.1.missed: wrong type: got text, want a number"}},
		{"wrong type: bad duration", edit(t, "heartbeat: 30s", "heartbeat: 30 sek"),
			[]string{"hub.yaml:7: field sites.0.gateways.0.heartbeat: wrong type: got text, want a duration like 30s or 5m"}},
		{"wrong type: text for bool", edit(t, "name: test\n", "name: test\ndebug: "+secret+"\n"),
			[]string{"hub.yaml:2: field debug: wrong type: got text, want true/false"}},
		{"wrong type: mapping for list", []byte("name: x\nsites: {a: 1}\n"),
			[]string{"hub.yaml:2: field sites: "}},
		// In a flow mapping every key is on one line: the error must name
		// the key whose value is wrong, not the first key of the line.
		{"wrong type in flow mapping", edit(t, "exit: true}", "exit: "+secret+"}"),
			[]string{"hub.yaml:9: field sites.0.gateways.0.devices.0.exit: wrong type: got text, want true/false"}},
		{"wrong type, short value, in flow mapping", edit(t, "exit: true}", "exit: maybe}"),
			[]string{"hub.yaml:9: field sites.0.gateways.0.devices.0.exit: wrong type: got text, want true/false"}},
		{"equal wrong values on one line each named", edit(t, "exit: true}", "exit: x}\n      - {id: g2, missed: x, heartbeat: x}"),
			[]string{"hub.yaml:9: field sites.0.gateways.0.devices.0.exit: wrong type",
				"hub.yaml:10: field sites.0.gateways.1.missed: wrong type: got text, want a number",
				"hub.yaml:10: field sites.0.gateways.1.heartbeat: wrong type: got text, want a duration"}},
		{"two errors in file order", edit(t, "missed: 3", "missed: x\n        colour: red"),
			[]string{"hub.yaml:11: field sites.0.gateways.1.missed: wrong type", "hub.yaml:12: field sites.0.gateways.1.colour: unknown field"}},
		{"YAML syntax", edit(t, "  - id: s1\n", "  - id: s1\n   bad: [\n"),
			[]string{"hub.yaml:"}},
		{"tab indentation", []byte("name: x\nsites:\n\t- id: s\n"),
			[]string{"hub.yaml:3: invalid YAML: "}},
		{"empty file", []byte(""), []string{"hub.yaml:1: file is empty"}},
		{"only a comment", []byte("# nothing\n"), []string{"hub.yaml:1: file is empty"}},
		{"top level is a list", []byte("\n- a\n- b\n"), []string{"hub.yaml:2: top level must be a mapping of keys"}},
		{"top level is a scalar", []byte("hello\n"), []string{"hub.yaml:1: top level must be a mapping of keys"}},
		{"too large", append([]byte("name: x\n#"), make([]byte, MaxSize)...), []string{"hub.yaml: file is larger than"}},

		// Validate's FieldErrors get the line of their field.
		{"validate: missing top-level field", edit(t, "name: test\n", "debug: false\n"),
			[]string{"hub.yaml:1: field name: missing"}},
		{"validate: nested list path", edit(t, "type: personal_trigger", "type: dorr"),
			[]string{"hub.yaml:14: field sites.0.gateways.1.devices.0.type: unknown device type"}},
		{"validate: flow mapping path", edit(t, "type: door_sensor", "type: dorr"),
			[]string{"hub.yaml:9: field sites.0.gateways.0.devices.0.type: unknown device type"}},
		{"validate: missing field gets the parent's line", edit(t, "            type: personal_trigger\n", ""),
			[]string{"hub.yaml:13: field sites.0.gateways.1.devices.0.type: unknown device type"}},
		{"validate: several, in order", edit(t, "missed: 3", "missed: -1\n        devices_x: 1"),
			[]string{"hub.yaml:12: field sites.0.gateways.1.devices_x: unknown field"}},
		{"validate: several fields", []byte("name: \"\"\nsites:\n  - id: \"\"\n    gateways:\n      - {id: g, missed: -2}\n"),
			[]string{"hub.yaml:1: field name: missing", "hub.yaml:3: field sites.0.id: missing", "hub.yaml:5: field sites.0.gateways.0.missed: must be at least 1"}},
		{"validate: error without a field", edit(t, "name: test\n", "name: plain\ndebug: true\n"),
			[]string{"hub.yaml: debug is not allowed here"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c tConfig
			err := Decode("hub.yaml", tc.data, &c)
			if err == nil {
				t.Fatal("accepted")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T, want config.Errors", err)
			}
			if len(es) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(es), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(es[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, es[i].Error(), w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "Secretsson") {
				t.Errorf("error echoes a value: %v", err)
			}
		})
	}
}

func TestErrorFormatting(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 3, Field: "a.b", Msg: "bad"}, "f:3: field a.b: bad"},
		{Error{File: "f", Field: "a", Msg: "bad"}, "f: field a: bad"},
		{Error{File: "f", Line: 1, Msg: "bad"}, "f:1: bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
	es := Errors{{File: "f", Line: 1, Msg: "a"}, {File: "f", Line: 2, Msg: "b"}}
	if es.Error() != "f:1: a\nf:2: b" {
		t.Errorf("%q", es.Error())
	}
	if Field("sites", 0, "gateways", 12, "id") != "sites.0.gateways.12.id" || Field() != "" {
		t.Error("Field")
	}
	fe := Errorf("x.y", "n=%d", 3)
	var f *FieldError
	if !errors.As(fe, &f) || f.Field != "x.y" || f.Msg != "n=3" || fe.Error() != "x.y: n=3" {
		t.Errorf("Errorf: %#v", fe)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(p, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	var c tConfig
	if err := Load(p, &c); err != nil || c.Name != "test" {
		t.Fatalf("load: %v %+v", err, c)
	}
	if err := os.WriteFile(p, edit(t, "missed: 3", "missed: x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Load(p, &tConfig{})
	if err == nil || !strings.HasPrefix(err.Error(), p+":11: field sites.0.gateways.1.missed") {
		t.Errorf("error %v does not name %s and its line", err, p)
	}
	err = Load(filepath.Join(dir, "missing.yaml"), &tConfig{})
	if err == nil || !strings.HasPrefix(err.Error(), "config: ") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzDecode: the loader never panics on any input, and its errors are
// always located in the named file.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("name: [\n"))
	f.Add([]byte("sites:\n  - {id: s, gateways: [{id: g, devices: [{id: d, type: x, exit: y}]}]}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("name: !!binary x\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c tConfig
		err := Decode("hub.yaml", data, &c)
		if err == nil {
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %T %v is not config.Errors", err, err)
		}
		for _, e := range es {
			if e.File != "hub.yaml" || !strings.HasPrefix(e.Error(), "hub.yaml") {
				t.Fatalf("error not located in the file: %q", e.Error())
			}
		}
	})
}

// Locate gives errors found after loading, against facts from outside the
// file, the same file:line: field form as Validate's.
func TestLocate(t *testing.T) {
	data := []byte("id: avd-a\ndevices:\n  - {id: d1, type: door_sensor}\n  - id: d2\n    type: personal_trigger\n")
	if err := Locate("gw.yaml", data, nil); err != nil {
		t.Fatalf("nil error located as %v", err)
	}
	err := Locate("gw.yaml", data, errors.Join(Errorf("devices.1", "d2: not paired"), Errorf("devices.0", "d1: no definition")))
	want := "gw.yaml:4: field devices.1: d2: not paired\ngw.yaml:3: field devices.0: d1: no definition"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if err := Locate("gw.yaml", []byte("a: [\n"), Errorf("a", "x")); err == nil || !strings.Contains(err.Error(), "gw.yaml") {
		t.Errorf("invalid YAML: %v", err)
	}
}
