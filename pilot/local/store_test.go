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
