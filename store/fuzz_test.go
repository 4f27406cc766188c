package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// FuzzJournalOpen: whatever a bad disk leaves in the journal, Open never
// panics, and a transition appended after it reads back at the next open
// with no new loss found.
func FuzzJournalOpen(f *testing.F) {
	dir := f.TempDir()
	j, _, err := Open(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	lifecycle(f, j, 2)
	// A supervision record among the transitions (records.go).
	if err := j.AppendRecord("tillsyn", time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), map[string]string{"wall": "02:00"}); err != nil {
		f.Fatal(err)
	}
	lifecycle(f, j, 1)
	j.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, FileName))
	f.Add(seed)
	f.Add(seed[:len(seed)-5])
	f.Add(append(append([]byte{}, seed[:100]...), seed[130:]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName), data, 0o640)
		// SyncEachWrite: no group-commit window to wait out at Close.
		j, _, err := Open(dir, Options{SyncEachWrite: true})
		if err != nil {
			t.Fatal(err)
		}
		n := &alarm.Transition{Alarm: "Z", Action: alarm.ActAccept, At: at0, By: "natt1"}
		if err := j.Append(n); err != nil {
			t.Fatal(err)
		}
		j.Close()
		j2, ts, err := Open(dir, Options{SyncEachWrite: true})
		if err != nil {
			t.Fatal(err)
		}
		defer j2.Close()
		if l := j2.Loss(); l.New || l.Torn > 0 {
			t.Fatalf("new loss after a clean append: %s", l.String())
		}
		if last := ts[len(ts)-1]; last.Alarm != "Z" || last.Seq != n.Seq {
			t.Fatalf("appended transition not last: %+v", last)
		}
	})
}
