package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vaka-care/vaka/internal/format"
	"github.com/vaka-care/vaka/internal/record"
)

// Spool is a Queue on disk: every event is written (and fsynced) before
// the gateway tries to publish it, so a power cut, a SIGKILL or a crash
// loses nothing; after a restart the gateway sends what is left, in order.
//
// The file is an append-only log of checksummed lines:
//
//	P <crc32c> <json message>   a message was pushed (fsynced before Push returns)
//	D <event id>                it is done: acknowledged by the broker, or evicted for room
//	S <seq>                     the highest sequence number ever given out (written on compaction)
//
// The P record is an internal/record line behind its tag; package record
// scans the log, so a torn tail, a damaged line in the middle and a write
// the disk refused (cut back at once, never joined to the next record) are
// handled as in the alarm journal.
//
// Fsync policy: every pushed event is on disk before Push returns, none
// waits for done records. If a done record is lost in a crash, that
// message is sent again after the restart and the hub de-duplicates it by
// event id, so at-least-once plus de-duplication gives exactly-once alarms.
// The fsync is group-committed and runs under no lock: the gateway stages
// a push under its own lock (Stage) and waits for the disk after releasing
// it (Sync), so on a slow SD card one driver's fsync does not hold up the
// other drivers or the send loop, and pushes that wait together share one
// fsync. A torn last line or a damaged record is skipped and counted on
// open. The log is compacted (rewritten with only the pending messages:
// new file, fsync, rename, fsync of the directory) on open, whenever it
// empties past 1 MiB, and whenever it grows past four times what it holds,
// so its size on disk stays within a small multiple of the byte bound.
//
// The spool also keeps the gateway's sequence number across restarts (S
// records and the sequence of every P record), so a restarted gateway never
// reuses a sequence number.
type Spool struct {
	mu      sync.Mutex // guards all below; never held across an fsync but a compaction's
	mem     *MemQueue
	dir     string
	app     *record.Appender
	lastSeq uint64

	// Corrupt counts records skipped or cut when the spool was opened.
	Corrupt int

	writeErrs atomic.Int64
}

var _ Queue = (*Spool)(nil)

const spoolFile = "spool.log"

// compactAt is the log size at which an empty spool truncates it.
const compactAt = 1 << 20

// OpenSpool opens (or creates) the spool in dir, holding at most max
// messages, and loads what a previous run left.
func OpenSpool(dir string, max int) (*Spool, error) { return OpenSpoolLimits(dir, max, 0) }

// OpenSpoolLimits is OpenSpool bounded also by maxBytes (payloads plus a
// small per-message overhead; 0 for no byte bound).
func OpenSpoolLimits(dir string, maxRecords int, maxBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("gateway: spool dir: %w", err)
	}
	s := &Spool{mem: NewMemQueue(maxRecords), dir: dir}
	s.mem.SetMaxBytes(maxBytes)
	path := filepath.Join(dir, spoolFile)
	// An older gateway must not misread a spool a newer one wrote (spool_format.go).
	if _, err := format.Check(path, SpoolFormatKind, SpoolFormatVersion); err != nil {
		return nil, fmt.Errorf("gateway: spool: %w", err)
	}
	if err := s.load(path); err != nil {
		return nil, err
	}
	if err := s.rewrite(); err != nil {
		return nil, err
	}
	return s, nil
}

// verifySpoolLine checks one line of the log for record.Scanner.
func verifySpoolLine(line []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(line, []byte("P ")):
		if _, ok := parsePush(line[2:]); ok {
			return line, nil
		}
	case bytes.HasPrefix(line, []byte("S ")):
		if _, err := strconv.ParseUint(string(line[2:]), 10, 64); err == nil {
			return line, nil
		}
	case bytes.HasPrefix(line, []byte("D ")) && len(line) > 2:
		return line, nil
	}
	return nil, record.ErrFormat
}

