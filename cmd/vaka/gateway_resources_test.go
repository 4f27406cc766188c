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

// TestGatewayResources runs a `vaka gateway` process with 20 simulated
// sensors and the disk spool against a Mosquitto on loopback, and measures
// its resident memory (VmRSS, VmHWM) and CPU (utime+stime from
// /proc/<pid>/stat) over the run. Budget: RSS ≤ 25 MB, CPU ≤ 1 % of a core.
// Opt in, it takes a minute: VAKA_BENCH_GATEWAY=60s (see
// docs/benchmarks-gateway.md).
func TestGatewayResources(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("VAKA_BENCH_GATEWAY"))
	if err != nil || d <= 0 {
		t.Skip("set VAKA_BENCH_GATEWAY=60s to measure the gateway's memory and CPU")
	}
	bin := buildVaka(t)
	mq := testenv.LookPath(t, "mosquitto")
	dir := t.TempDir()
	addr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n", port)), 0o600)
	broker := exec.Command(mq, "-c", conf)
	if err := broker.Start(); err != nil {
		t.Fatal(err)
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
		t.Fatal(err)
	}
	defer func() { gw.Process.Signal(syscall.SIGTERM); gw.Wait() }()
	pid := gw.Process.Pid
	time.Sleep(5 * time.Second) // start-up
	cpu0, at0 := cpuTicks(t, pid), time.Now()
	var peakRSS int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
		peakRSS = max(peakRSS, statusKB(t, pid, "VmRSS"))
	}
	cpu1, at1 := cpuTicks(t, pid), time.Now()
	hwm := statusKB(t, pid, "VmHWM")
	const hz = 100 // USER_HZ on Linux
	cpuPct := float64(cpu1-cpu0) / hz / at1.Sub(at0).Seconds() * 100
	log, _ := os.ReadFile(filepath.Join(dir, "gateway.log"))
	published := strings.Count(string(log), "connected to broker")
	t.Logf("gateway, 20 simulated sensors, %s: VmRSS peak %.1f MB, VmHWM %.1f MB, CPU %.3f %% of a core (%d ticks); connects %d",
		d, float64(peakRSS)/1024, float64(hwm)/1024, cpuPct, cpu1-cpu0, published)
	if hwm > 25*1024 {
		t.Errorf("VmHWM %d kB over the 25 MB budget", hwm)
	}
	if cpuPct > 1 {
		t.Errorf("CPU %.2f %% over the 1 %% budget", cpuPct)
	}
}

func statusKB(t *testing.T, pid int, key string) int64 {
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

func cpuTicks(t *testing.T, pid int) int64 {
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
