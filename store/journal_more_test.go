package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

func mustOpen(t *testing.T, dir string) (*Journal, []alarm.Transition) {
	t.Helper()
	j, ts, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, ts
}

func appendAll(t *testing.T, j *Journal, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := j.Append(tr(id, alarm.ActAccept)); err != nil {
			t.Fatal(err)
		}
	}
}

func alarmsOf(ts []alarm.Transition) string {
	var s []string
	for _, t := range ts {
		s = append(s, fmt.Sprintf("%d:%s", t.Seq, t.Alarm))
	}
	return strings.Join(s, " ")
}

// Every field of a transition, the raise snapshot included, comes back.
func TestTransitionRoundTripsEveryField(t *testing.T) {
	dir := t.TempDir()
	j, _ := mustOpen(t, dir)
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	raised := alarm.New("A000001", at)
	raised.Kind, raised.Rule, raised.Priority, raised.Site, raised.Device = alarm.KindCall, "call_button", 1, "s", "btn-a"
	raised.DeviceType, raised.Status, raised.SourceTime = event.PersonalTrigger, event.ManualAlarm, at.Add(-time.Second)
	in := []alarm.Transition{
		{Alarm: "A000001", Action: alarm.ActRaise, At: at, By: "rule:call_button", EventID: "s/gw/e1", Raise: raised},
		{Alarm: "A000001", Action: alarm.ActRepeat, At: at.Add(time.Second), By: "rule:call_button", EventID: "s/gw/e2",
			Pos: &event.Position{Lat: 58.3, Lon: 11.9, Accuracy: 5}},
		{Alarm: "A000001", Action: alarm.ActNotify, At: at.Add(2 * time.Second), Tier: 1, Receiver: "natt", To: []string{"anna", "bo"}},
		{Alarm: "A000001", Action: alarm.ActDelivered, At: at.Add(3 * time.Second), By: "anna", Phone: "sub-1"},
		{Alarm: "A000001", Action: alarm.ActResolve, At: at.Add(time.Hour), By: "anna", Outcome: alarm.OutcomeRealNeed, Note: "hjälp vid toalettbesök"},
	}
	for i := range in {
		c := in[i]
		if err := j.Append(&c); err != nil {
			t.Fatal(err)
		}
		if c.Seq != uint64(i+1) {
			t.Fatalf("append %d got seq %d", i, c.Seq)
		}
		in[i].Seq, in[i].Rec = c.Seq, c.Rec // the replay must find each where Append put it
	}
	j.Close()
	_, got := mustOpen(t, dir)
	if len(got) != len(in) {
		t.Fatalf("%d transitions back, want %d", len(got), len(in))
	}
	for i := range in {
		if !reflect.DeepEqual(got[i], in[i]) {
			t.Errorf("transition %d:\n got %+v\nwant %+v", i, got[i], in[i])
		}
	}
}

// A power cut can leave any prefix of the last record on disk. Whatever
// the cut, the records before it survive, and the journal goes on with
// records that survive the next restart too.
func TestTornTailAtEveryCut(t *testing.T) {
	base := t.TempDir()
	j, _, err := Open(base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, j, "A1", "A2", "A3")
	j.Close()
	full, err := os.ReadFile(filepath.Join(base, FileName))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(full, []byte("\n"))
	last := lines[2]
	prefix := full[:len(full)-len(last)]
	for cut := 0; cut <= len(last); cut++ {
		t.Run(fmt.Sprintf("cut %d of %d", cut, len(last)), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), append(append([]byte{}, prefix...), last[:cut]...), 0o640); err != nil {
				t.Fatal(err)
			}
			j, ts, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Only the missing newline leaves a whole record: it is kept.
			want, corrupt := "1:A1 2:A2", int64(1)
			switch cut {
			case 0:
				corrupt = 0
			case len(last) - 1, len(last):
				want, corrupt = "1:A1 2:A2 3:A3", 0
			}
			if got := alarmsOf(ts); got != want || j.Corrupt.Load() != corrupt {
				t.Fatalf("after the cut: %q corrupt %d; want %q corrupt %d", got, j.Corrupt.Load(), want, corrupt)
			}
			next := tr("B", alarm.ActAccept)
			if err := j.Append(next); err != nil {
				t.Fatal(err)
			}
			if wantSeq := uint64(len(ts) + 1); next.Seq != wantSeq {
				t.Errorf("seq after the cut %d, want %d", next.Seq, wantSeq)
			}
			j.Close()
			j2, ts2, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer j2.Close()
			if got, want := alarmsOf(ts2), want+fmt.Sprintf(" %d:B", next.Seq); got != want || j2.Corrupt.Load() != 0 {
				t.Fatalf("after an append and a restart: %q corrupt %d; want %q and none corrupt", got, j2.Corrupt.Load(), want)
			}
		})
	}
}

