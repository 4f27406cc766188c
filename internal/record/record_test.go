package record

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func body(i int) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"alarm":"A%06d","action":"accept"}`, i, i)
}

// logOf returns n records, and the offset where each starts.
func logOf(n int) ([]byte, []int) {
	var b []byte
	var at []int
	for i := 1; i <= n; i++ {
		at = append(at, len(b))
		b = Append(b, body(i))
	}
	return b, at
}

type scanned struct {
	bodies []string
	rep    Report
}

func scan(t testing.TB, b []byte) scanned {
	t.Helper()
	s := NewScanner(bytes.NewReader(b), ScanOptions{})
	var out scanned
	for s.Next() {
		out.bodies = append(out.bodies, string(s.Body()))
	}
	if err := s.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	out.rep = s.Report()
	return out
}

func TestAppendIsTheJournalsOldFormat(t *testing.T) {
	b := body(7)
	old := fmt.Appendf(nil, "%08x %s\n", crc(b), b)
	if got := Append(nil, b); !bytes.Equal(got, old) {
		t.Fatalf("Append = %q, the journal wrote %q", got, old)
	}
	got, err := Parse(old)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Parse = %q, %v", got, err)
	}
	if len(old)-len(b) != Overhead {
		t.Errorf("overhead %d, want %d", len(old)-len(b), Overhead)
	}
	// Upper-case hex (written by hand, or by another tool) is accepted.
	if _, err := Parse([]byte(strings.ToUpper(string(old[:8])) + string(old[8:]))); err != nil {
		t.Errorf("upper-case checksum refused: %v", err)
	}
}

func TestParseRefusesDamage(t *testing.T) {
	good := Append(nil, body(1))
	for name, line := range map[string][]byte{
		"empty":         {},
		"newline only":  []byte("\n"),
		"short":         []byte("1234 {}"),
		"no space":      append([]byte("12345678x"), good[9:]...),
		"not hex":       append([]byte("1234567z"), good[8:]...),
		"flipped body":  flip(good, 20),
		"flipped crc":   flip(good, 0),
		"zeros":         make([]byte, len(good)),
		"half a record": good[:len(good)/2],
	} {
		if _, err := Parse(line); !errors.Is(err, ErrDamaged) {
			t.Errorf("%s: Parse err = %v, want ErrDamaged", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

// A write cut at any byte of the last record: the records before it are
// kept, the cut one is reported as a torn tail and End is where it began,
// except when only its newline is missing (then it is whole and returned).
func TestScanTornTailAtEveryCut(t *testing.T) {
	full, at := logOf(3)
	last := at[2]
	for cut := last; cut <= len(full); cut++ {
		got := scan(t, full[:cut])
		want, torn, end := 2, cut > last && cut < len(full)-1, int64(last)
		switch {
		case cut == len(full)-1:
			want, end = 3, int64(cut)
		case cut == len(full):
			want, end = 3, int64(cut)
		}
		if len(got.bodies) != want || (got.rep.Torn != nil) != torn || got.rep.End != end || got.rep.DamagedLines != 0 {
			t.Fatalf("cut at %d: %d records, torn %v, end %d, damaged %d; want %d, %v, %d, 0",
				cut, len(got.bodies), got.rep.Torn, got.rep.End, got.rep.DamagedLines, want, torn, end)
		}
		if torn && (got.rep.Torn.Line != 3 || got.rep.Torn.Offset != int64(last) || got.rep.Torn.Len != cut-last) {
			t.Fatalf("cut at %d: torn %+v", cut, got.rep.Torn)
		}
		if got.rep.Unterminated != (cut == len(full)-1) {
			t.Fatalf("cut at %d: unterminated %v", cut, got.rep.Unterminated)
		}
	}
}

// A byte flipped anywhere in a record in the middle of the file, its
// newline included, costs that record only: every other record is read,
// and the damage is reported with its line and offset, never as a tail.
func TestScanFlipEveryByteOfAMiddleRecord(t *testing.T) {
	full, at := logOf(5)
	for i := at[2]; i < at[3]; i++ {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(full)
			b[i] ^= mask
			got := scan(t, b)
			var want []string
			for r := 1; r <= 5; r++ {
				if r != 3 {
					want = append(want, string(body(r)))
				}
			}
			if strings.Join(got.bodies, "|") != strings.Join(want, "|") {
				t.Fatalf("byte %d ^ %#x: got %q", i, mask, got.bodies)
			}
			if got.rep.Torn != nil || got.rep.DamagedLines == 0 || got.rep.End != int64(len(b)) {
				t.Fatalf("byte %d ^ %#x: report %+v", i, mask, got.rep)
			}
			if d := got.rep.Damaged[0]; d.Line != 3 || d.Offset != int64(at[2]) {
				t.Fatalf("byte %d ^ %#x: damage at line %d byte %d, want line 3 byte %d", i, mask, d.Line, d.Offset, at[2])
			}
		}
	}
}

// 4 KiB of zeros in the middle (a lost block): only the records it touches
// are lost, the rest before and after it are read.
func TestScanZeroBlockInTheMiddle(t *testing.T) {
	full, at := logOf(400)
	from := len(full) / 2
	b := bytes.Clone(full)
	copy(b[from:from+4096], make([]byte, 4096))
	got := scan(t, b)
	var want []string
	for r := 1; r <= 400; r++ {
		start, end := at[r-1], len(full)
		if r < 400 {
			end = at[r]
		}
		if end <= from || start >= from+4096 {
			want = append(want, string(body(r)))
		}
	}
	if strings.Join(got.bodies, "|") != strings.Join(want, "|") {
		t.Fatalf("got %d records, want the %d outside the zeros", len(got.bodies), len(want))
	}
	if got.rep.DamagedLines != 1 || got.rep.Torn != nil {
		t.Fatalf("report %+v", got.rep)
	}
	if d := got.rep.Damaged[0]; d.Offset > int64(from) || d.Offset+int64(d.Len) < int64(from+4096) {
		t.Fatalf("damage %v does not cover the zeros at %d", d, from)
	}
}

// A failed write that was not cut (an older binary) leaves half a record
// joined to the next one: the whole record behind it is still found.
func TestScanFindsTheRecordBehindHalfARecord(t *testing.T) {
	full, at := logOf(3)
	half := Append(nil, body(9))
	b := slices(full[:at[1]], half[:len(half)/2], full[at[1]:])
	got := scan(t, b)
	if len(got.bodies) != 3 || got.rep.DamagedLines != 1 || got.rep.Damaged[0].Len != len(half)/2 {
		t.Fatalf("got %q, report %+v", got.bodies, got.rep)
	}
}

func slices(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestScanVerifyOptionAndLongLines(t *testing.T) {
	in := "P " + string(Append(nil, []byte(`{"id":"x"}`))) + "D x\n" + strings.Repeat("y", 100) + "\nS 7\n"
	verify := func(l []byte) ([]byte, error) {
		switch {
		case bytes.HasPrefix(l, []byte("P ")):
			return Parse(l[2:])
		case bytes.HasPrefix(l, []byte("D ")), bytes.HasPrefix(l, []byte("S ")):
			return l, nil
		}
		return nil, ErrFormat
	}
	s := NewScanner(strings.NewReader(in), ScanOptions{Verify: verify, MaxLine: 50})
	var got []string
	for s.Next() {
		got = append(got, string(s.Body()))
	}
	rep := s.Report()
	if strings.Join(got, "|") != `{"id":"x"}|D x|S 7` || rep.DamagedLines != 1 || rep.Damaged[0].Line != 3 || rep.Damaged[0].Len != 101 {
		t.Fatalf("got %q, report %+v", got, rep)
	}
}

// memFile is a File in memory whose writes can be made to fail after a
// number of bytes, as a full disk does.
type memFile struct {
	mu       sync.Mutex
	data     []byte
	room     int // bytes a write may still add; < 0 for no limit
	syncs    int
	syncGate chan struct{} // if set, Sync waits for it
	entered  chan struct{} // if set, Sync says it started
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(p)
	var err error
	if m.room >= 0 && n > m.room {
		n, err = m.room, syscall.ENOSPC
	}
	if m.room >= 0 {
		m.room -= n
	}
	if need := int(off) + n; need > len(m.data) {
		m.data = append(m.data, make([]byte, need-len(m.data))...)
	}
	copy(m.data[off:], p[:n])
	return n, err
}

func (m *memFile) Truncate(n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.room >= 0 {
		m.room += len(m.data) - int(n)
	}
	m.data = m.data[:n]
	return nil
}

func (m *memFile) Sync() error {
	if m.entered != nil {
		m.entered <- struct{}{}
	}
	if m.syncGate != nil {
		<-m.syncGate
	}
	m.mu.Lock()
	m.syncs++
	m.mu.Unlock()
	return nil
}
func (m *memFile) Close() error { return nil }

// A write the disk cuts short (ENOSPC after half the record) is cut back
// before Append returns: the next record starts where the failed one did,
// and it reads back whole.
func TestAppenderCutsAFailedWrite(t *testing.T) {
	f := &memFile{room: -1}
	var failures []string
	a := NewAppender(f, 0, AppendOptions{OnFailure: func(op string, err error) { failures = append(failures, op) }})
	if _, err := a.Append(Append(nil, body(1))); err != nil {
		t.Fatal(err)
	}
	rec := Append(nil, body(2))
	f.room = len(rec) / 2
	if _, err := a.Append(rec); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	f.room = -1
	if _, err := a.Append(Append(nil, body(3))); err != nil {
		t.Fatal(err)
	}
	got := scan(t, f.data)
	if strings.Join(got.bodies, "|") != string(body(1))+"|"+string(body(3)) || got.rep.Lost() {
		t.Fatalf("after the failed write: %q, report %+v", got.bodies, got.rep)
	}
	if a.WriteFails.Load() != 1 || a.Writes.Load() != 2 || strings.Join(failures, ",") != "write" {
		t.Errorf("counters: writes %d fails %d, failures %v", a.Writes.Load(), a.WriteFails.Load(), failures)
	}
}

// The same on a real full filesystem: a 64 KiB tmpfs is filled, an append
// fails, space comes back, the next append reads back and the half record
// is gone.
func TestAppenderOnAFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	path := filepath.Join(dir, "log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAppender(f, 0, AppendOptions{SyncEach: true})
	if _, err := a.Append(Append(nil, body(1))); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	// Fill all but a little: the next record gets part of its bytes.
	_ = os.WriteFile(filler, make([]byte, 64<<10), 0o640)
	big := Append(nil, bytes.Repeat([]byte("x"), 16<<10))
	var failed bool
	for i := 0; i < 8 && !failed; i++ {
		_, err = a.Append(big)
		failed = err != nil
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full tmpfs: %v, want ENOSPC", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(Append(nil, body(2))); err != nil {
		t.Fatalf("append after space came back: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := scan(t, b)
	if got.rep.Lost() || got.bodies[0] != string(body(1)) || got.bodies[len(got.bodies)-1] != string(body(2)) {
		t.Fatalf("after the full disk: %d records, report %+v", len(got.bodies), got.rep)
	}
	if a.WriteFails.Load() != 1 {
		t.Errorf("write failures %d, want 1", a.WriteFails.Load())
	}
}

// Group commit: while one caller waits for an fsync, others append (the
// write lock is free) and then share a single further fsync.
func TestAppenderSyncDoesNotBlockAppends(t *testing.T) {
	f := &memFile{room: -1, syncGate: make(chan struct{}), entered: make(chan struct{}, 16)}
	a := NewAppender(f, 0, AppendOptions{})
	end1, _ := a.Append(Append(nil, body(1)))
	first := make(chan error)
	go func() { first <- a.SyncTo(end1) }()
	<-f.entered // the first fsync is running
	// While that fsync hangs, appends go through.
	var ends []int64
	for i := 2; i <= 5; i++ {
		done := make(chan int64)
		go func() { e, _ := a.Append(Append(nil, body(i))); done <- e }()
		select {
		case e := <-done:
			ends = append(ends, e)
		case <-time.After(5 * time.Second):
			t.Fatal("Append waited for another caller's fsync")
		}
	}
	var wg sync.WaitGroup
	for _, e := range ends {
		wg.Go(func() {
			if err := a.SyncTo(e); err != nil {
				t.Error(err)
			}
		})
	}
	f.syncGate <- struct{}{} // the first fsync ends
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	f.syncGate <- struct{}{} // one more for all the waiters
	wg.Wait()
	if a.Syncs.Load() != 2 {
		t.Errorf("%d fsyncs, want 2 (the waiters share one)", a.Syncs.Load())
	}
	close(f.syncGate)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(Append(nil, body(6))); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	if err := a.SyncTo(ends[len(ends)-1]); err != nil {
		t.Errorf("SyncTo for a record written before Close: %v", err)
	}
}

func TestWriteFileReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "counters.json")
	for _, s := range []string{"first", "second, longer"} {
		if err := WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != s {
			t.Fatalf("read %q, %v", b, err)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func BenchmarkAppendEncode(b *testing.B) {
	body := body(1)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], body)
	}
}

func crc(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
