package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHubProfileNeedsHubProcess(t *testing.T) {
	o := options{Mode: "rate", Rate: 100, Duration: time.Second, Gateways: 1, AlarmEvery: 1, Peer: peerVaka, Gen: genRaw, HubProfile: "/tmp/x.prof"}
	if err := o.check(); err == nil || !strings.Contains(err.Error(), "-hub-cpuprofile needs -hub-bin") {
		t.Fatalf("check() = %v, want the -hub-bin error", err)
	}
	stop, err := startHubProfile(options{}, 0)
	if err != nil || stop() != nil {
		t.Fatalf("without -hub-cpuprofile: %v", err)
	}
}

// -hub-cpuprofile: the hub process (a real `vaka hub`) writes a CPU
// profile of the measured phase, and the run itself is unaffected.
func TestIntegrationHubCPUProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the vaka binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vaka")
	if out, err := exec.Command("go", "build", "-o", bin, "../vaka").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	prof := filepath.Join(dir, "hub.prof")
	o := options{Mode: "rate", Rate: 1000, Duration: time.Second, Gateways: 2, AlarmEvery: 1,
		Peer: peerVaka, Gen: genRaw, HubBin: bin, HubProfile: prof}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	res, err := runBench(o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != o.N || res.Lost != 0 || res.Aborted != "" {
		t.Fatalf("received %d of %d, lost %d (%s)", res.Received, o.N, res.Lost, res.Aborted)
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatalf("no hub profile: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a pprof profile: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("nanoseconds")) {
		t.Fatal("the profile has no CPU sample type")
	}
}
