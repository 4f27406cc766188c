package hub

import (
	"bufio"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/vaka-care/vaka/config"
)

// RuntimeConfig sets the Go garbage collector of the hub process
// (`runtime:` in the hub config; docs/config.md).
//
// Why not Go's defaults: in an all-alarm storm the GC was about a fifth of
// the care path's CPU. With GOGC=100 it runs whenever the heap has grown
// by its live size, which for a hub with a few hundred thousand devices
// and alarms means a cycle every second or two at 10,000 alarms/s. At
// DefaultGOGC (200) it runs half as often and costs about half the CPU
// (BenchmarkCareAlarmPath's gc-%, and the hub's gctrace in the ramp). The
// soft memory limit keeps that from costing memory where it matters: when
// the live heap is large (250,000 open alarms, ≈ 775 MiB live) the heap may
// grow to the limit and no further, which is about what GOGC=100 allowed
// it, so a storm's peak memory is no higher than with Go's defaults.
type RuntimeConfig struct {
	// GOGC is the GC's growth percentage (Go's GOGC): the heap may grow by
	// this share of the live heap before the next cycle. 0 (unset):
	// DefaultGOGC, or the GOGC environment variable when it is set.
	GOGC int `yaml:"gogc"`
	// MemoryLimit is the soft memory limit (Go's GOMEMLIMIT), e.g.
	// "1536MiB" or "2GiB"; "off" for none. Empty: DefaultMemoryLimit, at
	// most three quarters of the machine's memory, or the GOMEMLIMIT
	// environment variable when it is set.
	MemoryLimit string `yaml:"memory_limit"`
}

// The GC's defaults for the hub (RuntimeConfig says why).
const (
	DefaultGOGC        = 200
	DefaultMemoryLimit = 1536 << 20
)

// GC bounds. Below 50 the GC runs more often than Go's own default has
// any reason to; above 1000 a hub's heap may grow tenfold between cycles.
// A limit below 128 MiB would be below the live heap of a small hub, and
// the GC would then run without pause.
const (
	minGOGC        = 50
	maxGOGC        = 1000
	minMemoryLimit = 128 << 20
)

func (r RuntimeConfig) validate() []error {
	var errs []error
	if r.GOGC != 0 && (r.GOGC < minGOGC || r.GOGC > maxGOGC) {
		errs = append(errs, config.Errorf("runtime.gogc", "must be between %d and %d (0 or absent: %d)", minGOGC, maxGOGC, DefaultGOGC))
	}
	if r.MemoryLimit != "" && r.MemoryLimit != "off" {
		n, err := parseByteSize(r.MemoryLimit)
		switch {
		case err != nil:
			errs = append(errs, config.Errorf("runtime.memory_limit", "%v", err))
		case n < minMemoryLimit:
			errs = append(errs, config.Errorf("runtime.memory_limit", "must be at least 128MiB (or \"off\")"))
		}
	}
	return errs
}

// parseByteSize reads "1536MiB", "2GiB", "512MB", "1073741824" (bytes).
func parseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("not a size: %q (a whole number with B, KiB, MiB, GiB or TiB, e.g. 1536MiB)", s)
	}
	return n * mult, nil
}

// GCSettings is what RuntimeConfig puts in force; a negative field is
// left as the environment set it.
type GCSettings struct {
	GOGC        int   // -1: left to the GOGC environment variable
	MemoryLimit int64 // -1: left to GOMEMLIMIT; math.MaxInt64: none
}

// Settings resolves r against the environment (getenv) and the machine's
// memory in bytes (0: unknown). What the config sets wins; what it leaves
// out is the hub's default unless the environment sets it.
func (r RuntimeConfig) Settings(getenv func(string) string, machine uint64) GCSettings {
	s := GCSettings{GOGC: r.GOGC, MemoryLimit: -1}
	if s.GOGC == 0 {
		s.GOGC = DefaultGOGC
		if getenv("GOGC") != "" {
			s.GOGC = -1
		}
	}
	switch r.MemoryLimit {
	case "off":
		s.MemoryLimit = math.MaxInt64
	case "":
		if getenv("GOMEMLIMIT") == "" {
			s.MemoryLimit = DefaultMemoryLimit
			if q := int64(machine / 4 * 3); machine > 0 && q < s.MemoryLimit {
				s.MemoryLimit = max(q, minMemoryLimit)
			}
		}
	default:
		s.MemoryLimit, _ = parseByteSize(r.MemoryLimit) // validated
	}
	return s
}

// ApplyRuntime puts the hub's GC settings in force for this process and
// logs them. Call it once, at start, in the hub process only (in-process
// tests keep Go's defaults).
func ApplyRuntime(r RuntimeConfig, log *slog.Logger) GCSettings {
	s := r.Settings(os.Getenv, machineMemory())
	if s.GOGC >= 0 {
		debug.SetGCPercent(s.GOGC)
	}
	if s.MemoryLimit >= 0 {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	gogc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gogc)
	limit := debug.SetMemoryLimit(-1)
	lim := "none"
	if limit != math.MaxInt64 {
		lim = strconv.FormatInt(limit>>20, 10) + "MiB"
	}
	log.Info("hub: garbage collector", "gogc", gogc, "memory_limit", lim)
	return s
}

// machineMemory is MemTotal from /proc/meminfo in bytes; 0 where unknown.
func machineMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
