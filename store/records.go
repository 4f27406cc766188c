package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vaka-care/vaka/internal/record"
)

// Record is a journal record that is not an alarm transition: a
// supervision record of a night look-in (rt "tillsyn") or a physical visit
// staff recorded (rt "visit"), package tillsyn. It shares the journal's
// sequence numbers, CRC and durability with the transitions, so a lost one
// is counted like any other.
//
// Its JSON begins with "rt", which no transition has: this package routes
// it by that prefix and never hands it to the alarm replay. A hub built
// before records existed reads it as a transition of no alarm and skips it
// with one error log line ("journal transition for unknown alarm"); its
// seq still closes the sequence, so no loss is reported.
type Record struct {
	Type string          `json:"rt"`
	Seq  uint64          `json:"seq"`
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// DefaultKeepRecords is how far back from the newest record Open keeps
// records for Records: the night under way and the one before.
const DefaultKeepRecords = 72 * time.Hour

var recordPrefix = []byte(`{"rt":`)

func isRecord(body []byte) bool { return bytes.HasPrefix(body, recordPrefix) }

// AppendRecord writes a record of type rt with the next sequence number,
// as durably as Append writes a transition.
func (j *Journal) AppendRecord(rt string, at time.Time, body any) error {
	if rt == "" {
		return errors.New("store: record type missing")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("store: encode record: %w", err)
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errors.New("store: journal closed")
	}
	r := Record{Type: rt, Seq: j.seq + 1, At: at, Body: b}
	line, err := json.Marshal(r)
	if err != nil {
		j.mu.Unlock()
		return fmt.Errorf("store: encode record: %w", err)
	}
	j.buf = record.Append(j.buf[:0], line)
	end, err := j.app.Append(j.buf)
	if err != nil {
		j.mu.Unlock()
		return fmt.Errorf("store: write journal: %w", err)
	}
	j.seq = r.Seq
	j.Appends.Add(1)
	j.mu.Unlock()
	if j.opts.SyncEachWrite {
		if err := j.app.SyncTo(end); err != nil {
			return fmt.Errorf("store: fsync journal: %w", err)
		}
	}
	return nil
}

// Records returns the records Open read within KeepRecords, in journal
// order, and lets the journal forget them.
func (j *Journal) Records() []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.records
	j.records = nil
	return out
}

// ReadRecords reads the records of type rt with At in [from, to) from the
// journal in dir, without opening it for writing (a pilot report or a
// replay beside a running hub). Damaged lines are skipped, as Open does.
func ReadRecords(dir, rt string, from, to time.Time) ([]Record, error) {
	f, err := os.Open(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("store: read records: %w", err)
	}
	defer f.Close()
	var cur Record
	var want bool
	verify := func(line []byte) ([]byte, error) {
		body, err := record.Parse(line)
		if err != nil {
			return nil, err
		}
		want = false
		if !isRecord(body) {
			return body, nil
		}
		cur = Record{}
		if err := json.Unmarshal(body, &cur); err != nil {
			return nil, fmt.Errorf("%w: bad record: %w", record.ErrDamaged, err)
		}
		want = cur.Type == rt && !cur.At.Before(from) && cur.At.Before(to)
		return body, nil
	}
	sc := record.NewScanner(f, record.ScanOptions{Verify: verify})
	var out []Record
	for sc.Next() {
		if want {
			out = append(out, cur)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("store: read records: %w", err)
	}
	return out, nil
}