func (s *Spool) load(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gateway: open spool: %w", err)
	}
	defer f.Close()
	var pending []Message
	index := map[string]int{}
	sc := record.NewScanner(f, record.ScanOptions{Verify: verifySpoolLine})
	for sc.Next() {
		line := sc.Body()
		switch line[0] {
		case 'P':
			m, _ := parsePush(line[2:])
			index[m.ID] = len(pending)
			pending = append(pending, m)
			s.lastSeq = max(s.lastSeq, m.Seq)
		case 'S':
			n, _ := strconv.ParseUint(string(line[2:]), 10, 64)
			s.lastSeq = max(s.lastSeq, n)
		case 'D':
			if i, ok := index[string(line[2:])]; ok {
				pending[i].ID = "" // done
				delete(index, string(line[2:]))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("gateway: read spool: %w", err)
	}
	rep := sc.Report()
	s.Corrupt = rep.DamagedLines
	if rep.Torn != nil {
		s.Corrupt++
	}
	for _, m := range pending {
		if m.ID == "" {
			continue
		}
		if _, err := s.mem.Push(m); err != nil {
			// More left than the configured size: keep it anyway rather
			// than lose an event a previous run accepted.
			s.mem.buf = append(s.mem.buf, m)
			s.mem.bytes += msgSize(&m)
		}
	}
	return nil
}

func parsePush(b []byte) (Message, bool) {
	body, err := record.Parse(b)
	if err != nil {
		return Message{}, false
	}
	var m Message
	if json.Unmarshal(body, &m) != nil || m.ID == "" {
		return Message{}, false
	}
	return m, true
}

// rewrite replaces the log with the pending messages only (atomically:
// new file, fsync, rename, fsync of the directory), then opens it for
// appending. The old log is closed first; its records are all in the new
// one, so a Sync waiting on it is answered.
func (s *Spool) rewrite() error {
	if s.app != nil {
		_ = s.app.Close()
		s.app = nil
	}
	var buf []byte
	if s.lastSeq > 0 {
		buf = fmt.Appendf(buf, "S %d\n", s.lastSeq)
	}
	for i := s.mem.head; i < len(s.mem.buf); i++ {
		var err error
		if buf, err = appendPush(buf, s.mem.buf[i]); err != nil {
			return err
		}
	}
	path := filepath.Join(s.dir, spoolFile)
	if err := record.WriteFile(path, buf, 0o640); err != nil {
		return fmt.Errorf("gateway: spool: %w", err)
	}
	f, err := openSpoolFile(path)
	if err != nil {
		return fmt.Errorf("gateway: spool: %w", err)
	}
	s.app = record.NewAppender(f, int64(len(buf)), record.AppendOptions{})
	return nil
}

// openSpoolFile opens the log for the appender; a test swaps it for a
// file whose fsync it controls.
var openSpoolFile = func(path string) (record.File, error) {
	return os.OpenFile(path, os.O_WRONLY, 0o640)
}

func appendPush(dst []byte, m Message) ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return dst, fmt.Errorf("gateway: spool encode: %w", err)
	}
	return record.Append(append(dst, 'P', ' '), js), nil
}

func pushRecord(m Message) ([]byte, error) { return appendPush(nil, m) }

// Push implements Queue: the message is on disk before Push returns nil.
func (s *Spool) Push(m Message) ([]Message, error) {
	evicted, err := s.Stage(m)
	if err != nil {
		return evicted, err
	}
	_ = s.Sync() // counted; the message is queued and will be sent
	return evicted, nil
}

// Stage is Push without waiting for the disk: the record is written (one
// write) but not yet fsynced. Call Sync, without holding a lock that
// others need, before telling anyone the message is safe.
func (s *Spool) Stage(m Message) ([]Message, error) {
	rec, err := pushRecord(m)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	evicted, err := s.mem.Push(m)
	if err != nil {
		return nil, err
	}
	s.lastSeq = max(s.lastSeq, m.Seq)
	for _, e := range evicted {
		s.writeLocked([]byte("D " + e.ID + "\n"))
	}
	// A failed write is not lost: the message is queued in memory and
	// will be sent; it is counted because it would not survive a restart.
	s.writeLocked(rec)
	s.maybeCompactLocked()
	return evicted, nil
}

// Sync returns once every record written before the call is on disk.
// Concurrent callers share one fsync, and none holds the spool's lock
// while it runs.
func (s *Spool) Sync() error {
	s.mu.Lock()
	app := s.app
	s.mu.Unlock()
	if app == nil {
		return nil // closed: Close synced everything written before it
	}
	if err := app.Sync(); err != nil && !errors.Is(err, record.ErrClosed) {
		s.writeErrs.Add(1)
		return fmt.Errorf("gateway: spool fsync: %w", err)
	}
	return nil
}

func (s *Spool) writeLocked(rec []byte) {
	if s.app == nil {
		s.writeErrs.Add(1)
		return
	}
	if _, err := s.app.Append(rec); err != nil {
		s.writeErrs.Add(1)
	}
}

// maybeCompactLocked rewrites a log that has grown to more than four times
// what it holds (and past 1 MiB), so a long outage with evictions cannot
// fill the disk with records of messages long gone.
func (s *Spool) maybeCompactLocked() {
	if s.app == nil {
		return
	}
	if size := s.app.Size(); size > compactAt && size > 4*s.mem.Bytes() {
		if err := s.rewrite(); err != nil {
			s.writeErrs.Add(1)
		}
	}
}

// Front implements Queue.
func (s *Spool) Front() (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mem.Front()
}

// Pop implements Queue: the front message was acknowledged by the broker.
func (s *Spool) Pop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.mem.Front()
	if !ok {
		return
	}
	s.mem.Pop()
	s.writeLocked([]byte("D " + m.ID + "\n")) // if lost: resent after a restart and de-duplicated
	s.maybeCompactLocked()
}

// Len implements Queue.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mem.Len()
}

// IDs lists the event ids held, oldest first (for tests and the health page).
func (s *Spool) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, s.mem.Len())
	for i := s.mem.head; i < len(s.mem.buf); i++ {
		out = append(out, s.mem.buf[i].ID)
	}
	return out
}

// WriteErrors counts records the disk refused or failed to sync; those
// messages are still queued in memory and will be sent, but would not
// survive a restart.
func (s *Spool) WriteErrors() int { return int(s.writeErrs.Load()) }

// MaxSeq is the highest sequence number ever pushed, kept across restarts
// even when the spool is empty, so a restarted gateway continues the
// sequence instead of reusing numbers.
func (s *Spool) MaxSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq
}

// Bytes is the approximate size of the pending messages (what the byte
// bound limits).
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mem.Bytes()
}

// Close syncs and closes the spool file.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app == nil {
		return nil
	}
	err := s.app.Close()
	s.app = nil
	return err
}
