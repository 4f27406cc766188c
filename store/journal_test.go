package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

func tr(id string, a alarm.Action) *alarm.Transition {
	return &alarm.Transition{Alarm: id, Action: a, At: time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC), By: "natt1"}
}

func TestReopenReturnsEveryTransitionInOrder(t *testing.T) {
	dir := t.TempDir()
	j, ts, err := Open(dir, Options{})
	if err != nil || len(ts) != 0 {
		t.Fatalf("open: %v %d", err, len(ts))
	}
	for i := 0; i < 50; i++ {
		if err := j.Append(tr(fmt.Sprintf("A%03d", i), alarm.ActAccept)); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	if err := j.Append(tr("late", alarm.ActAccept)); err == nil {
		t.Error("append after close succeeded")
	}
	j2, ts, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if len(ts) != 50 {
		t.Fatalf("%d transitions after reopen, want 50", len(ts))
	}
	for i, x := range ts {
		if x.Seq != uint64(i+1) || x.Alarm != fmt.Sprintf("A%03d", i) {
			t.Fatalf("transition %d = seq %d alarm %s", i, x.Seq, x.Alarm)
		}
	}
	// New appends continue the sequence.
	n := tr("A050", alarm.ActAccept)
	j2.Append(n)
	if n.Seq != 51 {
		t.Errorf("seq after reopen %d, want 51", n.Seq)
	}
}

// A power cut mid-write leaves half a record: it is cut, counted, and the
// journal goes on from a clean line.
func TestTornTailIsCutAndCounted(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := Open(dir, Options{})
	j.Append(tr("A1", alarm.ActAccept))
	j.Append(tr("A2", alarm.ActAccept))
	j.Close()
	path := filepath.Join(dir, FileName)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, []byte(`1a2b3c4d {"seq":3,"alarm":"A3","act`)...), 0o640)
	j2, ts, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || j2.Corrupt.Load() != 1 {
		t.Fatalf("%d transitions, %d corrupt; want 2 and 1", len(ts), j2.Corrupt.Load())
	}
	j2.Append(tr("A3", alarm.ActAccept))
	j2.Close()
	_, ts, _ = Open(dir, Options{})
	if len(ts) != 3 || ts[2].Alarm != "A3" {
		t.Fatalf("after the cut: %+v", ts)
	}
}

// A corrupt record in the middle is skipped and counted; the good records
// after it survive.
func TestCorruptMiddleRecordSkipped(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := Open(dir, Options{})
	for _, id := range []string{"A1", "A2", "A3"} {
		j.Append(tr(id, alarm.ActAccept))
	}
	j.Close()
	path := filepath.Join(dir, FileName)
	b, _ := os.ReadFile(path)
	// Flip a byte inside the second record's JSON.
	lines := 0
	for i := range b {
		if b[i] == '\n' {
			lines++
			if lines == 1 {
				b[i+20] ^= 0x20
				break
			}
		}
	}
	os.WriteFile(path, b, 0o640)
	j2, ts, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if len(ts) != 2 || ts[0].Alarm != "A1" || ts[1].Alarm != "A3" || j2.Corrupt.Load() != 1 {
		t.Fatalf("got %d transitions (corrupt %d): %+v", len(ts), j2.Corrupt.Load(), ts)
	}
}

func TestConcurrentAppendsGetUniqueSequentialSeqs(t *testing.T) {
	for _, sync_ := range []bool{false, true} {
		dir := t.TempDir()
		j, _, _ := Open(dir, Options{SyncEachWrite: sync_})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					j.Append(tr(fmt.Sprintf("G%d-%d", g, i), alarm.ActAccept))
				}
			}()
		}
		wg.Wait()
		j.Close()
		_, ts, _ := Open(dir, Options{})
		if len(ts) != 400 {
			t.Fatalf("%d transitions, want 400", len(ts))
		}
		for i, x := range ts {
			if x.Seq != uint64(i+1) {
				t.Fatalf("seq %d at %d", x.Seq, i)
			}
		}
	}
}

func BenchmarkJournalAppend(b *testing.B) {
	j, _, _ := Open(b.TempDir(), Options{})
	defer j.Close()
	t := tr("A000001", alarm.ActAccept)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		j.Append(t)
	}
}
