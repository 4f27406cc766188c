package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaka-care/vaka/pilot"
)

func TestStoreKeepsRecordsAcrossReopenAndCutsATornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pilot", "records.jsonl")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC)
	recs := []pilot.Record{
		{Alarm: "A2", Trial: "t", Arm: "a", Site: "s", Source: pilot.SrcBed, RaisedAt: at.Add(time.Hour), ToAccept: 30, ToPhone: pilot.Missing},
		{Alarm: "A1", Trial: "t", Arm: "a", Site: "s", Source: pilot.SrcButton, RaisedAt: at, ToAccept: 12.5, ToPhone: 0.8},
		{Alarm: "A3", Trial: "other", Site: "s", RaisedAt: at},
	}
	if err := s.Add(recs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`0badc0de {"alarm":"A9"`) // a write cut short by a power loss
	f.Close()
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, _ := s.Records(context.Background(), "t", at, at.Add(24*time.Hour))
	if len(got) != 2 || got[0].Alarm != "A1" || got[0].ToPhone != 0.8 || got[1].ToPhone != pilot.Missing || s.skipped != 1 {
		t.Fatalf("got %+v skipped %d", got, s.skipped)
	}
	if err := s.Add(recs[:1]); err != nil || s.Len() != 4 {
		t.Fatalf("append after repair: %v len %d", err, s.Len())
	}
}

// A last record cut just before its newline is whole: it is loaded, and it
// stays in the file for the next start (it used to be cut off after being
// loaded, and lost at the start after).
func TestStoreKeepsAWholeLastRecordWithoutNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.jsonl")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC)
	if err := s.Add([]pilot.Record{{Alarm: "A1", Trial: "t", RaisedAt: at}, {Alarm: "A2", Trial: "t", RaisedAt: at}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-1], 0o640)
	for start := 1; start <= 2; start++ {
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != 2+start-1 || s.skipped != 0 {
			t.Fatalf("start %d: %d records, %d skipped", start, s.Len(), s.skipped)
		}
		if err := s.Add([]pilot.Record{{Alarm: "A3", Trial: "t", RaisedAt: at}}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}
