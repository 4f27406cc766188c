// Package store persists alarm transitions in an append-only journal in the
// data directory, so that every alarm and every step of its lifecycle
// survives a crash and a restart.
//
// Why a journal and not a database: an alarm transition is written once and
// never updated; replaying the journal rebuilds the state exactly, and the
// audit trail is the data itself. Each record is one line: a CRC-32C of the
// JSON, a space, the JSON. A torn last line (power cut mid-write) fails its
// checksum and is cut off on open; it can only be the last transition,
// which was never acknowledged to anyone.
//
// Durability: Append writes the record with one write(2) before it returns,
// so a SIGKILLed hub loses nothing. fsync runs in the background in groups
// (at most SyncEvery after a write), so a power cut can lose at most that
// window; Options.SyncEachWrite trades latency for closing that window.
//
// Why the window is 20 ms and not shorter: an fsync costs about half a
// millisecond of CPU on the machines we measured (a virtual disk's flush),
// and the alarm path shares that CPU. Under a burst of alarms the syncer
// runs once per window, so a 5 ms window spent 5–9 % of a core on
// fsync and raised alarm p99 at 10,000 events/s by about 0.4 ms; at 20 ms
// it is about 2.5 %. A 20 ms power-cut window is still far tighter than a
// broker's (Mosquitto autosaves every 30 min by default) and the alarm has
// usually reached the staff phones by then.
package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// FileName is the journal's name inside the data directory.
const FileName = "alarms.journal"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options tune durability.
type Options struct {
	// SyncEvery bounds how long a written record may wait for fsync.
	// Zero means DefaultSyncEvery.
	SyncEvery time.Duration
	// SyncEachWrite makes Append wait for fsync (slower, no power-cut window).
	SyncEachWrite bool
	Logger        *slog.Logger
}

// Journal is the append-only transition log. It is safe for concurrent use.
type Journal struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	f       *os.File
	buf     []byte
	seq     uint64
	dirty   bool
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	syncErr error

	// Counters, read by metrics.
	Appends   atomic.Int64
	Syncs     atomic.Int64
	Corrupt   atomic.Int64 // records skipped or cut on open
	SyncFails atomic.Int64
	// SlowWrites counts appends whose write(2) took longer than
	// SlowWrite, and MaxWriteNanos is the longest: an alarm's PUBACK waits
	// for that write, so a disk that stalls writes stalls alarms.
	SlowWrites    atomic.Int64
	MaxWriteNanos atomic.Int64
}

// DefaultSyncEvery is the group-commit window when Options.SyncEvery is 0.
const DefaultSyncEvery = 20 * time.Millisecond

// SlowWrite is the write(2) duration above which an append counts as slow.
const SlowWrite = 5 * time.Millisecond

// Open opens (or creates) the journal in dir and returns it with every valid
// transition it holds, in order.
func Open(dir string, opts Options) (*Journal, []alarm.Transition, error) {
	if opts.SyncEvery <= 0 {
		opts.SyncEvery = DefaultSyncEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("store: create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("store: open journal: %w", err)
	}
	j := &Journal{opts: opts, log: opts.Logger, f: f, wake: make(chan struct{}, 1), done: make(chan struct{})}
	ts, good, err := j.replay()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	// Cut a torn or corrupt tail so new records start on a clean line.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("store: truncate torn tail: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("store: seek: %w", err)
	}
	// A last record that is whole but for its newline (the cut fell just
	// before it) was replayed: end its line, or the next record would join
	// it and both would fail their checksum on the next open.
	if good > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], good-1); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("store: read journal tail: %w", err)
		}
		if last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("store: end journal tail: %w", err)
			}
		}
	}
	go j.syncLoop()
	return j, ts, nil
}

// replay reads all records, returning them and the offset after the last
// good one.
func (j *Journal) replay() ([]alarm.Transition, int64, error) {
	r := bufio.NewReaderSize(j.f, 1<<16)
	var (
		out    []alarm.Transition
		offset int64
		good   int64
		line   int
	)
	for {
		b, err := r.ReadBytes('\n')
		if len(b) == 0 && errors.Is(err, io.EOF) {
			break
		}
		line++
		offset += int64(len(b))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("store: read journal: %w", err)
		}
		t, perr := parseRecord(b)
		if perr != nil {
			j.Corrupt.Add(1)
			if errors.Is(err, io.EOF) {
				// Torn last line: cut it.
				j.log.Warn("store: cut torn journal tail", "line", line, "err", perr)
				break
			}
			// A bad record in the middle: keep going, the rest is good data.
			j.log.Error("store: skipped corrupt journal record", "line", line, "err", perr)
			good = offset
			continue
		}
		if t.Seq > j.seq {
			j.seq = t.Seq
		}
		out = append(out, t)
		good = offset
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return out, good, nil
}

