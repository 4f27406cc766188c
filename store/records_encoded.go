package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vaka-care/vaka/internal/record"
)

// EncodedItem is one record for AppendEncoded: its time and its body,
// already encoded as one JSON object (package tillsyn's AppendJSON).
type EncodedItem struct {
	At   time.Time
	Body []byte
}

// AppendEncoded is AppendRecords for bodies the caller has encoded: the
// same lines, sequence numbers, single write(2) and all-or-none, without
// encoding/json, and without a buffer of its own per call. Why: a
// region's night encodes 30,000 supervision records at three instants,
// and reflection with a fresh buffer per record was much of a look-in's
// CPU and garbage. Each body must be one JSON object (it is checked only
// to begin with '{' and end with '}'): one that is not would make its
// line unreadable at the next Open, which skips it as damaged. The bodies
// are copied before it returns; the caller may reuse them.
func (j *Journal) AppendEncoded(rt string, items []EncodedItem) error {
	if rt == "" || strings.ContainsAny(rt, `"\`) {
		return errors.New("store: record type missing or not a plain word")
	}
	if len(items) == 0 {
		return nil
	}
	for i, it := range items {
		if n := len(it.Body); n < 2 || it.Body[0] != '{' || it.Body[n-1] != '}' {
			return fmt.Errorf("store: encoded record %d is not a JSON object", i)
		}
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errors.New("store: journal closed")
	}
	// As AppendRecords builds its lines; j.body is the scratch line (it is
	// appendLocked's, also only under j.mu).
	j.buf = j.buf[:0]
	line := j.body[:0]
	for i, it := range items {
		line = append(line[:0], `{"rt":"`...)
		line = append(line, rt...)
		line = append(line, `","seq":`...)
		line = strconv.AppendUint(line, j.seq+uint64(i)+1, 10)
		line = append(line, `,"at":"`...)
		line = it.At.AppendFormat(line, time.RFC3339Nano)
		line = append(line, `","body":`...)
		line = append(line, it.Body...)
		line = append(line, '}')
		j.buf = record.Append(j.buf, line)
	}
	j.body = line
	end, err := j.app.Append(j.buf)
	if err != nil {
		j.mu.Unlock()
		return fmt.Errorf("store: write journal: %w", err)
	}
	j.seq += uint64(len(items))
	j.Appends.Add(int64(len(items)))
	if cap(j.buf) > 1<<20 {
		j.buf, j.body = nil, nil
	}
	j.mu.Unlock()
	if j.opts.SyncEachWrite {
		if err := j.app.SyncTo(end); err != nil {
			return fmt.Errorf("store: fsync journal: %w", err)
		}
	}
	return nil
}
