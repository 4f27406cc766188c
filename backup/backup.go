// Package backup takes a consistent copy of a hub's data directory while the
// hub runs, and restores one into a fresh data directory.
//
// Why no pause or API on the hub: every file in the data directory is
// either append-only (the alarm journal and other record logs, the JSON
// lines event log) or replaced whole by rename (push subscriptions, loss
// counters, keys). The journal's appender writes each record with one
// write(2) at the end of good data, so a reader can only ever see whole
// records followed by, at most, the part of one in flight. A backup
// therefore reads each log up to a size taken at the start of its copy and
// keeps it up to the last whole record (record codec: a valid CRC line;
// JSON lines: the last newline). What it keeps is a prefix of the live
// file, byte for byte: exactly what the hub would replay had it stopped at
// that moment. Files replaced by rename are read whole, old or new.
//
// The archive is a gzip'd tar with MANIFEST.json last: the format version,
// each file's size, SHA-256 and how it was cut. Restore checks every file
// against it before anything reaches the target directory.
package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vaka-care/vaka/internal/record"
)

// Format and Version name the archive layout; Restore refuses another.
const (
	Format  = "vaka-backup"
	Version = 1
)

// ManifestName is the last entry of an archive.
const ManifestName = "MANIFEST.json"

// How a file was cut for a consistent copy.
const (
	CutRecords = "records" // record log: up to the last valid record
	CutLines   = "lines"   // JSON lines: up to the last newline
	CutWhole   = "whole"   // replaced by rename: copied whole
)

// File is one file in a backup.
type File struct {
	Name    string      `json:"name"` // slash-separated, relative to the data directory
	Size    int64       `json:"size"`
	SHA256  string      `json:"sha256"`
	Mode    fs.FileMode `json:"mode"`
	Cut     string      `json:"cut"`
	Records int         `json:"records,omitempty"` // valid records kept (CutRecords)
	Dropped int64       `json:"dropped,omitempty"` // bytes after the cut (a write in flight)
}

// Manifest describes a backup.
type Manifest struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Files   []File    `json:"files"`
}

// Create writes a backup of dataDir to w.
func Create(dataDir string, w io.Writer) (*Manifest, error) {
	if fi, err := os.Stat(dataDir); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("backup: %s is not a directory", dataDir)
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	m := &Manifest{Format: Format, Version: Version, Created: time.Now().UTC()}
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked (a temp file renamed away)
			}
			return err
		}
		if !d.Type().IsRegular() || isTemp(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(dataDir, path)
		if err != nil {
			return err
		}
		f, err := snapshot(path, filepath.ToSlash(rel))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.file.Name, Mode: int64(f.file.Mode.Perm()), Size: f.file.Size,
			ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
		m.Files = append(m.Files, f.file)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o640, Size: int64(len(mb)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if _, err := tw.Write(mb); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return m, nil
}

// isTemp tells a temporary file of an atomic replace (record.WriteFile
// names them <name>.tmp<random>), which is renamed away or removed and is
// not part of the state.
func isTemp(name string) bool { return strings.Contains(name, ".tmp") }

type snap struct {
	file File
	data []byte
}

// snapshot reads path up to its size now and cuts it to a consistent end.
func snapshot(path, name string) (*snap, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(fh, fi.Size()))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	f := File{Name: name, Mode: fi.Mode().Perm(), Cut: CutWhole}
	switch {
	case isRecordLog(data):
		sc := record.NewScanner(bytes.NewReader(data), record.ScanOptions{})
		for sc.Next() {
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("scan %s: %w", name, err)
		}
		rep := sc.Report()
		end := rep.End
		if rep.Unterminated {
			// The last record is whole but its newline was not yet
			// written: leave it out, the next write completes it.
			end = lastNewline(data[:end])
			f.Records = rep.Records - 1
		} else {
			f.Records = rep.Records
		}
		f.Cut, f.Dropped, data = CutRecords, int64(len(data))-end, data[:end]
	case strings.HasSuffix(name, ".jsonl"):
		end := lastNewline(data)
		f.Cut, f.Dropped, data = CutLines, int64(len(data))-end, data[:end]
	}
	sum := sha256.Sum256(data)
	f.Size, f.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	return &snap{file: f, data: data}, nil
}

// isRecordLog tells a log in the record codec by its first line.
func isRecordLog(data []byte) bool {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return false
	}
	_, err := record.Parse(data[:i+1])
	return err == nil
}

func lastNewline(b []byte) int64 { return int64(bytes.LastIndexByte(b, '\n') + 1) }

// Restore unpacks a backup into dataDir, which must not exist or be empty:
// a restore never mixes with a hub's live data. Every file is checked
// against the manifest in a temporary directory beside dataDir, which then
// takes dataDir's place. Run as root, the files get dataDir's owner (the
// packaged /var/lib/vaka belongs to the vaka user).
func Restore(r io.Reader, dataDir string) (*Manifest, error) {
	dataDir = filepath.Clean(dataDir)
	owner, err := checkEmpty(dataDir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".restore-")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	m, err := unpack(r, tmp)
	if err != nil {
		return nil, err
	}
	if owner != nil {
		if err := chownAll(tmp, owner.uid, owner.gid); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.Remove(dataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	ok = true
	if err := record.SyncDir(filepath.Dir(dataDir)); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return m, nil
}

type ids struct{ uid, gid int }

func checkEmpty(dir string) (*ids, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("restore: %s is not a directory", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if len(ents) > 0 {
		return nil, fmt.Errorf("restore: %s is not empty (%d entries): stop the hub and move its data aside first; a restore never mixes with live data", dir, len(ents))
	}
	return fileOwner(fi), nil
}

// unpack writes every file to dir and checks it against the manifest.
func unpack(r io.Reader, dir string) (*Manifest, error) {
	zr, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("restore: not a vaka backup (gzip): %w", err)
	}
	tr := tar.NewReader(zr)
	got := map[string]File{}
	var m *Manifest
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("restore: damaged archive: %w", err)
		}
		if h.Name == ManifestName {
			m = &Manifest{}
			if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(m); err != nil {
				return nil, fmt.Errorf("restore: manifest: %w", err)
			}
			continue
		}
		name := filepath.FromSlash(h.Name)
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(name) {
			return nil, fmt.Errorf("restore: refusing archive entry %q", h.Name)
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(h.Mode).Perm())
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		hs := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, hs), tr)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("restore: write %s: %w", h.Name, err)
		}
		got[h.Name] = File{Name: h.Name, Size: n, SHA256: hex.EncodeToString(hs.Sum(nil))}
	}
	if m == nil {
		return nil, errors.New("restore: the archive has no " + ManifestName + ": cut short, or not a vaka backup")
	}
	if m.Format != Format {
		return nil, fmt.Errorf("restore: format %q is not %q", m.Format, Format)
	}
	if m.Version > Version {
		return nil, fmt.Errorf("restore: backup format version %d is newer than this vaka understands (%d): restore with a newer vaka", m.Version, Version)
	}
	if len(got) != len(m.Files) {
		return nil, fmt.Errorf("restore: archive holds %d files, manifest lists %d", len(got), len(m.Files))
	}
	for _, want := range m.Files {
		g, ok := got[want.Name]
		if !ok || g.Size != want.Size || g.SHA256 != want.SHA256 {
			return nil, fmt.Errorf("restore: %s does not match the manifest (damaged archive)", want.Name)
		}
	}
	return m, nil
}

func chownAll(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}
