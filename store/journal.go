// Package store persists alarm transitions in an append-only journal in the
// data directory, so that every alarm and every step of its lifecycle
// survives a crash and a restart.
//
// Why a journal and not a database: an alarm transition is written once and
// never updated; replaying the journal rebuilds the state exactly, and the
// audit trail is the data itself. Each record is one line: a CRC-32C of the
// JSON, a space, the JSON (package internal/record). A torn last line (power
// cut mid-write) is cut off on open; it can only be the last transition. A
// damaged line in the middle costs that one transition: every transition
// but a raise carries its alarm's subject, so the hub rebuilds an alarm
// whose raise is lost. A write the disk refuses is cut back at once, so it
// never joins the next record. What Open skipped or cut is in Loss, and the
// cumulative loss counters survive restarts in LossFile.
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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/format"
	"github.com/vaka-care/vaka/internal/record"
)

// FileName is the journal's name inside the data directory.
const FileName = "alarms.journal"

// Options tune durability.
type Options struct {
	// SyncEvery bounds how long a written record may wait for fsync.
	// Zero means DefaultSyncEvery.
	SyncEvery time.Duration
	// SyncEachWrite makes Append wait for fsync (slower, no power-cut window).
	SyncEachWrite bool
	Logger        *slog.Logger
	// KeepRecords is how far back Open keeps records other than alarm
	// transitions (supervision records) for Records. Zero means
	// DefaultKeepRecords.
	KeepRecords time.Duration
}

// Journal is the append-only transition log. It is safe for concurrent use.
type Journal struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex // orders seq and the file: a record's line follows its predecessor's
	app    *record.Appender
	f      *os.File // for Read: pread beside the appender's writes
	buf    []byte
	offs   []int                // AppendAll: each record's offset in buf
	one    [1]*alarm.Transition // Append's batch of one
	body   []byte               // one record's JSON
	seq    uint64
	closed bool

	loss    Loss
	losses  *lossFile
	records []Record // read at Open, within KeepRecords (records.go)

	// Syncs, SyncFails and WriteFails count fsyncs and failures since Open.
	*record.Counters
	// Counters, read by metrics.
	Appends atomic.Int64
	Corrupt atomic.Int64 // records skipped or cut on this open
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
// transition it holds, in order. What it had to skip or cut is in Loss.
func Open(dir string, opts Options) (*Journal, []alarm.Transition, error) {
	var ts []alarm.Transition
	j, err := OpenEach(dir, opts, func(t alarm.Transition) { ts = append(ts, t) })
	if err != nil {
		return nil, nil, err
	}
	return j, ts, nil
}

// OpenEach is Open that hands every valid transition to each, in order,
// as it reads them, instead of returning them all at once. Why: a journal
// with a quarter of a million open alarms holds several times their size
// as decoded transitions (every raise carries its whole alarm, every other
// step its subject), and the hub needs only what they rebuild.
func OpenEach(dir string, opts Options, each func(alarm.Transition)) (*Journal, error) {
	if opts.SyncEvery <= 0 {
		opts.SyncEvery = DefaultSyncEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.KeepRecords <= 0 {
		opts.KeepRecords = DefaultKeepRecords
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// An older hub must not misread a journal a newer one wrote (format.go).
	if _, err := format.Check(path, FormatKind, FormatVersion); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("store: open journal: %w", err)
	}
	j := &Journal{opts: opts, log: opts.Logger, f: f}
	rep, err := j.replay(f, each)
	if err != nil {
		f.Close()
		return nil, err
	}
	// Cut a torn tail so new records start on a clean line.
	if err := f.Truncate(rep.End); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: truncate torn tail: %w", err)
	}
	end := rep.End
	// A last record that is whole but for its newline (the cut fell just
	// before it) was replayed: end its line, or the next record would join
	// it.
	if rep.Unterminated {
		if _, err := f.WriteAt([]byte{'\n'}, end); err != nil {
			f.Close()
			return nil, fmt.Errorf("store: end journal tail: %w", err)
		}
		end++
	}
	if j.losses, err = openLossFile(dir); err != nil {
		j.log.Error("store: loss counters", "err", err)
	}
	j.loss.New = j.losses.count(&j.loss, rep.Damaged, rep.DamagedLines)
	if j.loss.New {
		if err := j.losses.save(); err != nil {
			// Counted in memory and in the alarm the hub raises; the file
			// is tried again on the next change and at Close.
			j.log.Error("store: loss counters not saved", "err", err)
		}
	}
	// With SyncEachWrite the journal waits for the fsync itself (synced),
	// after its lock, or leaves it to the caller (AppendAllUnsynced): the
	// appender must not sync inside Append, and no background window runs.
	window := opts.SyncEvery
	if opts.SyncEachWrite {
		window = 0
	}
	j.app = record.NewAppender(f, end, record.AppendOptions{
		Window:    window,
		OnFailure: j.losses.failed,
	})
	j.Counters = &j.app.Counters
	return j, nil
}

