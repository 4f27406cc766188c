package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	return j.AppendRecords(rt, []RecordItem{{At: at, Body: body}})
}

// RecordItem is one record for AppendRecords.
type RecordItem struct {
	At   time.Time
	Body any
}

// AppendRecords writes records of type rt with consecutive sequence
// numbers in one write(2): a night's 30,000 look-ins at 02:00 cost the
// alarm path, which shares the journal, a few hundred writes instead of
// one each. Either all are written or none (a failed write is cut back).
func (j *Journal) AppendRecords(rt string, items []RecordItem) error {
	if rt == "" || strings.ContainsAny(rt, `"\`) {
		return errors.New("store: record type missing or not a plain word")
	}
	if len(items) == 0 {
		return nil
	}
	bodies := make([][]byte, len(items))
	for i, it := range items {
		b, err := json.Marshal(it.Body)
		if err != nil {
			return fmt.Errorf("store: encode record: %w", err)
		}
		bodies[i] = b
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errors.New("store: journal closed")
	}
	// The line is built by hand: json.Marshal of a RawMessage would
	// re-check and compact each body under the lock the alarm path takes.
	j.buf = j.buf[:0]
	var line []byte
	for i, b := range bodies {
		line = append(line[:0], `{"rt":"`...)
		line = append(line, rt...)
		line = append(line, `","seq":`...)
		line = strconv.AppendUint(line, j.seq+uint64(i)+1, 10)
		line = append(line, `,"at":"`...)
		line = items[i].At.AppendFormat(line, time.RFC3339Nano)
		line = append(line, `","body":`...)
		line = append(line, b...)
		line = append(line, '}')
		j.buf = record.Append(j.buf, line)
	}
	end, err := j.app.Append(j.buf)
	if err != nil {
		j.mu.Unlock()
		return fmt.Errorf("store: write journal: %w", err)
	}
	j.seq += uint64(len(items))
	j.Appends.Add(int64(len(items)))
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
