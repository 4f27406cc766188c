package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/internal/format"
)

// A spool written before versioning (no spool.log.format) is read whole by
// this gateway and marked with its version; a spool marked by a newer
// gateway is refused with what to do, and neither it nor its events are
// touched.
func TestSpoolFormatOlderReadNewerRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := s.Push(msg(i, false)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	fpath := filepath.Join(dir, spoolFile+".format")
	if b, _ := os.ReadFile(fpath); string(b) != fmt.Sprintf("%s %d\n", SpoolFormatKind, SpoolFormatVersion) {
		t.Fatalf("new spool's format file: %q", b)
	}

	// An older gateway's spool: the same lines, no format file.
	os.Remove(fpath)
	s2, err := OpenSpool(dir, 100)
	if err != nil {
		t.Fatalf("spool from before versioning: %v", err)
	}
	if got := fmt.Sprint(drain(s2)); got != "[boot-1 boot-2 boot-3]" {
		t.Fatalf("older spool read as %s", got)
	}
	s2.Close()
	if _, err := os.Stat(fpath); err != nil {
		t.Fatalf("older spool not marked with this version: %v", err)
	}

	// A newer gateway's spool.
	dir2 := t.TempDir()
	s3, _ := OpenSpool(dir2, 100)
	s3.Push(msg(1, false))
	s3.Close()
	newer := fmt.Sprintf("%s %d\n", SpoolFormatKind, SpoolFormatVersion+1)
	os.WriteFile(filepath.Join(dir2, spoolFile+".format"), []byte(newer), 0o640)
	before, _ := os.ReadFile(filepath.Join(dir2, spoolFile))
	_, err = OpenSpool(dir2, 100)
	if !errors.Is(err, format.ErrNewer) || !strings.Contains(err.Error(), "newer vaka") {
		t.Fatalf("newer spool: err %v, want a refusal naming a newer vaka", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir2, spoolFile))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused newer spool was changed")
	}
}
