package store

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/record"
)

// Supervision records share the journal with transitions: they come back
// from Records, never as transitions, and the sequence has no gap.
func TestRecordsBesideTransitions(t *testing.T) {
	dir := t.TempDir()
	j, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	old := now.Add(-10 * 24 * time.Hour)
	if err := j.Append(tr("A1", alarm.ActAccept)); err != nil {
		t.Fatal(err)
	}
	if err := j.AppendRecord("tillsyn", old, map[string]string{"wall": "23:00"}); err != nil {
		t.Fatal(err)
	}
	if err := j.AppendRecord("tillsyn", now, map[string]string{"wall": "02:00"}); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(tr("A2", alarm.ActAccept)); err != nil {
		t.Fatal(err)
	}
	if err := j.AppendRecord("", now, nil); err == nil {
		t.Error("record without a type accepted")
	}
	j.Close()

	j2, ts, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if len(ts) != 2 || ts[0].Alarm != "A1" || ts[1].Alarm != "A2" || ts[1].Seq != 4 {
		t.Fatalf("transitions %+v", ts)
	}
	if l := j2.Loss(); l.Corrupt != 0 || l.Torn != 0 || len(l.Damage) != 0 || l.New {
		t.Errorf("records read as loss: %+v", l)
	}
	recs := j2.Records()
	if len(recs) != 1 || recs[0].Seq != 3 || recs[0].Type != "tillsyn" || string(recs[0].Body) != `{"wall":"02:00"}` {
		t.Fatalf("records kept %+v (the 10-day-old one must be left out)", recs)
	}
	if again := j2.Records(); len(again) != 0 {
		t.Errorf("records handed out twice")
	}
	n := tr("A3", alarm.ActAccept)
	j2.Append(n)
	if n.Seq != 5 {
		t.Errorf("seq after records %d, want 5", n.Seq)
	}
	all, err := ReadRecords(dir, "tillsyn", old.Add(-time.Hour), now.Add(time.Hour))
	if err != nil || len(all) != 2 {
		t.Fatalf("ReadRecords: %d %v", len(all), err)
	}
	if some, _ := ReadRecords(dir, "tillsyn", now.Add(-time.Hour), now.Add(time.Hour)); len(some) != 1 {
		t.Errorf("ReadRecords range: %d", len(some))
	}
	if none, _ := ReadRecords(dir, "visit", old, now.Add(time.Hour)); len(none) != 0 {
		t.Errorf("ReadRecords type: %d", len(none))
	}

	// What a hub built before records saw: every line decodes as a
	// transition; a record is one of no alarm and no action (which its
	// replay skips), carrying its seq so the sequence stays whole.
	f, err := os.Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var seqs []uint64
	for i := 0; sc.Scan() && i < 100; i++ {
		body, err := record.Parse(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		var old alarm.Transition
		if err := json.Unmarshal(body, &old); err != nil {
			t.Fatalf("an old reader cannot decode line %d: %v", i+1, err)
		}
		if isRecord(body) && (old.Alarm != "" || old.Action != "" || old.Raise != nil || old.Subj != nil) {
			t.Errorf("a record looks like an alarm transition to an old reader: %+v", old)
		}
		seqs = append(seqs, old.Seq)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Errorf("old reader sees seq %v", seqs)
			break
		}
	}
}
