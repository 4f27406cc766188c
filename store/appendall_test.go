package store

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/record"
)

// A raise and its notify step go to the journal in one write(2), with
// consecutive sequence numbers and their own journal positions, and read
// back (Read, and a reopen) exactly as two Appends would have written them.
func TestAppendAllWritesOnceInOrder(t *testing.T) {
	dir := t.TempDir()
	j, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Append(tr("A0", alarm.ActAccept)); err != nil {
		t.Fatal(err)
	}
	raise := tr("A1", alarm.ActRaise)
	raise.Raise = &alarm.Alarm{ID: "A1", Kind: alarm.KindCall, Rule: "call", Site: "s", State: alarm.Raised, Note: "<&>"}
	notify := tr("A1", alarm.ActNotify)
	notify.To, notify.Receiver = []string{"natt1"}, "natt"
	w0 := j.Writes.Load()
	if err := j.AppendAll([]*alarm.Transition{raise, notify}); err != nil {
		t.Fatal(err)
	}
	if n := j.Writes.Load() - w0; n != 1 {
		t.Fatalf("%d writes for a raise and its notify, want 1", n)
	}
	if raise.Seq != 2 || notify.Seq != 3 {
		t.Fatalf("seqs %d, %d; want 2, 3", raise.Seq, notify.Seq)
	}
	if raise.Rec <= 0 || notify.Rec <= raise.Rec {
		t.Fatalf("journal positions %d, %d", raise.Rec, notify.Rec)
	}
	got, err := j.Read([]int64{notify.Rec, raise.Rec})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Action != alarm.ActNotify || got[0].Seq != 3 || got[1].Action != alarm.ActRaise || got[1].Raise == nil || got[1].Raise.Note != "<&>" {
		t.Fatalf("read back %+v", got)
	}
	j.Close()

	// The bytes are what json.Marshal makes (HTML escaped), one record a line.
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	for i, tt := range []*alarm.Transition{raise, notify} {
		want, _ := json.Marshal(tt)
		if got := lines[i+1]; !bytes.Equal(got, record.Append(nil, want)[:len(got)]) {
			t.Fatalf("line %d:\n got %s\nwant %s", i+2, got, want)
		}
	}
	j2, ts, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if len(ts) != 3 || ts[1].Action != alarm.ActRaise || ts[2].Action != alarm.ActNotify || ts[2].To[0] != "natt1" {
		t.Fatalf("reopened: %+v", ts)
	}
	if err := j2.Append(tr("A1", alarm.ActAccept)); err != nil {
		t.Fatal(err)
	}
}

// A batch the journal refuses (closed) gets no sequence numbers.
func TestAppendAllRefusedKeepsNothing(t *testing.T) {
	j, _, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	a, b := tr("A1", alarm.ActRaise), tr("A1", alarm.ActNotify)
	if err := j.AppendAll([]*alarm.Transition{a, b}); err == nil {
		t.Fatal("closed journal took a batch")
	}
	if a.Seq != 0 || b.Seq != 0 || a.Rec != 0 {
		t.Fatalf("refused batch numbered: %d %d rec %d", a.Seq, b.Seq, a.Rec)
	}
}