func TestCorruptMiddleRecordsSkippedAndCounted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(line []byte) []byte
	}{
		{"flipped JSON byte", func(l []byte) []byte { l = bytes.Clone(l); l[20] ^= 0x01; return l }},
		{"flipped checksum", func(l []byte) []byte { l = bytes.Clone(l); l[0] ^= 0x01; return l }},
		{"checksum not hex", func(l []byte) []byte { l = bytes.Clone(l); l[0] = 'z'; return l }},
		{"no checksum", func(l []byte) []byte { return l[9:] }},
		{"empty line", func([]byte) []byte { return []byte("\n") }},
		{"zeros (unwritten block)", func(l []byte) []byte { return append(make([]byte, len(l)-1), '\n') }},
		{"valid checksum, bad JSON", func([]byte) []byte { return []byte("00000000 \n") }},
		{"half a line", func(l []byte) []byte { return append(bytes.Clone(l[:len(l)/2]), '\n') }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j, _, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			appendAll(t, j, "A1", "A2", "A3", "A4")
			j.Close()
			path := filepath.Join(dir, FileName)
			b, _ := os.ReadFile(path)
			lines := bytes.SplitAfter(b, []byte("\n"))
			out := bytes.Join([][]byte{lines[0], tc.spoil(lines[1]), lines[2], tc.spoil(lines[3]), lines[4]}, nil)
			if err := os.WriteFile(path, out, 0o640); err != nil {
				t.Fatal(err)
			}
			j2, ts := mustOpen(t, dir)
			// Line 4 (A4) is the last record; it is corrupt but complete
			// (it ends in a newline): skipped, not cut.
			if got := alarmsOf(ts); got != "1:A1 3:A3" || j2.Corrupt.Load() != 2 {
				t.Fatalf("got %q corrupt %d; want \"1:A1 3:A3\" and 2 corrupt", got, j2.Corrupt.Load())
			}
			n := tr("A5", alarm.ActAccept)
			if err := j2.Append(n); err != nil || n.Seq != 4 {
				t.Fatalf("append after corrupt records: seq %d, %v", n.Seq, err)
			}
			j2.Close()
			_, ts = mustOpen(t, dir)
			if got := alarmsOf(ts); got != "1:A1 3:A3 4:A5" {
				t.Fatalf("after reopen: %q", got)
			}
		})
	}
}

func TestCloseThenAppendFails(t *testing.T) {
	dir := t.TempDir()
	j, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, j, "A1")
	if err := j.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	x := tr("late", alarm.ActAccept)
	if err := j.Append(x); err == nil || !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("append after close: %v", err)
	}
	if j.Appends.Load() != 1 {
		t.Errorf("appends counted %d", j.Appends.Load())
	}
	_, ts := mustOpen(t, dir)
	if alarmsOf(ts) != "1:A1" {
		t.Errorf("journal holds %q", alarmsOf(ts))
	}
}

