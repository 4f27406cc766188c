package hub

import (
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
)

// A bad runtime section is refused with the file, line and field.
func TestRuntimeConfigErrorsNameFileLineField(t *testing.T) {
	yaml := `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
runtime:
  gogc: 20
  memory_limit: lots
`
	var cfg Config
	err := config.Decode("hub.yaml", []byte(yaml), &cfg)
	for _, want := range []string{
		"hub.yaml:5: field runtime.gogc: must be between 50 and 1000",
		`hub.yaml:6: field runtime.memory_limit: not a size: "lots"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	err = config.Decode("hub.yaml", []byte(strings.Replace(strings.Replace(yaml, "20", "300", 1), "lots", "64MiB", 1)), &cfg)
	if want := "hub.yaml:6: field runtime.memory_limit: must be at least 128MiB"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q:\n%v", want, err)
	}
	err = config.Decode("hub.yaml", []byte(strings.Replace(strings.Replace(yaml, "20", "300", 1), "lots", "2GiB", 1)), &cfg)
	if err != nil {
		t.Fatalf("good runtime section refused: %v", err)
	}
	if cfg.Runtime.GOGC != 300 || cfg.Runtime.MemoryLimit != "2GiB" {
		t.Fatalf("runtime = %+v", cfg.Runtime)
	}
}

// What is put in force: the config first, then the environment, then the
// hub's defaults, the limit never above three quarters of the machine.
func TestRuntimeSettings(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	const gib = 1 << 30
	for _, c := range []struct {
		name    string
		r       RuntimeConfig
		env     func(string) string
		machine uint64
		want    GCSettings
	}{
		{"defaults", RuntimeConfig{}, env(), 16 * gib, GCSettings{DefaultGOGC, DefaultMemoryLimit}},
		{"unknown machine", RuntimeConfig{}, env(), 0, GCSettings{DefaultGOGC, DefaultMemoryLimit}},
		{"small machine", RuntimeConfig{}, env(), 1 * gib, GCSettings{DefaultGOGC, 768 << 20}},
		{"tiny machine", RuntimeConfig{}, env(), 64 << 20, GCSettings{DefaultGOGC, minMemoryLimit}},
		{"environment", RuntimeConfig{}, env("GOGC", "150", "GOMEMLIMIT", "900MiB"), 16 * gib, GCSettings{-1, -1}},
		{"config over environment", RuntimeConfig{GOGC: 400, MemoryLimit: "3GiB"}, env("GOGC", "150", "GOMEMLIMIT", "900MiB"), 16 * gib, GCSettings{400, 3 * gib}},
		{"off", RuntimeConfig{MemoryLimit: "off"}, env(), 16 * gib, GCSettings{DefaultGOGC, math.MaxInt64}},
		{"explicit above the machine", RuntimeConfig{MemoryLimit: "2GiB"}, env(), 1 * gib, GCSettings{DefaultGOGC, 2 * gib}},
	} {
		if got := c.r.Settings(c.env, c.machine); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for s, want := range map[string]int64{"1536MiB": 1536 << 20, "2GiB": 2 << 30, "512MB": 512e6, "1073741824": 1 << 30,
		"1 GiB": 1 << 30, "7B": 7, "3KiB": 3 << 10, "1TiB": 1 << 40} {
		if got, err := parseByteSize(s); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "lots", "-1GiB", "1.5GiB", "GiB", "9999999999TiB", "1 MiB MiB"} {
		if _, err := parseByteSize(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// The size parser never panics and never gives a negative size.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"1536MiB", "2GiB", "off", "", "-1", "9223372036854775807", "9223372036854775807KiB", "1 B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseByteSize(s); err == nil && n < 0 {
			t.Fatalf("%q: %d", s, n)
		}
	})
}

// The machine's memory is read where /proc/meminfo exists.
func TestMachineMemory(t *testing.T) {
	if m := machineMemory(); m == 0 {
		t.Skip("no /proc/meminfo here")
	} else if m < 64<<20 {
		t.Fatalf("machine memory %d bytes", m)
	}
}

// ApplyRuntime puts the settings in force for the process (restored after).
func TestApplyRuntime(t *testing.T) {
	gogc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gogc)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(gogc); debug.SetMemoryLimit(limit) })
	ApplyRuntime(RuntimeConfig{GOGC: 300, MemoryLimit: "2GiB"}, slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(-1); got != 300 {
		t.Errorf("GOGC in force %d, want 300", got)
	}
	debug.SetGCPercent(300)
	if got := debug.SetMemoryLimit(-1); got != 2<<30 {
		t.Errorf("memory limit in force %d, want %d", got, 2<<30)
	}
}
