package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

var at0 = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

// lifecycle writes, for n alarms, what the hub writes: a raise, then
// accept, presence and resolve, each non-raise carrying the subject.
func lifecycle(t testing.TB, j *Journal, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		a := alarm.New(fmt.Sprintf("A%06d", i), at0.Add(time.Duration(i)*time.Minute))
		a.Kind, a.Rule, a.Priority, a.Site, a.Gateway, a.Device = alarm.KindCall, "call_button", 1, "solrosen", "gw-a", fmt.Sprintf("btn-%d", i)
		a.DeviceType, a.Unit, a.Room, a.Resident = event.PersonalTrigger, "avd-a", fmt.Sprint(10+i), fmt.Sprintf("r-%04x", i)
		snap := *a
		steps := []alarm.Transition{
			{Alarm: a.ID, Action: alarm.ActRaise, At: a.RaisedAt, By: "rule:call_button", Raise: &snap},
			{Alarm: a.ID, Action: alarm.ActAccept, At: a.RaisedAt.Add(time.Minute), By: "natt1", Subj: a.Subject()},
			{Alarm: a.ID, Action: alarm.ActPresence, At: a.RaisedAt.Add(2 * time.Minute), By: "natt1", Subj: a.Subject()},
			{Alarm: a.ID, Action: alarm.ActResolve, At: a.RaisedAt.Add(3 * time.Minute), By: "natt1", Outcome: alarm.OutcomeRealNeed, Subj: a.Subject()},
		}
		for k := range steps {
			if err := j.Append(&steps[k]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func seqsOf(ts []alarm.Transition) map[uint64]bool {
	m := map[uint64]bool{}
	for _, x := range ts {
		m[x.Seq] = true
	}
	return m
}

// Damage at every byte of one record in the middle of the journal costs
// that record only: every other transition comes back, the loss names the
// line, its offset and the missing sequence number.
func TestDamageAtEveryByteOfAMiddleRecord(t *testing.T) {
	base := t.TempDir()
	j, _ := mustOpen(t, base)
	lifecycle(t, j, 4)
	j.Close()
	full, err := os.ReadFile(filepath.Join(base, FileName))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(full, []byte("\n"))
	const victim = 8 // line 9: the raise of A000003 (seq 9)
	from := len(bytes.Join(lines[:victim], nil))
	to := from + len(lines[victim])
	for i := from; i < to; i++ {
		dir := t.TempDir()
		b := bytes.Clone(full)
		b[i] ^= 0x5a
		if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o640); err != nil {
			t.Fatal(err)
		}
		j, ts, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := seqsOf(ts)
		for s := uint64(1); s <= 16; s++ {
			if s != victim+1 && !got[s] {
				t.Fatalf("byte %d: transition seq %d lost", i, s)
			}
		}
		l := j.Loss()
		if l.Corrupt != 1 || l.Torn != 0 || !l.New || len(l.Damage) != 1 || l.Damage[0].Line != victim+1 || l.Damage[0].Offset != int64(from) {
			t.Fatalf("byte %d: loss %+v", i, l)
		}
		if fmt.Sprint(l.SeqGaps) != "[{9 9}]" || !strings.Contains(l.String(), "missing seq 9") {
			t.Fatalf("byte %d: gaps %v, %q", i, l.SeqGaps, l.String())
		}
		j.Close()
	}
}

// The loss counters survive a restart, and damage found again at the next
// open is not counted again.
func TestLossCountersSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	j, _ := mustOpen(t, dir)
	appendAll(t, j, "A1", "A2", "A3")
	j.Close()
	path := filepath.Join(dir, FileName)
	b, _ := os.ReadFile(path)
	b[12] ^= 0x01                                 // damage line 1
	b = append(b, []byte(`1a2b3c4d {"seq":4`)...) // and a torn tail
	os.WriteFile(path, b, 0o640)

	j2, _ := mustOpen(t, dir)
	if l := j2.Loss(); !l.New || l.Corrupt != 1 || l.Torn != 1 {
		t.Fatalf("first open: %+v", l)
	}
	j2.Close()
	j3, _ := mustOpen(t, dir)
	if l := j3.Loss(); l.New || l.Corrupt != 1 || l.Torn != 0 {
		t.Fatalf("second open found the old damage as new: %+v", l)
	}
	want := LossCounts{Corrupt: 1, Torn: 1}
	if got := j3.LossTotals(); got != want {
		t.Fatalf("totals after reopen %+v, want %+v", got, want)
	}
	j3.Close()
	if _, err := os.Stat(filepath.Join(dir, LossFile)); err != nil {
		t.Fatalf("no counters file: %v", err)
	}
}

// The full-disk case of issue 12: a journal on a 64 KiB tmpfs. An append
// the disk refuses fails, is counted, and leaves nothing behind; the first
// record after space comes back is whole after a restart, and the write
// failure is still counted after it.
func TestFullDiskWriteIsCutAndCountedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	j, _, err := Open(dir, Options{SyncEachWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, j, "A1")
	filler := filepath.Join(dir, "filler")
	_ = os.WriteFile(filler, make([]byte, 64<<10), 0o640)
	big := tr("A2", alarm.ActAccept)
	big.Note = strings.Repeat("n", 1900)
	for i := 0; i < 64; i++ {
		if err = j.Append(big); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	os.Remove(filler)
	after := tr("A3", alarm.ActAccept)
	if err := j.Append(after); err != nil {
		t.Fatalf("append after space came back: %v", err)
	}
	j.Close()
	j2, ts, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if l := j2.Loss(); l.Any() {
		t.Fatalf("loss after the full disk: %s", l.String())
	}
	if last := ts[len(ts)-1]; last.Alarm != "A3" || last.Seq != after.Seq {
		t.Fatalf("last transition %s seq %d, want A3 seq %d", last.Alarm, last.Seq, after.Seq)
	}
	if got := j2.LossTotals(); got.WriteFails != 1 {
		t.Fatalf("write failures after restart: %+v, want 1", got)
	}
}

// What a subject costs: bytes per record and append time for an accept as
// the hub writes it, with and without the subject.
func BenchmarkJournalAppendAccept(b *testing.B) {
	a := alarm.New("A000123", at0)
	a.Kind, a.Rule, a.Priority, a.Site, a.Gateway, a.Device = alarm.KindCall, "call_button", 1, "solrosen", "gw-avd-a", "btn-12"
	a.DeviceType, a.Status, a.Unit, a.Room, a.Resident = event.PersonalTrigger, event.ManualAlarm, "avd-a", "12", "r-7f3a"
	for _, tc := range []struct {
		name string
		subj *alarm.Subject
	}{{"no subject", nil}, {"subject", a.Subject()}} {
		b.Run(tc.name, func(b *testing.B) {
			j, _, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			t := &alarm.Transition{Alarm: a.ID, Action: alarm.ActAccept, At: at0.Add(time.Minute), By: "natt1", Subj: tc.subj}
			b.ReportAllocs()
			for b.Loop() {
				if err := j.Append(t); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(j.app.Size())/float64(j.Appends.Load()), "bytes/record")
		})
	}
}

// A damaged counters file never keeps the journal from opening.
func TestDamagedLossFileStartsFromZero(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LossFile), []byte("{not json"), 0o640); err != nil {
		t.Fatal(err)
	}
	j, _ := mustOpen(t, dir)
	if got := j.LossTotals(); got != (LossCounts{}) {
		t.Fatalf("totals %+v", got)
	}
	j.Close()
	b, _ := os.ReadFile(filepath.Join(dir, LossFile))
	if !bytes.HasPrefix(b, []byte("{")) || bytes.Contains(b, []byte("not json")) {
		t.Fatalf("counters file not replaced: %q", b)
	}
}

