package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/format"
)

// A data directory from before versioning (a journal, no
// alarms.journal.format) opens with every transition and is marked with
// this version; one marked by a newer hub is refused with a message that
// says what to do, and the journal is left byte for byte as it was.
func TestJournalFormatOlderReadNewerRefused(t *testing.T) {
	dir := t.TempDir()
	j, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		j.Append(tr(fmt.Sprintf("A%d", i), alarm.ActAccept))
	}
	j.Close()
	fpath := filepath.Join(dir, FileName+".format")
	if b, _ := os.ReadFile(fpath); string(b) != fmt.Sprintf("%s %d\n", FormatKind, FormatVersion) {
		t.Fatalf("new journal's format file: %q", b)
	}

	os.Remove(fpath) // as an older hub left it
	j2, ts, err := Open(dir, Options{})
	if err != nil || len(ts) != 5 {
		t.Fatalf("journal from before versioning: %d transitions, %v", len(ts), err)
	}
	j2.Close()
	if _, err := os.Stat(fpath); err != nil {
		t.Fatalf("older journal not marked with this version: %v", err)
	}

	os.WriteFile(fpath, []byte(fmt.Sprintf("%s %d\n", FormatKind, FormatVersion+1)), 0o640)
	before, _ := os.ReadFile(filepath.Join(dir, FileName))
	_, _, err = Open(dir, Options{})
	if !errors.Is(err, format.ErrNewer) || !strings.Contains(err.Error(), "newer vaka") || !strings.Contains(err.Error(), "restore a backup") {
		t.Fatalf("newer journal: err %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, FileName))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused newer journal was changed")
	}
}