// replay reads all records, hands each to each, and reports what it
// skipped or cut.
func (j *Journal) replay(f io.Reader, each func(alarm.Transition)) (record.Report, error) {
	var (
		cur   alarm.Transition
		other Record
		isRec bool
	)
	verify := func(line []byte) ([]byte, error) {
		body, err := record.Parse(line)
		if err != nil {
			return nil, err
		}
		// Records other than transitions (records.go) start with "rt".
		if isRec = isRecord(body); isRec {
			other = Record{}
			if err := json.Unmarshal(body, &other); err != nil {
				return nil, fmt.Errorf("%w: bad record: %w", record.ErrDamaged, err)
			}
			return body, nil
		}
		cur = alarm.Transition{}
		if err := json.Unmarshal(body, &cur); err != nil {
			return nil, fmt.Errorf("%w: bad transition: %w", record.ErrDamaged, err)
		}
		return body, nil
	}
	sc := record.NewScanner(f, record.ScanOptions{Verify: verify})
	var last uint64
	// Records are kept relative to the newest one, not to the clock: a
	// replay of an old data directory sees its last nights too.
	var newest time.Time
	prune := func() {
		cut := newest.Add(-j.opts.KeepRecords)
		j.records = slices.DeleteFunc(j.records, func(r Record) bool { return r.At.Before(cut) })
	}
	pruneAt := 1024
	for sc.Next() {
		seq := cur.Seq
		if isRec {
			seq = other.Seq
		}
		if seq > last+1 {
			j.loss.gap(last+1, seq-1)
		}
		last = max(last, seq)
		if isRec {
			if other.At.After(newest) {
				newest = other.At
			}
			j.records = append(j.records, other)
			if len(j.records) >= pruneAt {
				prune()
				pruneAt = 2*len(j.records) + 1024
			}
			continue
		}
		cur.Rec = sc.Offset() + 1
		each(cur)
	}
	if err := sc.Err(); err != nil {
		return record.Report{}, fmt.Errorf("store: read journal: %w", err)
	}
	prune()
	rep := sc.Report()
	j.seq = last
	j.loss.Corrupt = rep.DamagedLines
	j.loss.Damage = append(j.loss.Damage, rep.Damaged...)
	if rep.Torn != nil {
		j.loss.Torn = 1
		j.loss.Damage = append(j.loss.Damage, *rep.Torn)
		j.log.Warn("store: cut torn journal tail", "line", rep.Torn.Line, "offset", rep.Torn.Offset, "bytes", rep.Torn.Len, "err", rep.Torn.Err)
	}
	for _, d := range rep.Damaged {
		j.log.Error("store: skipped damaged journal record", "line", d.Line, "offset", d.Offset, "bytes", d.Len, "err", d.Err)
	}
	j.Corrupt.Store(int64(j.loss.Corrupt + j.loss.Torn))
	return rep, nil
}

// Append assigns t the next sequence number and writes it. When Append
// returns nil the record is in the OS, safe from a process crash. When it
// fails nothing of the record stays in the file.
func (j *Journal) Append(t *alarm.Transition) error {
	j.mu.Lock()
	j.one[0] = t
	end, err := j.appendLocked(j.one[:])
	j.one[0] = nil
	j.mu.Unlock()
	return j.synced(end, err)
}

