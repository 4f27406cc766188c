// Package local is the embedded store of pilot records: an append-only,
// checksummed file (the internal/record format) in the hub's data dir, held in memory for the
// dashboards. With no InfluxDB configured (the demo default) the pilot
// dashboards read from here; with InfluxDB they read from it instead, and
// this file stays a local copy.
package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vaka-care/vaka/internal/record"
	"github.com/vaka-care/vaka/pilot"
)

// Store holds pilot records and device outages (a line per outage
// record; an outage that ends gets a second line, and the latest wins).
type Store struct {
	mu      sync.RWMutex
	app     *record.Appender
	recs    []pilot.Record
	outs    []pilot.Outage
	lookins []pilot.LookIn
	visits  []pilot.Visit
	skipped int
}

// outagePrefix starts the JSON of an outage line (pilot.Outage's first
// field); every other line is a pilot.Record.
var outagePrefix = []byte(`{"outage":`)

// lookinPrefix and visitPrefix start the JSON of digital night
// supervision lines (pilot.LookIn, pilot.Visit).
var (
	lookinPrefix = []byte(`{"lookin":`)
	visitPrefix  = []byte(`{"visit":`)
)

// Open loads (or creates) the store at path. Damaged lines are skipped
// and logged; a torn last line is cut; a write the disk refuses later is
// cut back, so it never joins the next record.
func Open(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	s := &Store{}
	sc := record.NewScanner(f, record.ScanOptions{MaxLine: 1 << 20})
	for sc.Next() {
		body := sc.Body()
		if bytes.HasPrefix(body, lookinPrefix) {
			var l pilot.LookIn
			if json.Unmarshal(body, &l) == nil {
				s.lookins = append(s.lookins, l)
				continue
			}
		} else if bytes.HasPrefix(body, visitPrefix) {
			var v pilot.Visit
			if json.Unmarshal(body, &v) == nil {
				s.visits = append(s.visits, v)
				continue
			}
		} else if bytes.HasPrefix(body, outagePrefix) {
			var o pilot.Outage
			if json.Unmarshal(body, &o) == nil {
				s.outs = append(s.outs, o)
				continue
			}
		} else {
			var r pilot.Record
			if json.Unmarshal(body, &r) == nil {
				s.recs = append(s.recs, r)
				continue
			}
		}
		s.skipped++
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("local: %w", err)
	}
	rep := sc.Report()
	s.skipped += rep.DamagedLines
	if rep.Torn != nil {
		s.skipped++
	}
	end := rep.End
	if err := f.Truncate(end); err != nil {
		f.Close()
		return nil, fmt.Errorf("local: %w", err)
	}
	if rep.Unterminated {
		// Whole but for its newline: it was loaded, so keep it.
		if _, err := f.WriteAt([]byte{'\n'}, end); err != nil {
			f.Close()
			return nil, fmt.Errorf("local: %w", err)
		}
		end++
	}
	if s.skipped > 0 {
		log.Warn("pilot: embedded store skipped damaged records", "skipped", s.skipped)
	}
	s.app = record.NewAppender(f, end, record.AppendOptions{})
	return s, nil
}

func appendLine(buf []byte, v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return buf, fmt.Errorf("local: %w", err)
	}
	return record.Append(buf, js), nil
}

// Add appends records durably (one fsync per call).
func (s *Store) Add(recs []pilot.Record) error {
	var buf []byte
	for _, r := range recs {
		var err error
		if buf, err = appendLine(buf, r); err != nil {
			return err
		}
	}
	return s.write(buf, func() { s.recs = append(s.recs, recs...) })
}

// AddOutages appends device outage records durably (one fsync per call).
func (s *Store) AddOutages(os []pilot.Outage) error {
	var buf []byte
	for _, o := range os {
		var err error
		if buf, err = appendLine(buf, o); err != nil {
			return err
		}
	}
	return s.write(buf, func() { s.outs = append(s.outs, os...) })
}

func (s *Store) write(buf []byte, keep func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app == nil {
		return errors.New("local: closed")
	}
	if _, err := s.app.Append(buf); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	if err := s.app.Sync(); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	keep()
	return nil
}

// Outages returns trial's device outages detected in [from-7d, to) (an
// outage that began before the period may reach into it), the latest
// record of each, oldest first.
func (s *Store) Outages(_ context.Context, trial string, from, to time.Time) ([]pilot.Outage, error) {
	from = from.Add(-7 * 24 * time.Hour)
	s.mu.RLock()
	var out []pilot.Outage
	for _, o := range s.outs {
		if o.Trial == trial && !o.DetectedAt.Before(from) && o.DetectedAt.Before(to) {
			out = append(out, o)
		}
	}
	s.mu.RUnlock()
	return pilot.Latest(out), nil
}

// AddSupervision appends look-ins and visits durably (one fsync per call).
func (s *Store) AddSupervision(ls []pilot.LookIn, vs []pilot.Visit) error {
	var buf []byte
	for _, l := range ls {
		var err error
		if buf, err = appendLine(buf, l); err != nil {
			return err
		}
	}
	for _, v := range vs {
		var err error
		if buf, err = appendLine(buf, v); err != nil {
			return err
		}
	}
	if len(buf) == 0 {
		return nil
	}
	return s.write(buf, func() { s.lookins = append(s.lookins, ls...); s.visits = append(s.visits, vs...) })
}

// Supervision returns trial's look-ins planned and visits made in
// [from, to), oldest first.
func (s *Store) Supervision(_ context.Context, trial string, from, to time.Time) ([]pilot.LookIn, []pilot.Visit, error) {
	s.mu.RLock()
	var ls []pilot.LookIn
	var vs []pilot.Visit
	for _, l := range s.lookins {
		if l.Trial == trial && !l.Planned.Before(from) && l.Planned.Before(to) {
			ls = append(ls, l)
		}
	}
	for _, v := range s.visits {
		if v.Trial == trial && !v.At.Before(from) && v.At.Before(to) {
			vs = append(vs, v)
		}
	}
	s.mu.RUnlock()
	slices.SortStableFunc(ls, func(a, b pilot.LookIn) int { return a.Planned.Compare(b.Planned) })
	slices.SortStableFunc(vs, func(a, b pilot.Visit) int { return a.At.Compare(b.At) })
	return ls, vs, nil
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
	if s.app == nil {
		return nil
	}
	err := s.app.Close()
	s.app = nil
	return err
}
