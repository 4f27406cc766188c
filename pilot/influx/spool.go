package influx

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vaka-care/vaka/internal/record"
)

// Spool is a durable, bounded, append-only queue of line-protocol lines in
// front of InfluxDB. Each line is stored as "<crc32c hex> <line>\n" in
// numbered segment files (the internal/record format); a cursor file,
// replaced atomically, records what InfluxDB has taken. A torn tail (power
// cut mid-write) is cut at open; a write the disk refuses is cut back at
// once; a line whose checksum does not match is skipped and counted. When
// the spool holds maxBytes, further lines are refused and counted: never
// silently.
type Spool struct {
	dir      string
	maxBytes int64
	segMax   int64

	mu     sync.Mutex
	segs   []segment        // oldest first; the last is the one appended to
	app    *record.Appender // the last segment
	cur    Cursor           // committed read position
	closed bool
	wbuf   []byte // Append's buffer, reused

	dropped atomic.Int64 // lines refused because the spool was full
	corrupt atomic.Int64 // lines skipped for a bad checksum or cut as a torn tail
}

type segment struct {
	n    uint64
	size int64 // bytes written and synced
}

// Cursor is a read position: a segment and a byte offset in it.
type Cursor struct {
	Seg uint64
	Off int64
}

// DefaultSegment is the size at which the spool starts a new segment file.
const DefaultSegment = 8 << 20

// OpenSpool opens (or creates) the spool in dir.
func OpenSpool(dir string, maxBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("influx: spool: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, segMax: min(DefaultSegment, max(maxBytes/4, 4096))}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("influx: spool: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "seg-") || !strings.HasSuffix(name, ".log") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "seg-"), ".log"), 10, 64)
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("influx: spool: %w", err)
		}
		s.segs = append(s.segs, segment{n: n, size: fi.Size()})
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return cmpU(a.n, b.n) })
	if b, err := os.ReadFile(filepath.Join(dir, "cursor")); err == nil {
		if _, err := fmt.Sscanf(string(b), "%d %d", &s.cur.Seg, &s.cur.Off); err != nil {
			s.cur = Cursor{}
		}
	}
	if len(s.segs) == 0 {
		s.segs = []segment{{n: max(s.cur.Seg, 1)}}
	}
	last := &s.segs[len(s.segs)-1]
	if err := s.cutTornTail(last); err != nil {
		return nil, err
	}
	if s.cur.Seg < s.segs[0].n || s.cur.Seg > last.n {
		s.cur = Cursor{Seg: s.segs[0].n}
	}
	if s.app, err = s.openSegment(last.n, last.size); err != nil {
		return nil, err
	}
	return s, nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Spool) path(n uint64) string { return filepath.Join(s.dir, fmt.Sprintf("seg-%016d.log", n)) }

// cutTornTail truncates the last segment after its last complete line,
// and ends a whole last record that lacks only its newline.
func (s *Spool) cutTornTail(seg *segment) error {
	f, err := os.OpenFile(s.path(seg.n), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("influx: spool: %w", err)
	}
	defer f.Close()
	sc := record.NewScanner(f, record.ScanOptions{})
	for sc.Next() {
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("influx: spool: %w", err)
	}
	rep := sc.Report()
	keep := rep.End
	if rep.Torn != nil {
		s.corrupt.Add(1)
	}
	if err := f.Truncate(keep); err != nil {
		return fmt.Errorf("influx: spool: %w", err)
	}
	if rep.Unterminated {
		if _, err := f.WriteAt([]byte{'\n'}, keep); err != nil {
			return fmt.Errorf("influx: spool: %w", err)
		}
		keep++
	}
	seg.size = keep
	return nil
}

// openSegment opens segment n for appending at size.
func (s *Spool) openSegment(n uint64, size int64) (*record.Appender, error) {
	f, err := os.OpenFile(s.path(n), os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("influx: spool: %w", err)
	}
	return record.NewAppender(f, size, record.AppendOptions{}), nil
}

// pendingLocked is the bytes not yet taken by InfluxDB.
func (s *Spool) pendingLocked() int64 {
	var n int64
	for _, g := range s.segs {
		if g.n >= s.cur.Seg {
			n += g.size
		}
		if g.n == s.cur.Seg {
			n -= s.cur.Off
		}
	}
	return n
}

// Pending is the bytes waiting for InfluxDB.
func (s *Spool) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingLocked()
}

// Dropped counts lines refused because the spool was full.
func (s *Spool) Dropped() int64 { return s.dropped.Load() }

// Corrupt counts lines skipped for a bad checksum, and a torn last line cut at open.
func (s *Spool) Corrupt() int64 { return s.corrupt.Load() }

