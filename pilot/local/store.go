// Package local is the embedded store of pilot records: an append-only,
// checksummed file in the hub's data dir, held in memory for the
// dashboards. With no InfluxDB configured (the demo default) the pilot
// dashboards read from here; with InfluxDB they read from it instead, and
// this file stays a local copy.
package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vaka-care/vaka/pilot"
)

// Store holds pilot records.
type Store struct {
	mu      sync.RWMutex
	f       *os.File
	recs    []pilot.Record
	skipped int
}

var table = crc32.MakeTable(crc32.Castagnoli)

// Open loads (or creates) the store at path. Lines that fail their
// checksum (a torn last write) are skipped and logged.
func Open(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	s := &Store{}
	if b, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			r, ok := decode(sc.Bytes())
			if !ok {
				s.skipped++
				continue
			}
			s.recs = append(s.recs, r)
		}
		if keep := bytes.LastIndexByte(b, '\n') + 1; keep != len(b) {
			if err := os.Truncate(path, int64(keep)); err != nil {
				return nil, fmt.Errorf("local: %w", err)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("local: %w", err)
	}
	if s.skipped > 0 {
		log.Warn("pilot: embedded store skipped damaged records", "skipped", s.skipped)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	s.f = f
	return s, nil
}

func decode(line []byte) (pilot.Record, bool) {
	var r pilot.Record
	if len(line) < 10 || line[8] != ' ' {
		return r, false
	}
	var want uint32
	if _, err := fmt.Sscanf(string(line[:8]), "%08x", &want); err != nil {
		return r, false
	}
	body := line[9:]
	if crc32.Checksum(body, table) != want || json.Unmarshal(body, &r) != nil {
		return r, false
	}
	return r, true
}

// Add appends records durably (one fsync per call).
func (s *Store) Add(recs []pilot.Record) error {
	var buf []byte
	for _, r := range recs {
		js, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("local: %w", err)
		}
		buf = fmt.Appendf(buf, "%08x ", crc32.Checksum(js, table))
		buf = append(buf, js...)
		buf = append(buf, '\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("local: closed")
	}
	if _, err := s.f.Write(buf); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	s.recs = append(s.recs, recs...)
	return nil
}

// Len is how many records the store holds.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.recs)
}

// Records returns trial's records raised in [from, to), oldest first.
func (s *Store) Records(_ context.Context, trial string, from, to time.Time) ([]pilot.Record, error) {
	s.mu.RLock()
	var out []pilot.Record
	for _, r := range s.recs {
		if r.Trial == trial && !r.RaisedAt.Before(from) && r.RaisedAt.Before(to) {
			out = append(out, r)
		}
	}
	s.mu.RUnlock()
	slices.SortStableFunc(out, func(a, b pilot.Record) int { return a.RaisedAt.Compare(b.RaisedAt) })
	return out, nil
}

// Close closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
