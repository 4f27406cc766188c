package record

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// File is what an Appender writes to; *os.File satisfies it. It must not
// be opened with O_APPEND: the Appender writes at the offset it knows is
// the end of good data, so a failed write can never leave a gap or join.
type File interface {
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// ErrClosed is returned by an Appender after Close.
var ErrClosed = errors.New("record: log closed")

// AppendOptions set an Appender's fsync policy. The zero value syncs only
// when the caller calls Sync or SyncTo.
type AppendOptions struct {
	// SyncEach makes Append return only after the record is on disk.
	SyncEach bool
	// Window, when positive, runs a background group commit: records are
	// fsynced at most Window after they were written, many to one fsync.
	// A power cut can lose what was written in the last Window.
	Window time.Duration
	// OnFailure, if set, is called after a failed write or fsync (op is
	// "write" or "fsync"), outside the Appender's locks, so the caller can
	// count and persist the failure.
	OnFailure func(op string, err error)
}

// Counters are an Appender's cumulative counts since it was made.
type Counters struct {
	Writes     atomic.Int64 // successful appends
	WriteFails atomic.Int64 // failed or short writes (each cut back)
	Syncs      atomic.Int64 // fsyncs run
	SyncFails  atomic.Int64 // fsyncs that failed
}

// Appender appends records to a log with one write each. On any write
// error or short write (a full disk) it truncates the file back to the end
// of the last good record before it returns the error, so the bytes of a
// failed record are never joined with the next record.
//
// fsync never runs under the lock that Append takes: one writer's fsync
// does not hold up other writers (group commit). SyncTo lets a caller wait
// for its own record without holding any lock of its own either.
type Appender struct {
	Counters

	f    File
	opts AppendOptions

	mu        sync.Mutex // guards end, dirtyTail, closed and writes
	end       int64      // end of good data: where the next record goes
	dirtyTail bool       // a cut after a failed write itself failed
	closed    bool

	syncMu sync.Mutex // one fsync at a time; guards synced and shut
	synced int64      // everything before this offset is on disk
	shut   bool

	wake chan struct{}
	done chan struct{}
}

// NewAppender appends to f from offset end (the Report.End of a scan, after
// any torn tail was cut). The data before end counts as on disk.
func NewAppender(f File, end int64, opts AppendOptions) *Appender {
	a := &Appender{f: f, opts: opts, end: end, synced: end}
	if opts.Window > 0 && !opts.SyncEach {
		a.wake, a.done = make(chan struct{}, 1), make(chan struct{})
		go a.syncLoop()
	}
	return a
}

// Append writes rec, one or more whole records, with one write, and
// returns the offset after it (for SyncTo). On error nothing of rec stays
// in the file.
func (a *Appender) Append(rec []byte) (int64, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return 0, ErrClosed
	}
	if a.dirtyTail {
		if err := a.f.Truncate(a.end); err != nil {
			a.mu.Unlock()
			a.WriteFails.Add(1)
			a.failed("write", err)
			return 0, fmt.Errorf("record: cut a failed write: %w", err)
		}
		a.dirtyTail = false
	}
	n, err := a.f.WriteAt(rec, a.end)
	if err == nil && n < len(rec) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if terr := a.f.Truncate(a.end); terr != nil {
			// Try again before the next write; until then refuse to write.
			a.dirtyTail = true
			err = errors.Join(err, fmt.Errorf("cut back: %w", terr))
		}
		a.mu.Unlock()
		a.WriteFails.Add(1)
		a.failed("write", err)
		return 0, fmt.Errorf("record: write: %w", err)
	}
	a.end += int64(n)
	end := a.end
	a.Writes.Add(1)
	if a.wake != nil {
		// Under mu so Close cannot close wake meanwhile.
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	a.mu.Unlock()
	if a.opts.SyncEach {
		return end, a.SyncTo(end)
	}
	return end, nil
}

// Size is the end of good data.
func (a *Appender) Size() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.end
}

// SyncTo returns once everything before offset end is on disk. Callers
// that arrive while an fsync runs wait for it and then share the next one.
func (a *Appender) SyncTo(end int64) error {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	if a.synced >= end {
		return nil
	}
	if a.shut {
		return ErrClosed
	}
	a.mu.Lock()
	upto := a.end
	a.mu.Unlock()
	err := a.f.Sync()
	a.Syncs.Add(1)
	if err != nil {
		a.SyncFails.Add(1)
		a.failed("fsync", err)
		return fmt.Errorf("record: fsync: %w", err)
	}
	a.synced = upto
	return nil
}

// Sync returns once everything appended before the call is on disk.
func (a *Appender) Sync() error {
	a.mu.Lock()
	end := a.end
	a.mu.Unlock()
	return a.SyncTo(end)
}

func (a *Appender) failed(op string, err error) {
	if a.opts.OnFailure != nil {
		a.opts.OnFailure(op, err)
	}
}

// syncLoop is the background group commit: it waits for a write, lets the
// window pass so writes in the same burst share one fsync, then syncs.
func (a *Appender) syncLoop() {
	defer close(a.done)
	for range a.wake {
		time.Sleep(a.opts.Window)
		_ = a.Sync() // counted and reported through OnFailure
	}
}

// Close stops the background sync, syncs and closes the file. After Close,
// SyncTo still answers for records written before it.
func (a *Appender) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	if a.wake != nil {
		close(a.wake)
		<-a.done
	}
	err := a.Sync()
	a.syncMu.Lock()
	a.shut = true
	if cerr := a.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("record: close: %w", cerr)
	}
	a.syncMu.Unlock()
	return err
}
