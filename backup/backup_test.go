package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/internal/record"
)

func journal(n int) []byte {
	var b []byte
	for i := range n {
		b = record.Append(b, fmt.Appendf(nil, `{"seq":%d,"action":"raise"}`, i+1))
	}
	return b
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func archive(t *testing.T, dir string) ([]byte, *Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := Create(dir, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

// A data directory caught mid-write: the journal has half a record at its
// end and the event log half a line. The backup keeps every whole record
// and line and nothing of the write in flight, and restores byte for byte
// to that prefix; files replaced by rename come whole; temp files stay out.
func TestBackupCutsWritesInFlightAndRestores(t *testing.T) {
	src := t.TempDir()
	full := journal(50)
	next := journal(51)[len(full):]
	write(t, filepath.Join(src, "alarms.journal"), append(append([]byte{}, full...), next[:len(next)/2]...))
	write(t, filepath.Join(src, "events", "events-2026-12-03.jsonl"), []byte("{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c"))
	write(t, filepath.Join(src, "push-subscriptions.json"), []byte(`{"subs":[]}`))
	write(t, filepath.Join(src, "push-subscriptions.json.tmp123"), []byte(`{"half`))

	b, m := archive(t, src)
	byName := map[string]File{}
	for _, f := range m.Files {
		byName[f.Name] = f
	}
	if j := byName["alarms.journal"]; j.Cut != CutRecords || j.Records != 50 || j.Size != int64(len(full)) || j.Dropped != int64(len(next)/2) {
		t.Fatalf("journal in manifest: %+v, want 50 records, %d bytes", j, len(full))
	}
	if e := byName["events/events-2026-12-03.jsonl"]; e.Cut != CutLines || e.Dropped != int64(len(`{"id":"c`)) {
		t.Fatalf("event log in manifest: %+v", e)
	}
	if _, ok := byName["push-subscriptions.json.tmp123"]; ok {
		t.Fatal("a temp file of an atomic replace went into the backup")
	}

	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := Restore(bytes.NewReader(b), dst); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dst, "alarms.journal")); !bytes.Equal(got, full) {
		t.Fatalf("restored journal is %d bytes, want the %d of 50 whole records", len(got), len(full))
	}
	if got := string(read(t, filepath.Join(dst, "events", "events-2026-12-03.jsonl"))); got != "{\"id\":\"a\"}\n{\"id\":\"b\"}\n" {
		t.Fatalf("restored event log %q", got)
	}
	if got := string(read(t, filepath.Join(dst, "push-subscriptions.json"))); got != `{"subs":[]}` {
		t.Fatalf("restored subscriptions %q", got)
	}
	ents, _ := os.ReadDir(filepath.Dir(dst))
	if len(ents) != 1 {
		t.Fatalf("restore left %d entries beside the data dir, want only it", len(ents))
	}
}

// A record whose bytes are all written but whose newline is not yet is
// left out: the next append would complete it, and a restored hub would
// otherwise start by writing a newline into its journal.
func TestBackupLeavesOutUnterminatedRecord(t *testing.T) {
	src := t.TempDir()
	j := journal(3)
	write(t, filepath.Join(src, "alarms.journal"), j[:len(j)-1])
	_, m := archive(t, src)
	if f := m.Files[0]; f.Records != 2 || f.Size != int64(len(journal(2))) {
		t.Fatalf("manifest %+v, want 2 records", f)
	}
}

// Restore never mixes a backup into live data, and refuses archives it
// cannot trust, leaving the target untouched.
func TestRestoreRefuses(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "alarms.journal"), journal(5))
	good, _ := archive(t, src)

	busy := t.TempDir()
	write(t, filepath.Join(busy, "alarms.journal"), journal(1))
	if _, err := Restore(bytes.NewReader(good), busy); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a data dir with a journal: %v", err)
	}

	rewrite := func(edit func(name string, b []byte) []byte) []byte {
		zr, _ := gzip.NewReader(bytes.NewReader(good))
		tr := tar.NewReader(zr)
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		tw := tar.NewWriter(zw)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(tr)
			if b = edit(h.Name, b); b == nil {
				continue
			}
			h.Size = int64(len(b))
			tw.WriteHeader(h)
			tw.Write(b)
		}
		tw.Close()
		zw.Close()
		return out.Bytes()
	}
	for _, tc := range []struct {
		name string
		arc  []byte
		want string
	}{
		{"flipped byte in the journal", rewrite(func(n string, b []byte) []byte {
			if n == "alarms.journal" {
				b[20] ^= 1
			}
			return b
		}), "does not match the manifest"},
		{"no manifest", rewrite(func(n string, b []byte) []byte {
			if n == ManifestName {
				return nil
			}
			return b
		}), "no MANIFEST.json"},
		{"newer format", rewrite(func(n string, b []byte) []byte {
			if n == ManifestName {
				var m Manifest
				json.Unmarshal(b, &m)
				m.Version = Version + 1
				b, _ = json.Marshal(m)
			}
			return b
		}), "newer than this vaka understands"},
		{"path outside", func() []byte {
			var out bytes.Buffer
			zw := gzip.NewWriter(&out)
			tw := tar.NewWriter(zw)
			tw.WriteHeader(&tar.Header{Name: "../evil", Mode: 0o640, Size: 1, Typeflag: tar.TypeReg})
			tw.Write([]byte("x"))
			tw.Close()
			zw.Close()
			return out.Bytes()
		}(), "refusing archive entry"},
		{"cut short", good[:len(good)/2], "restore:"},
		{"not gzip", []byte("hello"), "not a vaka backup"},
	} {
		dst := filepath.Join(t.TempDir(), "data")
		_, err := Restore(bytes.NewReader(tc.arc), dst)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
		if _, serr := os.Stat(dst); serr == nil {
			t.Errorf("%s: a refused restore created %s", tc.name, dst)
		}
	}
}

// FuzzRestore: a backup archive is outside input; Restore must never
// panic, nor write outside its target.
func FuzzRestore(f *testing.F) {
	src := f.TempDir()
	os.WriteFile(filepath.Join(src, "alarms.journal"), journal(3), 0o640)
	var buf bytes.Buffer
	if _, err := Create(src, &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "data")
		if _, err := Restore(bytes.NewReader(b), dst); err != nil {
			if _, serr := os.Stat(dst); serr == nil {
				t.Fatalf("refused restore (%v) left %s", err, dst)
			}
		}
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if e.Name() != "data" {
				t.Fatalf("restore left %s beside the target", e.Name())
			}
		}
	})
}
