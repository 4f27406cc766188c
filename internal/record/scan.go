package record

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Damage is one line that did not hold a valid record.
type Damage struct {
	Line   int   // 1-based line number in the file
	Offset int64 // byte offset where the damaged bytes start
	Len    int   // damaged bytes, including the newline if there was one
	// Torn is set for the last line of the file when it has no newline:
	// a write that was cut (power cut, full disk). Its bytes are cut off
	// before the next append. Damage that is not torn sits between good
	// records and is skipped, not cut: the bytes stay as evidence.
	Torn bool
	// Sum is the CRC-32C of the damaged bytes (0 for a line too long to
	// hold): with Offset and Len it tells the same damage found again at
	// the next open from new damage.
	Sum uint32
	Err error
}

func (d Damage) String() string {
	kind := "damaged"
	if d.Torn {
		kind = "torn tail"
	}
	return fmt.Sprintf("%s: line %d, byte %d, %d bytes", kind, d.Line, d.Offset, d.Len)
}

// MaxReported bounds the damage a Report lists one by one; DamagedLines
// still counts all of it.
const MaxReported = 64

// Report is what a Scanner found once it has reached the end of the file.
type Report struct {
	Records      int      // valid records
	DamagedLines int      // damaged lines in the middle (skipped)
	Damaged      []Damage // the first MaxReported of them
	Torn         *Damage  // the cut last line, if any
	// End is where the next record must go: after the last complete
	// line, so a torn tail is cut (truncate the file to End).
	End int64
	// Unterminated is set when the last record is whole but lacks its
	// newline (the cut fell just before it). It was returned; write a
	// newline at End before the next record or the two would join.
	Unterminated bool
}

// Lost reports whether the file lost anything: a damaged line or a torn tail.
func (r *Report) Lost() bool { return r.DamagedLines > 0 || r.Torn != nil }

// ScanOptions tune a Scanner.
type ScanOptions struct {
	// Verify checks one line (without its newline) and returns the body to
	// hand out. Nil means Parse. A log with several kinds of line (the
	// gateway spool's tags) passes its own. Returning an error marks the
	// line damaged; the error is reported.
	Verify func(line []byte) ([]byte, error)
	// MaxLine is the longest line accepted (default 4 MiB); a longer one is
	// damage, skipped without holding it in memory.
	MaxLine int
}

// Scanner walks a log line by line and hands out the bodies of valid
// records. A damaged line is skipped and reported; when the damage joined
// a record onto it (a flipped newline, or half a record in front of a
// whole one), the record at the end of the line is still found.
type Scanner struct {
	r      *bufio.Reader
	verify func([]byte) ([]byte, error)
	max    int

	off     int64 // offset of the next line
	skipped int   // length of the last too-long line
	lineNo  int
	body    []byte
	recOff  int64
	recLine int
	err     error
	done    bool
	rep     Report
}

// NewScanner returns a Scanner reading r from its start (offset 0).
func NewScanner(r io.Reader, opts ScanOptions) *Scanner {
	s := &Scanner{r: bufio.NewReaderSize(r, 64<<10), verify: opts.Verify, max: opts.MaxLine}
	if s.verify == nil {
		s.verify = Parse
	}
	if s.max <= 0 {
		s.max = 4 << 20
	}
	return s
}

