package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/store"
)

// The real hub, given a data directory a newer hub wrote, refuses to
// start, says why and what to do, and leaves the journal alone.
func TestHubRefusesNewerDataDir(t *testing.T) {
	bin := buildVaka(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o750)
	journal := []byte("crafted by a newer hub\n")
	os.WriteFile(filepath.Join(data, store.FileName), journal, 0o640)
	os.WriteFile(filepath.Join(data, store.FileName+".format"), fmt.Appendf(nil, "%s %d\n", store.FormatKind, store.FormatVersion+1), 0o640)
	cfg := writeHubConfigDevices(t, dir, data, testenv.FreeAddr(t), testenv.FreeAddr(t),
		"          - {id: knapp-12, type: personal_trigger, resident: r-7f3a, unit: avd-a, room: \"12\"}\n")
	out, err := exec.Command(bin, "hub", "--config", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("hub started on a newer data dir:\n%s", out)
	}
	if !strings.Contains(string(out), "written by a newer vaka") || !strings.Contains(string(out), fmt.Sprintf("reads up to %d", store.FormatVersion)) {
		t.Fatalf("refusal does not say why:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(data, store.FileName)); string(b) != string(journal) {
		t.Fatal("the newer journal was changed")
	}
}
