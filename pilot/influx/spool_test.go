package influx

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func lines(from, n int) [][]byte {
	var out [][]byte
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Appendf(nil, "m,k=v n=%d %d", i, i))
	}
	return out
}

func strs(b [][]byte) []string {
	var out []string
	for _, l := range b {
		out = append(out, string(l))
	}
	return out
}

func TestSpoolAppendReadCommitReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s.segMax = 200 // several segments
	if n, err := s.Append(lines(0, 30)); n != 30 || err != nil {
		t.Fatalf("append %d %v", n, err)
	}
	got, next, err := s.Read(10)
	if err != nil || !slices.Equal(got, strs(lines(0, 10))) {
		t.Fatalf("read %v %v", got, err)
	}
	if err := s.Commit(next); err != nil {
		t.Fatal(err)
	}
	// Read without commit returns the same lines again (at-least-once).
	again, _, _ := s.Read(5)
	if !slices.Equal(again, strs(lines(10, 5))) {
		t.Fatalf("re-read %v", again)
	}
	s.Close()
	s, err = OpenSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, next, _ = s.Read(100)
	if !slices.Equal(got, strs(lines(10, 20))) {
		t.Fatalf("after reopen %d lines: %v", len(got), got)
	}
	if err := s.Commit(next); err != nil {
		t.Fatal(err)
	}
	if p := s.Pending(); p != 0 {
		t.Errorf("pending %d after committing all", p)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) > 3 {
		t.Errorf("old segments not removed: %d files", len(ents))
	}
	s.Append(lines(30, 2))
	got, _, _ = s.Read(10)
	if !slices.Equal(got, strs(lines(30, 2))) {
		t.Fatalf("after rotation %v", got)
	}
}

func TestSpoolTornTailAndCorruptLine(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSpool(dir, 1<<20)
	s.Append(lines(0, 3))
	s.Close()
	seg := filepath.Join(dir, fmt.Sprintf("seg-%016d.log", 1))
	b, _ := os.ReadFile(seg)
	b[12] ^= 0x01                                    // damage the first line's body
	b = append(b, []byte("deadbeef m,k=v n=9 9")...) // torn: no newline
	os.WriteFile(seg, b, 0o644)
	s, err := OpenSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, _, _ := s.Read(10)
	// Both count: the damaged line, and the torn one (written and lost).
	if !slices.Equal(got, strs(lines(1, 2))) || s.Corrupt() != 2 {
		t.Fatalf("got %v corrupt %d", got, s.Corrupt())
	}
}

func TestSpoolFullRefusesAndCounts(t *testing.T) {
	s, _ := OpenSpool(t.TempDir(), 300)
	defer s.Close()
	n, err := s.Append(lines(0, 100))
	if err != nil || n == 0 || n >= 100 || s.Dropped() != int64(100-n) {
		t.Fatalf("stored %d dropped %d err %v", n, s.Dropped(), err)
	}
	got, next, _ := s.Read(1000)
	s.Commit(next)
	if len(got) != n {
		t.Fatalf("read %d of %d", len(got), n)
	}
	// Room again once InfluxDB took it.
	if m, _ := s.Append(lines(100, 1)); m != 1 {
		t.Fatal("no room after commit")
	}
}

// FuzzSpoolOpen: whatever is on disk (a damaged segment, a bad cursor),
// opening and reading the spool never panics.
func FuzzSpoolOpen(f *testing.F) {
	f.Add([]byte("0a1b2c3d m n=1 1\n"), []byte("1 0"))
	f.Add([]byte("\n\n\nzz"), []byte("x y"))
	f.Add([]byte{}, []byte("99 -5"))
	f.Fuzz(func(t *testing.T, seg, cursor []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("seg-%016d.log", 1)), seg, 0o644)
		os.WriteFile(filepath.Join(dir, "cursor"), cursor, 0o644)
		s, err := OpenSpool(dir, 1<<20)
		if err != nil {
			return
		}
		defer s.Close()
		for range 3 {
			_, next, err := s.Read(4)
			if err != nil {
				return
			}
			s.Commit(next)
		}
	})
}
