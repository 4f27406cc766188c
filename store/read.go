package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/record"
)

// maxRecord bounds one record read back by Read; the longest the hub
// writes (a raise with a 2,000-character note) is far shorter.
const maxRecord = 1 << 20

// Read reads back the transitions written at the given positions
// (Transition.Rec: byte offset plus one), in the order given. It is what
// serves an alarm's older history, which the hub no longer keeps in
// memory. Reads run beside appends (pread), without the journal's lock.
func (j *Journal) Read(recs []int64) ([]alarm.Transition, error) {
	out := make([]alarm.Transition, 0, len(recs))
	buf := make([]byte, 4096)
	for _, rec := range recs {
		if rec <= 0 {
			return out, fmt.Errorf("store: read: no journal position")
		}
		line, err := j.readLine(rec-1, buf)
		if err != nil {
			return out, err
		}
		body, err := record.Parse(line)
		if err != nil {
			return out, fmt.Errorf("store: read at %d: %w", rec-1, err)
		}
		var t alarm.Transition
		if err := json.Unmarshal(body, &t); err != nil {
			return out, fmt.Errorf("store: read at %d: %w", rec-1, err)
		}
		t.Rec = rec
		out = append(out, t)
	}
	return out, nil
}

// readLine reads the line starting at off, growing buf as needed.
func (j *Journal) readLine(off int64, buf []byte) ([]byte, error) {
	for {
		n, err := j.f.ReadAt(buf, off)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return buf[:i+1], nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("store: read at %d: %w", off, err)
		}
		if n < len(buf) {
			return nil, fmt.Errorf("store: read at %d: %w: no whole record", off, record.ErrDamaged)
		}
		if len(buf) >= maxRecord {
			return nil, fmt.Errorf("store: read at %d: %w: record longer than %d bytes", off, record.ErrDamaged, maxRecord)
		}
		buf = make([]byte, 2*len(buf))
	}
}
