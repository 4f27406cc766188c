package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// writeSimGatewayConfig writes, in dir, the config of the gateway that
// writeHubConfig's hub knows (solrosen/avd-a, gw-secret): its two call
// buttons knapp-12 and knapp-14 simulated, spooling to spool. sim is the
// simulator's settings (YAML flow mapping), so each test picks its own
// timing and seed.
func writeSimGatewayConfig(t *testing.T, dir, mqttAddr, spool, sim string) string {
	t.Helper()
	path := filepath.Join(dir, "gateway.yaml")
	cfg := fmt.Sprintf(`site: solrosen
id: avd-a
broker: {url: "tcp://%s", username: solrosen/avd-a, password: gw-secret}
heartbeat: 1s
spool_dir: %s
devices:
  - {id: knapp-12, driver: sim, type: personal_trigger, resident: r-7f3a, unit: avd-a, room: "12"}
  - {id: knapp-14, driver: sim, type: personal_trigger, resident: r-22b1, unit: avd-a, room: "14"}
sim: %s
`, mqttAddr, spool, sim)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGatewayProcess starts `vaka gateway --config cfg`, its log to
// stderr (nil: discarded). A process the test has not waited for is
// killed when the test ends.
func startGatewayProcess(t *testing.T, bin, cfg string, stderr io.Writer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "gateway", "--config", cfg)
	cmd.Stderr = stderr
	startProcess(t, cmd)
	return cmd
}

// startProcess starts cmd; if the test has not waited for it by its end,
// it is killed then (by its own PID) and waited for.
func startProcess(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
}