// AppendAll writes ts, in order, with consecutive sequence numbers, in
// one write(2): a raise and its first notify step cost one system call,
// and a killed process keeps both or neither (a power cut may tear the
// last line, which the next Open cuts, as for a single record). When it returns nil every record
// is in the OS; when it fails none of them stays in the file and none is
// given a sequence number.
func (j *Journal) AppendAll(ts []*alarm.Transition) error {
	j.mu.Lock()
	end, err := j.appendLocked(ts)
	j.mu.Unlock()
	return j.synced(end, err)
}

// AppendAllUnsynced is AppendAll without waiting for fsync, even with
// Options.SyncEachWrite: it returns where the file ends after ts, and the
// caller waits with SyncTo before it tells anyone the records are kept.
// The hub writes an event's transitions with it under its own lock and
// waits for the fsync outside it, so events in flight at once share one
// fsync (a group commit) instead of one each in a row.
func (j *Journal) AppendAllUnsynced(ts []*alarm.Transition) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.appendLocked(ts)
}

// SyncTo returns once every record before end (an offset AppendAllUnsynced
// returned) is on disk. Callers that arrive while an fsync runs wait for
// it and share the next one.
func (j *Journal) SyncTo(end int64) error {
	if err := j.app.SyncTo(end); err != nil {
		return fmt.Errorf("store: fsync journal: %w", err)
	}
	return nil
}

// SyncsEachWrite reports Options.SyncEachWrite: whether an append is told
// kept only once it is on disk.
func (j *Journal) SyncsEachWrite() bool { return j.opts.SyncEachWrite }

// synced waits, with Options.SyncEachWrite, for the fsync that covers end.
// Outside j.mu: other appends go on meanwhile, and share the next fsync.
func (j *Journal) synced(end int64, err error) error {
	if err != nil || !j.opts.SyncEachWrite {
		return err
	}
	if err := j.app.SyncTo(end); err != nil {
		return fmt.Errorf("store: fsync journal: %w", err)
	}
	return nil
}

// appendLocked is AppendAll under j.mu; it returns where the file ends.
func (j *Journal) appendLocked(ts []*alarm.Transition) (int64, error) {
	if j.closed {
		return 0, errors.New("store: journal closed")
	}
	j.buf = j.buf[:0]
	if cap(j.offs) < len(ts) {
		j.offs = make([]int, len(ts))
	}
	offs := j.offs[:len(ts)]
	for i, t := range ts {
		t.Seq = j.seq + uint64(i) + 1
		// Into one reused buffer, by hand where it can (encode.go): the
		// same bytes as json.Marshal, without reflection or allocation.
		body, err := encodeTransition(j.body[:0], t)
		if err != nil {
			for _, t := range ts {
				t.Seq = 0
			}
			return 0, fmt.Errorf("store: encode transition: %w", err)
		}
		j.body = body
		offs[i] = len(j.buf)
		j.buf = record.Append(j.buf, body)
	}
	w0 := time.Now()
	end, err := j.app.Append(j.buf)
	if d := time.Since(w0); d > SlowWrite {
		j.SlowWrites.Add(1)
		if int64(d) > j.MaxWriteNanos.Load() {
			j.MaxWriteNanos.Store(int64(d))
		}
	}
	if err != nil {
		for _, t := range ts {
			t.Seq = 0
		}
		return 0, fmt.Errorf("store: write journal: %w", err)
	}
	j.seq += uint64(len(ts))
	start := end - int64(len(j.buf))
	for i, t := range ts {
		t.Rec = start + int64(offs[i]) + 1
	}
	j.Appends.Add(int64(len(ts)))
	if cap(j.buf) > 1<<20 {
		j.buf, j.body = nil, nil // one huge record (a group's raise) need not stay
	}
	return end, nil
}

// SyncWindow is the longest a written record waits for fsync: what a power
// cut can lose (zero with Options.SyncEachWrite).
func (j *Journal) SyncWindow() time.Duration {
	if j.opts.SyncEachWrite {
		return 0
	}
	return j.opts.SyncEvery
}

// Loss is what Open had to skip or cut.
func (j *Journal) Loss() Loss { return j.loss }

// LossTotals are the loss counters since the data directory was made,
// across restarts.
func (j *Journal) LossTotals() LossCounts { return j.losses.totals() }

// Close syncs and closes the journal.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	err := j.app.Close()
	if serr := j.losses.close(); err == nil {
		err = serr
	}
	return err
}
