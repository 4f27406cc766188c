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

// Any content of a version file, damaged or hostile, gives a version or a
// clear error; a file that is refused is left exactly as it was, so an
// operator can see what was there.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"vaka-journal 1\n", "vaka-journal 3\n", "vaka-spool 1\n", "", "vaka-journal -1", "vaka-journal 99999999999999999999", "\x00\xff garbage"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		log := filepath.Join(t.TempDir(), "x.journal")
		if err := os.WriteFile(log+".format", b, 0o640); err != nil {
			t.Fatal(err)
		}
		v, err := Check(log, "vaka-journal", 2)
		after, _ := os.ReadFile(log + ".format")
		switch {
		case err != nil:
			if string(after) != string(b) {
				t.Fatalf("refused %q but changed it to %q", b, after)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes: the file's content must not flood the log", len(err.Error()))
			}
		case v < 0 || v > 2:
			t.Fatalf("accepted version %d from %q", v, b)
		case string(after) != "vaka-journal 2\n":
			t.Fatalf("accepted %q but recorded %q", b, after)
		}
	})
}