func TestConcurrentAppendsUniqueSeqsInFileOrder(t *testing.T) {
	const goroutines, each = 6, 40
	dir := t.TempDir()
	j, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs = map[uint64]string{}
		errs []error
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for i := range each {
				x := tr(fmt.Sprintf("G%d-%02d", g, i), alarm.ActAccept)
				err := j.Append(x)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if prev, dup := seqs[x.Seq]; dup {
					errs = append(errs, fmt.Errorf("seq %d given to %s and %s", x.Seq, prev, x.Alarm))
				} else if x.Seq <= last {
					errs = append(errs, fmt.Errorf("%s: seq %d not after %d", x.Alarm, x.Seq, last))
				} else {
					seqs[x.Seq] = x.Alarm
				}
				mu.Unlock()
				last = x.Seq
			}
		}()
	}
	wg.Wait()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	for _, err := range errs {
		t.Error(err)
	}
	_, ts := mustOpen(t, dir)
	if len(ts) != goroutines*each {
		t.Fatalf("%d transitions, want %d", len(ts), goroutines*each)
	}
	var got []uint64
	for i, x := range ts {
		if x.Seq != uint64(i+1) || seqs[x.Seq] != x.Alarm {
			t.Fatalf("record %d: seq %d alarm %s, appended as %s", i, x.Seq, x.Alarm, seqs[x.Seq])
		}
		got = append(got, x.Seq)
	}
	if !sort.SliceIsSorted(got, func(a, b int) bool { return got[a] < got[b] }) {
		t.Error("file order is not seq order")
	}
}

// Group commit: records written in a burst share one background fsync,
// SyncEvery after the first; under synctest the wait is instant.
func TestBackgroundSyncGroupsWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		j, _, err := Open(dir, Options{SyncEvery: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		appendAll(t, j, "A1", "A2", "A3")
		synctest.Wait()
		if n := j.Syncs.Load(); n != 0 {
			t.Fatalf("%d syncs before SyncEvery passed", n)
		}
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if n := j.Syncs.Load(); n != 1 {
			t.Fatalf("%d syncs after SyncEvery, want 1 for the burst", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := j.Syncs.Load(); n != 1 {
			t.Fatalf("%d syncs with nothing written, want still 1", n)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		if j.SyncFails.Load() != 0 {
			t.Error("sync failures counted")
		}
	})
}

// Without Options.SyncEvery the window is DefaultSyncEvery: no fsync
// before it has passed, one after.
func TestBackgroundSyncDefaultWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j, _, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		appendAll(t, j, "A1")
		time.Sleep(DefaultSyncEvery - time.Millisecond)
		synctest.Wait()
		if n := j.Syncs.Load(); n != 0 {
			t.Fatalf("%d syncs %v after the write, want 0 before the window", n, DefaultSyncEvery-time.Millisecond)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := j.Syncs.Load(); n != 1 {
			t.Fatalf("%d syncs at the window's end, want 1", n)
		}
	})
}

func TestSyncEachWrite(t *testing.T) {
	dir := t.TempDir()
	j, _, err := Open(dir, Options{SyncEachWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	appendAll(t, j, "A1", "A2")
	if j.Syncs.Load() != 2 || j.Appends.Load() != 2 {
		t.Errorf("syncs %d appends %d, want 2 and 2", j.Syncs.Load(), j.Appends.Load())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(file, Options{}); err == nil || !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("open under a file: %v", err)
	}
	// A journal path that is a directory cannot be opened for writing.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d", FileName), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(filepath.Join(dir, "d"), Options{}); err == nil {
		t.Error("opened a directory as the journal")
	}
	// A new nested data dir is created.
	j, ts, err := Open(filepath.Join(dir, "a", "b"), Options{})
	if err != nil || len(ts) != 0 {
		t.Fatalf("new nested dir: %v %d", err, len(ts))
	}
	j.Close()
}

func BenchmarkJournalAppendSyncEachWrite(b *testing.B) {
	j, _, err := Open(b.TempDir(), Options{SyncEachWrite: true})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	t := tr("A000001", alarm.ActAccept)
	b.ReportAllocs()
	for b.Loop() {
		if err := j.Append(t); err != nil {
			b.Fatal(err)
		}
	}
}
