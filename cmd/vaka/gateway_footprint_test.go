package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/internal/testenv"
)

// BenchmarkIntegrationGatewayFootprint runs a `vaka gateway` process with
// 20 simulated sensors and the disk spool against a Mosquitto on loopback,
// and measures its resident memory (VmRSS sampled every second, VmHWM at
// the end, from /proc/<pid>/status) and CPU (utime+stime from
// /proc/<pid>/stat over the wall time). It reports the figures; the budget
// (RSS ≤ 25 MB, CPU ≤ 1 % of a core) is checked by the report generator
// (`make bench-gateway`, cmd/vaka-benchdoc), which fails when it is
// exceeded. One run is VAKA_BENCH_GATEWAY long (default 60s) after 5 s of
// start-up: run it with -benchtime 1x.
func BenchmarkIntegrationGatewayFootprint(b *testing.B) {
	d := 60 * time.Second
	if v := os.Getenv("VAKA_BENCH_GATEWAY"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			b.Fatalf("VAKA_BENCH_GATEWAY=%q: want a positive duration such as 60s", v)
		}
	}
	bin := filepath.Join(b.TempDir(), "vaka")
	// The gateway's build (make build-pi): without the hub's NATS
	// JetStream redundancy, which a gateway never runs and whose code alone
	// costs about 4 MB of resident memory.
	if out, err := exec.Command("go", "build", "-tags", "nocluster", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var worst footprint
	for range b.N {
		f := measureGateway(b, bin, d)
		worst.peakRSSKB = max(worst.peakRSSKB, f.peakRSSKB)
		worst.hwmKB = max(worst.hwmKB, f.hwmKB)
		worst.cpuPct = max(worst.cpuPct, f.cpuPct)
		worst.ticks = max(worst.ticks, f.ticks)
		worst.seconds = max(worst.seconds, f.seconds)
	}
	b.ReportMetric(float64(worst.peakRSSKB)/1024, "rss-peak-MB")
	b.ReportMetric(float64(worst.hwmKB)/1024, "hwm-MB")
	b.ReportMetric(worst.cpuPct, "cpu-pct")
	b.ReportMetric(float64(worst.ticks), "cpu-ticks")
	b.ReportMetric(worst.seconds, "measured-s")
	b.ReportMetric(20, "sensors")
}

type footprint struct {
	peakRSSKB, hwmKB int64
	cpuPct           float64
	ticks            int64
	seconds          float64
}

func measureGateway(b *testing.B, bin string, d time.Duration) footprint {
	b.Helper()
	mq := testenv.LookPath(b, "mosquitto")
	dir := b.TempDir()
	addr := testenv.FreeAddr(b)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n", port)), 0o600)
	broker := exec.Command(mq, "-c", conf)
	if err := broker.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { broker.Process.Kill(); broker.Wait() }()

	var devs strings.Builder
	for i := 1; i <= 6; i++ {
		r := fmt.Sprintf("r-%04x", 0xa000+i)
		fmt.Fprintf(&devs, "  - {id: sang-%d, driver: sim, type: bed_monitor, resident: %s, unit: avd-a, room: \"%d\"}\n", i, r, i)
		fmt.Fprintf(&devs, "  - {id: knapp-%d, driver: sim, type: personal_trigger, resident: %s, unit: avd-a, room: \"%d\"}\n", i, r, i)
		fmt.Fprintf(&devs, "  - {id: dorr-%d, driver: sim, type: door_sensor, resident: %s, unit: avd-a, room: \"%d\"}\n", i, r, i)
	}
	devs.WriteString("  - {id: pir-korridor, driver: sim, type: occupancy_detector, unit: avd-a, room: korridor}\n")
	devs.WriteString("  - {id: dorr-entre, driver: sim, type: door_sensor, unit: avd-a, room: entre, exit: true}\n")
	gwCfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(gwCfg, []byte(fmt.Sprintf(`site: solrosen
id: avd-a
broker: {url: "tcp://%s"}
heartbeat: 30s
spool: {dir: %s}
devices:
%ssim: {scenarios: [night_wander, call_button, bed_exit_no_return], interval: 40s, first: 2s, telemetry_interval: 20s, seed: 1}
`, addr, filepath.Join(dir, "spool"), devs.String())), 0o600)

	gw := exec.Command(bin, "gateway", "--config", gwCfg)
	logf, _ := os.Create(filepath.Join(dir, "gateway.log"))
	gw.Stdout, gw.Stderr = logf, logf
	if err := gw.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { gw.Process.Signal(syscall.SIGTERM); gw.Wait() }()
	pid := gw.Process.Pid
	time.Sleep(5 * time.Second) // start-up
	cpu0, at0 := cpuTicks(b, pid), time.Now()
	var peakRSS int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
		peakRSS = max(peakRSS, statusKB(b, pid, "VmRSS"))
	}
	cpu1, at1 := cpuTicks(b, pid), time.Now()
	hwm := statusKB(b, pid, "VmHWM")
	const hz = 100 // USER_HZ on Linux
	secs := at1.Sub(at0).Seconds()
	log, _ := os.ReadFile(filepath.Join(dir, "gateway.log"))
	if !strings.Contains(string(log), "connected to broker") {
		b.Fatalf("the gateway never connected to its broker; its log:\n%s", log)
	}
	return footprint{peakRSSKB: peakRSS, hwmKB: hwm, cpuPct: float64(cpu1-cpu0) / hz / secs * 100, ticks: cpu1 - cpu0, seconds: secs}
}

func statusKB(t testing.TB, pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func cpuTicks(t testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14 utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15 stime
	return ut + st
}