// Next advances to the next valid record. It returns false at the end of
// the file or on a read error (see Err).
func (s *Scanner) Next() bool {
	for !s.done {
		line, terminated, tooLong, err := s.readLine()
		if err != nil {
			s.err = fmt.Errorf("record: read: %w", err)
			s.done = true
			return false
		}
		if len(line) == 0 && !terminated && !tooLong {
			s.done = true // clean end of file
			return false
		}
		s.lineNo++
		start := s.off
		n := len(line)
		if terminated {
			n++
		}
		if tooLong {
			n = s.skipped
		}
		s.off += int64(n)
		if tooLong {
			s.damage(Damage{Line: s.lineNo, Offset: start, Len: n, Torn: !terminated, Err: fmt.Errorf("%w: line longer than %d bytes", ErrDamaged, s.max)})
			continue
		}
		body, verr := s.verify(line)
		if verr == nil {
			s.found(body, start, terminated)
			return true
		}
		if !terminated {
			// The last line, cut. Nothing after it can be a record.
			s.damage(Damage{Line: s.lineNo, Offset: start, Len: n, Torn: true, Sum: sum(line), Err: verr})
			s.done = true
			return false
		}
		if p, body, ok := s.resync(line); ok {
			s.damage(Damage{Line: s.lineNo, Offset: start, Len: p, Sum: sum(line[:p]), Err: verr})
			s.found(body, start+int64(p), true)
			return true
		}
		s.damage(Damage{Line: s.lineNo, Offset: start, Len: n, Sum: sum(line), Err: verr})
	}
	return false
}

func (s *Scanner) found(body []byte, at int64, terminated bool) {
	s.body, s.recOff, s.recLine = body, at, s.lineNo
	s.rep.Records++
	s.rep.End = s.off
	s.rep.Unterminated = !terminated
	if !terminated {
		s.done = true
	}
}

func (s *Scanner) damage(d Damage) {
	if d.Torn {
		s.rep.Torn = &d
		return
	}
	s.rep.End = s.off
	s.rep.Unterminated = false
	s.rep.DamagedLines++
	if len(s.rep.Damaged) < MaxReported {
		s.rep.Damaged = append(s.rep.Damaged, d)
	}
}

// resync looks for a whole record at the end of a damaged line: one whose
// newline was flipped joins the next record onto it, and a failed write
// that was not cut leaves half a record in front of the next one. Only
// positions that look like a checksum (eight hex digits and a space,
// optionally after a one-letter tag) are tried, so garbage costs little.
func (s *Scanner) resync(line []byte) (int, []byte, bool) {
	for p := 1; p+9 <= len(line); p++ {
		if line[p+8] != ' ' || !isHex8(line[p:p+8]) {
			continue
		}
		if p >= 2 && line[p-1] == ' ' && line[p-2] != ' ' {
			if body, err := s.verify(line[p-2:]); err == nil {
				return p - 2, body, true
			}
		}
		if body, err := s.verify(line[p:]); err == nil {
			return p, body, true
		}
	}
	return 0, nil, false
}

func sum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func isHex8(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// readLine returns the next line without its newline. A line longer than
// max is discarded (tooLong, with its length in s.skipped).
func (s *Scanner) readLine() (line []byte, terminated, tooLong bool, err error) {
	var acc []byte
	total := 0
	for {
		frag, err := s.r.ReadSlice('\n')
		total += len(frag)
		if !tooLong {
			if total > s.max+1 {
				tooLong, acc = true, nil
			} else if acc != nil || errors.Is(err, bufio.ErrBufferFull) {
				acc = append(acc, frag...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				s.skipped = total
				return nil, true, true, nil
			}
			if acc != nil {
				frag = acc
			}
			return frag[:len(frag)-1], true, false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if tooLong {
				s.skipped = total
				return nil, false, true, nil
			}
			if acc != nil {
				frag = acc
			}
			return frag, false, false, nil
		default:
			return nil, false, false, err
		}
	}
}

// Body is the current record's body. It is valid until the next call to Next.
func (s *Scanner) Body() []byte { return s.body }

// Offset is the byte offset of the current record.
func (s *Scanner) Offset() int64 { return s.recOff }

// Line is the 1-based line number of the current record.
func (s *Scanner) Line() int { return s.recLine }

// Err is the read error that stopped the scan, if any. Damage is not an
// error: it is in Report.
func (s *Scanner) Err() error { return s.err }

// Report is what the scan found so far; complete once Next returned false.
func (s *Scanner) Report() Report { return s.rep }
