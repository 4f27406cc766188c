package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
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
// Fsync policy: one fsync per pushed event, none for done records. If a
// done record is lost in a crash, that message is sent again after the
// restart and the hub de-duplicates it by event id, so at-least-once plus
// de-duplication gives exactly-once alarms. A torn last line (power cut
// mid-write) or a record whose checksum fails is cut and counted on open.
// The log is compacted (rewritten with only the pending messages: new file,
// fsync, rename, fsync of the directory) on open, whenever it empties past
// 1 MiB, and whenever it grows past four times what it holds, so its size on
// disk stays within a small multiple of the byte bound.
//
// The spool also keeps the gateway's sequence number across restarts (S
// records and the sequence of every P record), so a restarted gateway never
// reuses a sequence number.
type Spool struct {
	mem  *MemQueue
	dir  string
	f    *os.File
	size int64

	// Corrupt counts records skipped or cut when the spool was opened.
	Corrupt int
	// WriteErrors counts records the disk refused; the message is still
	// queued in memory and will be sent, but would not survive a restart.
	WriteErrors int

	lastSeq uint64
}

var _ Queue = (*Spool)(nil)

const spoolFile = "spool.log"

// compactAt is the log size at which an empty spool truncates it.
const compactAt = 1 << 20

var spoolCRC = crc32.MakeTable(crc32.Castagnoli)

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
	if err := s.load(path); err != nil {
		return nil, err
	}
	if err := s.rewrite(); err != nil {
		return nil, err
	}
	return s, nil
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
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("gateway: read spool: %w", err)
		}
		torn := errors.Is(err, io.EOF) // no newline: the last write was cut
		line = bytes.TrimSuffix(line, []byte("\n"))
		switch {
		case torn:
			s.Corrupt++
		case bytes.HasPrefix(line, []byte("P ")):
			m, ok := parsePush(line[2:])
			if !ok {
				s.Corrupt++
				continue
			}
			index[m.ID] = len(pending)
			pending = append(pending, m)
			s.lastSeq = max(s.lastSeq, m.Seq)
		case bytes.HasPrefix(line, []byte("S ")):
			if n, err := strconv.ParseUint(string(line[2:]), 10, 64); err == nil {
				s.lastSeq = max(s.lastSeq, n)
			} else {
				s.Corrupt++
			}
		case bytes.HasPrefix(line, []byte("D ")):
			if i, ok := index[string(line[2:])]; ok {
				pending[i].ID = "" // done
				delete(index, string(line[2:]))
			}
		default:
			s.Corrupt++
		}
		if torn {
			break
		}
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
	sp := bytes.IndexByte(b, ' ')
	if sp < 0 {
		return Message{}, false
	}
	want, err := strconv.ParseUint(string(b[:sp]), 16, 32)
	if err != nil || crc32.Checksum(b[sp+1:], spoolCRC) != uint32(want) {
		return Message{}, false
	}
	var m Message
	if json.Unmarshal(b[sp+1:], &m) != nil || m.ID == "" {
		return Message{}, false
	}
	return m, true
}

// rewrite replaces the log with the pending messages only (write a new
// file, fsync, rename, fsync the directory), then opens it for appending.
func (s *Spool) rewrite() error {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	tmp := filepath.Join(s.dir, spoolFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("gateway: spool: %w", err)
	}
	w := bufio.NewWriter(f)
	var size int64
	if s.lastSeq > 0 {
		n, _ := fmt.Fprintf(w, "S %d\n", s.lastSeq)
		size += int64(n)
	}
	for i := s.mem.head; i < len(s.mem.buf); i++ {
		rec, err := pushRecord(s.mem.buf[i])
		if err != nil {
			f.Close()
			return err
		}
		n, _ := w.Write(rec)
		size += int64(n)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("gateway: spool: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("gateway: spool: %w", err)
	}
	f.Close()
	path := filepath.Join(s.dir, spoolFile)
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("gateway: spool: %w", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	s.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("gateway: spool: %w", err)
	}
	s.size = size
	return nil
}

func pushRecord(m Message) ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("gateway: spool encode: %w", err)
	}
	rec := fmt.Appendf(nil, "P %08x ", crc32.Checksum(js, spoolCRC))
	rec = append(rec, js...)
	return append(rec, '\n'), nil
}

func (s *Spool) write(rec []byte, sync bool) error {
	n, err := s.f.Write(rec)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("gateway: spool write: %w", err)
	}
	if sync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("gateway: spool fsync: %w", err)
		}
	}
	return nil
}

// Push implements Queue: the message is on disk before Push returns nil.
func (s *Spool) Push(m Message) ([]Message, error) {
	rec, err := pushRecord(m)
	if err != nil {
		return nil, err
	}
	evicted, err := s.mem.Push(m)
	if err != nil {
		return nil, err
	}
	s.lastSeq = max(s.lastSeq, m.Seq)
	for _, e := range evicted {
		if err := s.write([]byte("D "+e.ID+"\n"), false); err != nil {
			s.WriteErrors++
		}
	}
	if err := s.write(rec, true); err != nil {
		// Not lost: it is queued in memory and will be sent. Counted.
		s.WriteErrors++
	}
	s.maybeCompact()
	return evicted, nil
}

// maybeCompact rewrites a log that has grown to more than four times what
// it holds (and past 1 MiB), so a long outage with evictions cannot fill
// the disk with records of messages long gone.
func (s *Spool) maybeCompact() {
	if s.size > compactAt && s.size > 4*s.mem.Bytes() {
		if err := s.rewrite(); err != nil {
			s.WriteErrors++
		}
	}
}

// Front implements Queue.
func (s *Spool) Front() (Message, bool) { return s.mem.Front() }

// Pop implements Queue: the front message was acknowledged by the broker.
func (s *Spool) Pop() {
	m, ok := s.mem.Front()
	if !ok {
		return
	}
	s.mem.Pop()
	if s.write([]byte("D "+m.ID+"\n"), false) != nil {
		s.WriteErrors++ // it will be resent after a restart and de-duplicated
	}
	s.maybeCompact()
}

// Len implements Queue.
func (s *Spool) Len() int { return s.mem.Len() }

// IDs lists the event ids held, oldest first (for tests and the health page).
func (s *Spool) IDs() []string {
	out := make([]string, 0, s.mem.Len())
	for i := s.mem.head; i < len(s.mem.buf); i++ {
		out = append(out, s.mem.buf[i].ID)
	}
	return out
}

// MaxSeq is the highest sequence number ever pushed, kept across restarts
// even when the spool is empty, so a restarted gateway continues the
// sequence instead of reusing numbers.
func (s *Spool) MaxSeq() uint64 { return s.lastSeq }

// Bytes is the approximate size of the pending messages (what the byte
// bound limits).
func (s *Spool) Bytes() int64 { return s.mem.Bytes() }

// Close syncs and closes the spool file.
func (s *Spool) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	return err
}