func parseRecord(b []byte) (alarm.Transition, error) {
	var t alarm.Transition
	b = bytes.TrimSuffix(b, []byte("\n"))
	sp := bytes.IndexByte(b, ' ')
	if sp != 8 {
		return t, errors.New("no checksum")
	}
	want, err := strconv.ParseUint(string(b[:8]), 16, 32)
	if err != nil {
		return t, errors.New("bad checksum field")
	}
	body := b[9:]
	if crc32.Checksum(body, castagnoli) != uint32(want) {
		return t, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return t, fmt.Errorf("bad record: %w", err)
	}
	return t, nil
}

// Append assigns t the next sequence number and writes it. When Append
// returns nil the record is in the OS, safe from a process crash.
func (j *Journal) Append(t *alarm.Transition) error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errors.New("store: journal closed")
	}
	t.Seq = j.seq + 1
	body, err := json.Marshal(t)
	if err != nil {
		j.mu.Unlock()
		return fmt.Errorf("store: encode transition: %w", err)
	}
	j.buf = j.buf[:0]
	j.buf = fmt.Appendf(j.buf, "%08x ", crc32.Checksum(body, castagnoli))
	j.buf = append(j.buf, body...)
	j.buf = append(j.buf, '\n')
	w0 := time.Now()
	if _, err := j.f.Write(j.buf); err != nil {
		j.mu.Unlock()
		return fmt.Errorf("store: write journal: %w", err)
	}
	if d := time.Since(w0); d > SlowWrite {
		j.SlowWrites.Add(1)
		if int64(d) > j.MaxWriteNanos.Load() {
			j.MaxWriteNanos.Store(int64(d))
		}
	}
	j.seq = t.Seq
	j.dirty = true
	j.Appends.Add(1)
	if j.opts.SyncEachWrite {
		err := j.f.Sync()
		j.dirty = false
		j.mu.Unlock()
		j.Syncs.Add(1)
		if err != nil {
			j.SyncFails.Add(1)
			return fmt.Errorf("store: fsync journal: %w", err)
		}
		return nil
	}
	// Wake the syncer under the lock so Close cannot close wake meanwhile.
	select {
	case j.wake <- struct{}{}:
	default:
	}
	j.mu.Unlock()
	return nil
}

// syncLoop fsyncs in groups: it waits for a write, lets SyncEvery pass so
// writes in the same burst share one fsync, then syncs. The fsync runs
// without j.mu: Append (and the hub's alarm path, which holds its own lock
// around Append) must never wait for the disk. A record written during the
// fsync sets dirty again and wakes the loop, so it gets the next one.
func (j *Journal) syncLoop() {
	defer close(j.done)
	for range j.wake {
		time.Sleep(j.opts.SyncEvery)
		j.mu.Lock()
		if j.closed {
			j.mu.Unlock()
			return
		}
		dirty := j.dirty
		j.dirty = false
		j.mu.Unlock()
		if !dirty {
			continue
		}
		err := j.f.Sync()
		j.Syncs.Add(1)
		if err != nil {
			j.mu.Lock()
			j.syncErr = err
			j.mu.Unlock()
			j.SyncFails.Add(1)
			j.log.Error("store: fsync journal failed", "err", err)
		}
	}
}

// SyncWindow is the longest a written record waits for fsync: what a power
// cut can lose (zero with Options.SyncEachWrite).
func (j *Journal) SyncWindow() time.Duration {
	if j.opts.SyncEachWrite {
		return 0
	}
	return j.opts.SyncEvery
}

// Close syncs and closes the journal.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	// No Append writes from here on (closed is set); let the syncer finish
	// any fsync in progress before the final one, so the file is never
	// closed under it.
	close(j.wake)
	<-j.done
	err := j.f.Sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}