// 4 KiB of zeros in the middle of the journal (a lost block) costs the
// records it covers: every other transition comes back, and the loss and
// the counters name how many records are missing, not one damaged line.
func TestZeroBlockInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	j, _ := mustOpen(t, dir)
	lifecycle(t, j, 40) // 160 transitions
	j.Close()
	path := filepath.Join(dir, FileName)
	b, _ := os.ReadFile(path)
	from := len(b) / 2
	copy(b[from:from+4096], make([]byte, 4096))
	os.WriteFile(path, b, 0o640)
	j2, ts := mustOpen(t, dir)
	l := j2.Loss()
	if len(l.SeqGaps) != 1 || !l.New || l.Corrupt != 1 {
		t.Fatalf("loss %+v", l)
	}
	g := l.SeqGaps[0]
	missing := int64(g.To - g.From + 1)
	if got := seqsOf(ts); len(got)+int(missing) != 160 {
		t.Fatalf("%d transitions + %d missing != 160", len(got), missing)
	}
	if missing < 4096/600 { // no record here is longer than 600 bytes
		t.Fatalf("gap %v too small for 4 KiB of zeros", g)
	}
	if c := j2.LossTotals().Corrupt; c != missing {
		t.Fatalf("corrupt records counted %d, want the %d missing", c, missing)
	}
}
