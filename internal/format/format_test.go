package format

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "x.journal")
	read := func() string { b, _ := os.ReadFile(log + ".format"); return string(b) }

	// No file: a log from before versioning, version 0; marked current.
	if v, err := Check(log, "vaka-journal", 2); err != nil || v != 0 || read() != "vaka-journal 2\n" {
		t.Fatalf("missing: %d, %v, file %q", v, err, read())
	}
	// Current: read as it is.
	if v, err := Check(log, "vaka-journal", 2); err != nil || v != 2 {
		t.Fatalf("current: %d, %v", v, err)
	}
	// Older: read, then marked with the newer version.
	os.WriteFile(log+".format", []byte("vaka-journal 1\n"), 0o640)
	if v, err := Check(log, "vaka-journal", 2); err != nil || v != 1 || read() != "vaka-journal 2\n" {
		t.Fatalf("older: %d, %v, file %q", v, err, read())
	}
	// Newer: refused, with what to do, and left as it was.
	os.WriteFile(log+".format", []byte("vaka-journal 3\n"), 0o640)
	v, err := Check(log, "vaka-journal", 2)
	if !errors.Is(err, ErrNewer) || v != 3 || !strings.Contains(err.Error(), "reads up to 2") || read() != "vaka-journal 3\n" {
		t.Fatalf("newer: %d, %v, file %q", v, err, read())
	}
	for _, bad := range []string{"vaka-spool 1\n", "vaka-journal\n", "vaka-journal x\n", "vaka-journal -1\n", ""} {
		os.WriteFile(log+".format", []byte(bad), 0o640)
		if _, err := Check(log, "vaka-journal", 2); err == nil || errors.Is(err, ErrNewer) {
			t.Errorf("%q: err %v, want a refusal that is not ErrNewer", bad, err)
		}
		if read() != bad {
			t.Errorf("%q: a refused format file was changed to %q", bad, read())
		}
	}
}
