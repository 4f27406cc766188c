package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vaka-care/vaka/internal/record"
)

// LossFile holds the journal's cumulative loss counters in the data
// directory, so a restart does not reset them to zero: a counter that
// forgets is a loss nobody sees.
const LossFile = "journal-loss.json"

// Loss is what Open had to skip or cut: the transitions lost and where.
type Loss struct {
	Corrupt int             // damaged lines skipped in the middle
	Torn    int             // torn tail cut (0 or 1): a record written and gone
	Damage  []record.Damage // where (the first record.MaxReported, then the tail)
	SeqGaps []SeqGap        // sequence numbers missing between good records
	// New is set when any of it was not found by an earlier start (damage
	// in the middle stays in the file and is found at every open; it is
	// counted and raised once).
	New bool
}

// SeqGap is a run of sequence numbers missing from the journal.
type SeqGap struct{ From, To uint64 }

// Any reports whether anything was lost.
func (l *Loss) Any() bool { return l.Corrupt > 0 || l.Torn > 0 || len(l.SeqGaps) > 0 }

func (l *Loss) gap(from, to uint64) {
	if len(l.SeqGaps) < record.MaxReported {
		l.SeqGaps = append(l.SeqGaps, SeqGap{from, to})
	}
}

// String says what was lost and where, in line numbers, byte offsets and
// sequence numbers only: a journal line may hold a resident id, never
// quoted here.
func (l *Loss) String() string {
	var parts []string
	if l.Corrupt > 0 {
		parts = append(parts, fmt.Sprintf("%d damaged journal line(s) skipped", l.Corrupt))
	}
	if l.Torn > 0 {
		parts = append(parts, "a torn last record cut")
	}
	var where []string
	for _, d := range l.Damage {
		if len(where) == 8 {
			where = append(where, "…")
			break
		}
		where = append(where, fmt.Sprintf("line %d byte %d", d.Line, d.Offset))
	}
	if len(where) > 0 {
		parts = append(parts, "at "+strings.Join(where, ", "))
	}
	var gaps []string
	for _, g := range l.SeqGaps {
		if len(gaps) == 8 {
			gaps = append(gaps, "…")
			break
		}
		if g.From == g.To {
			gaps = append(gaps, fmt.Sprint(g.From))
		} else {
			gaps = append(gaps, fmt.Sprintf("%d–%d", g.From, g.To))
		}
	}
	if len(gaps) > 0 {
		parts = append(parts, "missing seq "+strings.Join(gaps, ", "))
	}
	return strings.Join(parts, "; ")
}

// LossCounts are cumulative counts of what the journal lost or failed to
// write.
type LossCounts struct {
	Corrupt    int64 `json:"corrupt_records"` // damaged records skipped (each counted once; by missing seq numbers when a damaged line hid several)
	Torn       int64 `json:"torn_tails"`      // torn tails cut at open
	WriteFails int64 `json:"write_failures"`  // appends the disk refused (cut back)
	SyncFails  int64 `json:"fsync_failures"`  // fsyncs that failed
}

// maxKnown bounds the damage the counters file remembers.
const maxKnown = 1024

