package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/gateway"
	"github.com/vaka-care/vaka/internal/testenv"
)

// A gateway whose hub is down spools every event to disk; killed with
// SIGKILL and started again once the hub is back, it delivers every
// spooled event, and the hub accepts each exactly once.
func TestIntegrationGatewaySIGKILLSpoolDeliversExactlyOnce(t *testing.T) {
	bin := buildVaka(t)
	dir := t.TempDir()
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	hubCfg := writeHubConfig(t, dir, httpAddr, mqttAddr)
	spool := filepath.Join(dir, "spool")
	gwCfg := writeSimGatewayConfig(t, dir, mqttAddr, spool,
		"{scenarios: [call_button], interval: 1s, first: 100ms, telemetry_interval: 150ms, seed: 7}")
	runGW := func() *exec.Cmd { return startGatewayProcess(t, bin, gwCfg, nil) }
	// 1. Hub down: the gateway spools, then dies without warning.
	gw := runGW()
	time.Sleep(2500 * time.Millisecond)
	gw.Process.Signal(syscall.SIGKILL)
	gw.Wait()
	sp, err := gateway.OpenSpool(spool, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, id := range sp.IDs() {
		want[id] = true
	}
	maxSeq := sp.MaxSeq()
	sp.Close()
	if len(want) < 5 {
		t.Fatalf("only %d events spooled in 2.5 s", len(want))
	}

	// 2. Hub up, gateway restarted: everything arrives, once.
	startHubProcess(t, bin, hubCfg, httpAddr)
	gw2 := runGW()
	defer func() { gw2.Process.Signal(syscall.SIGTERM); gw2.Wait() }()
	got := map[string]int{}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		got = loggedEventIDs(t, filepath.Join(dir, "data", "events"))
		missing := 0
		for id := range want {
			if got[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The sequence survived the SIGKILL: the new run continues after the
	// highest number the killed run gave out.
	seqs := loggedEventSeqs(t, filepath.Join(dir, "data", "events"))
	if len(seqs) == 0 || maxSeq == 0 {
		t.Errorf("no sequence numbers to compare (hub log %d, spool max %d)", len(seqs), maxSeq)
	}
	for id, seq := range seqs {
		if !want[id] && seq <= maxSeq {
			t.Errorf("event %s after the restart reuses seq %d (killed run reached %d)", id, seq, maxSeq)
		}
	}
	for id := range want {
		switch got[id] {
		case 1:
		case 0:
			t.Errorf("spooled event %s never reached the hub", id)
		default:
			t.Errorf("spooled event %s accepted %d times", id, got[id])
		}
	}
}

// loggedEventIDs reads the hub's replay log: one line per accepted event.
func loggedEventIDs(t *testing.T, dir string) map[string]int {
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var e struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				out[e.ID]++
			}
		}
		fh.Close()
	}
	return out
}

func loggedEventSeqs(t *testing.T, dir string) map[string]uint64 {
	out := map[string]uint64{}
	files, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var e struct {
				ID  string `json:"id"`
				Seq uint64 `json:"seq"`
			}
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Seq > 0 {
				out[e.ID] = e.Seq
			}
		}
	}
	return out
}