// Append stores lines durably (one fsync for the call). Lines that do not
// fit are refused and counted; it returns how many were stored.
func (s *Spool) Append(lines [][]byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("influx: spool closed")
	}
	room := s.maxBytes - s.pendingLocked()
	buf := s.wbuf[:0]
	defer func() {
		if cap(buf) <= 16<<20 {
			s.wbuf = buf[:0] // reuse, unless one huge batch grew it
		}
	}()
	n := 0
	for _, l := range lines {
		need := int64(len(l) + 10)
		if need > room {
			break
		}
		room -= need
		buf = record.Append(buf, l)
		n++
	}
	if n < len(lines) {
		s.dropped.Add(int64(len(lines) - n))
	}
	if n == 0 {
		return 0, nil
	}
	last := &s.segs[len(s.segs)-1]
	if _, err := s.app.Append(buf); err != nil {
		// Nothing of it stays in the segment (the appender cut it back).
		s.dropped.Add(int64(n))
		return 0, fmt.Errorf("influx: spool: %w", err)
	}
	if err := s.app.Sync(); err != nil {
		return n, fmt.Errorf("influx: spool: %w", err)
	}
	last.size += int64(len(buf))
	if last.size >= s.segMax {
		if err := s.rotateLocked(); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *Spool) rotateLocked() error {
	next := s.segs[len(s.segs)-1].n + 1
	app, err := s.openSegment(next, 0)
	if err != nil {
		return err
	}
	_ = s.app.Close() // synced already: every Append syncs
	s.app = app
	s.segs = append(s.segs, segment{n: next})
	return nil
}

// Batch is lines read from the spool: Body holds them, each ending in
// '\n' (a request body for InfluxDB as it is), Lines counts them, and Next
// is the cursor after them.
type Batch struct {
	Body  []byte
	Lines int
	Next  Cursor
}

// Committed is the read position InfluxDB has taken everything before.
func (s *Spool) Committed() Cursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Read returns up to max lines from the committed cursor, and the cursor
// after them; Commit it once InfluxDB has taken them.
func (s *Spool) Read(max int) ([]string, Cursor, error) {
	b, err := s.ReadBatch(s.Committed(), max, nil)
	var out []string
	for rest := b.Body; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		out = append(out, string(rest[:i]))
		rest = rest[i+1:]
	}
	return out, b.Next, err
}

// ReadBatch reads up to max checked lines from cur into buf (reused,
// appended to). Lines whose checksum fails are skipped and counted; a
// batch of none may still move Next past them.
func (s *Spool) ReadBatch(cur Cursor, max int, buf []byte) (Batch, error) {
	s.mu.Lock()
	segs := slices.Clone(s.segs)
	s.mu.Unlock()
	b := Batch{Body: buf[:0]}
	for _, g := range segs {
		if g.n < cur.Seg {
			continue
		}
		if g.n > cur.Seg {
			if cur.Off < segSize(segs, cur.Seg) {
				break // not done with the current one (cannot happen)
			}
			cur = Cursor{Seg: g.n}
		}
		if cur.Off >= g.size {
			continue
		}
		f, err := os.Open(s.path(g.n))
		if err != nil {
			b.Next = cur
			return b, fmt.Errorf("influx: spool: %w", err)
		}
		r := bufio.NewReaderSize(io.NewSectionReader(f, cur.Off, g.size-cur.Off), 256<<10)
		for b.Lines < max {
			line, err := r.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				// A line longer than the buffer: read it whole.
				rest, err2 := r.ReadBytes('\n')
				line = append(slices.Clone(line), rest...)
				err = err2
			}
			if err != nil {
				break // end of the synced part
			}
			cur.Off += int64(len(line))
			if body, ok := check(line); ok {
				b.Body = append(b.Body, body...)
				b.Body = append(b.Body, '\n')
				b.Lines++
			} else {
				s.corrupt.Add(1)
			}
		}
		f.Close()
		if b.Lines >= max {
			break
		}
	}
	b.Next = cur
	return b, nil
}

func segSize(segs []segment, n uint64) int64 {
	for _, g := range segs {
		if g.n == n {
			return g.size
		}
	}
	return 0
}

// check returns a spooled line's body (without its newline) if its
// checksum matches.
func check(line []byte) ([]byte, bool) {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		return nil, false
	}
	body, err := record.Parse(line)
	return body, err == nil
}

// Commit records that InfluxDB has taken everything before c, and removes
// segments wholly behind it.
func (s *Spool) Commit(c Cursor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A fully read last segment with data: start a fresh one so the old
	// one can go.
	last := s.segs[len(s.segs)-1]
	if c.Seg == last.n && c.Off >= last.size && last.size > 0 && !s.closed {
		if err := s.rotateLocked(); err != nil {
			return err
		}
		c = Cursor{Seg: last.n + 1}
	}
	// Atomic and durable (the rename fsynced with its directory): a cursor
	// lost in a power cut would send InfluxDB lines again, and a torn one
	// would start from the beginning.
	if err := record.WriteFile(filepath.Join(s.dir, "cursor"), fmt.Appendf(nil, "%d %d\n", c.Seg, c.Off), 0o640); err != nil {
		return fmt.Errorf("influx: spool: %w", err)
	}
	s.cur = c
	keep := s.segs[:0]
	for _, g := range s.segs {
		if g.n < c.Seg {
			_ = os.Remove(s.path(g.n))
			continue
		}
		keep = append(keep, g)
	}
	s.segs = keep
	return nil
}

// Close closes the spool; what InfluxDB has not taken stays on disk.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.app.Close()
}