// lossFile is the persisted LossCounts, plus the damage already counted
// (by offset and checksum of the damaged bytes) so the same damaged line
// is not counted again at the next start.
type lossFile struct {
	path string

	mu     sync.Mutex
	c      LossCounts
	known  map[string]bool
	order  []string // known, oldest first, for the bound
	dirty  bool
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

type lossJSON struct {
	LossCounts
	Known []string `json:"known_damage,omitempty"`
}

// openLossFile loads the counters. It always returns a usable lossFile: an
// unreadable or damaged counters file is reported (the error) and
// replaced, never a reason to keep the hub from starting.
func openLossFile(dir string) (*lossFile, error) {
	lf := &lossFile{path: filepath.Join(dir, LossFile), known: map[string]bool{}}
	b, err := os.ReadFile(lf.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		lf.dirty = true
		return lf, fmt.Errorf("store: read loss counters (starting from zero): %w", err)
	default:
		var v lossJSON
		if err := json.Unmarshal(b, &v); err != nil {
			lf.dirty = true
			return lf, fmt.Errorf("store: damaged loss counters (starting from zero): %w", err)
		}
		lf.c = v.LossCounts
		for _, k := range v.Known {
			lf.remember(k)
		}
	}
	return lf, nil
}

func (lf *lossFile) remember(k string) {
	if lf.known[k] {
		return
	}
	lf.known[k] = true
	lf.order = append(lf.order, k)
	if len(lf.order) > maxKnown {
		delete(lf.known, lf.order[0])
		lf.order = lf.order[1:]
	}
}

// count adds what this open found and reports whether any of it is new.
// Damage is known by its offset, length and the checksum of its bytes.
func (lf *lossFile) count(l *Loss, damaged []record.Damage, lines int) bool {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	isNew := false
	if l.Torn > 0 {
		lf.c.Torn++
		isNew = true
	}
	var newLines, newSeqs int64
	for _, d := range damaged {
		k := fmt.Sprintf("d:%d:%d:%08x", d.Offset, d.Len, d.Sum)
		if !lf.known[k] {
			lf.remember(k)
			newLines++
		}
	}
	if unlisted := lines - len(damaged); unlisted > 0 {
		// Beyond what a report lists: count them once per open.
		newLines += int64(unlisted)
	}
	for _, g := range l.SeqGaps {
		k := fmt.Sprintf("g:%d-%d", g.From, g.To)
		if !lf.known[k] {
			lf.remember(k)
			newSeqs += int64(g.To - g.From + 1)
		}
	}
	// One damaged line can hide several records (a block of zeros spans
	// lines): count the missing sequence numbers when they say more.
	if n := max(newLines, newSeqs); n > 0 {
		lf.c.Corrupt += n
		isNew = true
	}
	if isNew {
		lf.dirty = true
	}
	return isNew
}

// failed counts a write or fsync failure (record.AppendOptions.OnFailure)
// and has it saved in the background: the caller may hold the hub's lock.
func (lf *lossFile) failed(op string, _ error) {
	lf.mu.Lock()
	if op == "fsync" {
		lf.c.SyncFails++
	} else {
		lf.c.WriteFails++
	}
	lf.dirty = true
	if lf.wake == nil && !lf.closed {
		lf.wake, lf.done = make(chan struct{}, 1), make(chan struct{})
		go lf.saveLoop(lf.wake, lf.done)
	}
	if lf.wake != nil {
		select {
		case lf.wake <- struct{}{}:
		default:
		}
	}
	lf.mu.Unlock()
}

func (lf *lossFile) saveLoop(wake <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for range wake {
		_ = lf.save() // a full disk refuses this too; kept dirty, tried again
	}
}

func (lf *lossFile) totals() LossCounts {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return lf.c
}

// save writes the counters if they changed. The file is small and
// replaced atomically.
func (lf *lossFile) save() error {
	lf.mu.Lock()
	if !lf.dirty {
		lf.mu.Unlock()
		return nil
	}
	v := lossJSON{LossCounts: lf.c, Known: append([]string(nil), lf.order...)}
	lf.dirty = false
	lf.mu.Unlock()
	b, _ := json.Marshal(v)
	if err := record.WriteFile(lf.path, append(b, '\n'), 0o640); err != nil {
		lf.mu.Lock()
		lf.dirty = true
		lf.mu.Unlock()
		return fmt.Errorf("store: save loss counters: %w", err)
	}
	return nil
}

func (lf *lossFile) close() error {
	lf.mu.Lock()
	lf.closed = true
	wake, done := lf.wake, lf.done
	lf.wake = nil
	lf.mu.Unlock()
	if wake != nil {
		close(wake)
		<-done
	}
	return lf.save()
}
