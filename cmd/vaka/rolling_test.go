package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/gateway"
	"github.com/vaka-care/vaka/internal/testenv"
)

// A rolling restart, as a package upgrade does it: the real hub restarted
// (SIGTERM, start) and then the real gateway, while the gateway's
// simulated devices keep sending. Every event the gateway numbered is in
// the hub's event log exactly once, or still in the gateway's spool
// waiting to be sent: nothing lost, nothing accepted twice.
func TestIntegrationRollingRestartLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the rolling restart test")
	}
	bin := buildVaka(t)
	dir := t.TempDir()
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	hubCfg := writeHubConfig(t, dir, httpAddr, mqttAddr)
	spool := filepath.Join(dir, "spool")
	gwCfg := writeSimGatewayConfig(t, dir, mqttAddr, spool,
		"{scenarios: [call_button], interval: 1s, first: 50ms, telemetry_interval: 100ms, seed: 11}")
	var gwLog bytes.Buffer
	runGW := func() *exec.Cmd { return startGatewayProcess(t, bin, gwCfg, &gwLog) }
	stop := func(c *exec.Cmd, what string) {
		t.Helper()
		c.Process.Signal(syscall.SIGTERM)
		if err := c.Wait(); err != nil {
			t.Fatalf("%s did not stop cleanly on SIGTERM: %v\ngateway log:\n%s", what, err, gwLog.String())
		}
	}

	hub := startHubProcess(t, bin, hubCfg, httpAddr)
	gw := runGW()
	time.Sleep(1500 * time.Millisecond)
	stop(hub, "hub") // the hub's upgrade: the gateway spools meanwhile
	time.Sleep(700 * time.Millisecond)
	hub = startHubProcess(t, bin, hubCfg, httpAddr)
	time.Sleep(1500 * time.Millisecond)
	stop(gw, "gateway") // the gateway's upgrade
	gw = runGW()
	time.Sleep(2 * time.Second)
	stop(gw, "gateway")
	time.Sleep(300 * time.Millisecond) // the hub's event log writes within ~100 ms
	stop(hub, "hub")

	sp, err := gateway.OpenSpool(spool, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}
	for _, id := range sp.IDs() {
		pending[id] = true
	}
	maxSeq := sp.MaxSeq()
	sp.Close()
	logged := loggedEventIDs(t, filepath.Join(dir, "data", "events"))
	seqs := loggedEventSeqs(t, filepath.Join(dir, "data", "events"))
	bySeq := map[uint64]string{}
	for id, s := range seqs {
		bySeq[s] = id
	}
	if maxSeq < 20 {
		t.Fatalf("only %d events numbered in ~6 s", maxSeq)
	}
	var missing []uint64
	for s := uint64(1); s <= maxSeq; s++ {
		if _, ok := bySeq[s]; !ok {
			missing = append(missing, s)
		}
	}
	// An event not in the hub's log must still be in the spool, to be sent
	// at the next start.
	if len(missing) > len(pending) {
		t.Errorf("%d numbered events are not in the hub's log and only %d are spooled: lost (first seqs %v)",
			len(missing), len(pending), missing[:min(5, len(missing))])
	}
	for id := range pending {
		if logged[id] > 0 {
			t.Logf("event %s is in the hub's log and still spooled: resent at the next start, answered as a duplicate", id)
		}
	}
	for id, n := range logged {
		if n != 1 {
			t.Errorf("event %s accepted %d times", id, n)
		}
	}
	t.Logf("%d events numbered, %d in the hub's log, %d still spooled, %d not in the log", maxSeq, len(logged), len(pending), len(missing))
}
