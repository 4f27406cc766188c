package hub

import (
	"math"
	"sync"

	"github.com/vaka-care/vaka/alarm"
)

// With store.sync_each_write an event may be acknowledged (PUBACK, SCAIP
// snu 0, a tracker's 200) only once its transitions are on disk. The
// journal used to fsync inside Append, under the hub's lock: every event
// then waited for its own fsync in a row, and the SCAIP receiver, which
// reads all UDP messages on one goroutine, took no message while it
// waited. Now an event's transitions are written under the lock without
// the fsync (AppendAllUnsynced), and the fsync is waited for after the
// lock is let go (SyncTo): events in flight at once share one fsync, a
// group commit. An MQTT client's goroutine waits for it itself; a SCAIP
// message hands the wait to a syncer goroutine, which sends the <mrs>
// once the fsync is done, so the UDP reader goes on with the next
// message. Nothing is acknowledged earlier than before.

// deferringJournal is a journal that can leave an append's fsync to the
// caller: the local file (*store.Journal) with sync_each_write.
type deferringJournal interface {
	AppendAllUnsynced(ts []*alarm.Transition) (int64, error)
	SyncTo(end int64) error
	SyncsEachWrite() bool
}

// deferredSync is the hub's side of it. on and end are guarded by Hub.mu:
// on while an event's locked section writes, end the offset its fsync
// must reach.
type deferredSync struct {
	j   deferringJournal // nil: appends sync themselves (or need not)
	on  bool
	end int64

	mu      sync.Mutex
	queue   []syncWaiter
	running bool
}

// syncWaiter is one answer waiting for the fsync that covers end.
type syncWaiter struct {
	end  int64
	done func(error)
}

func (d *deferredSync) init(j Journal) {
	if dj, ok := j.(deferringJournal); ok && dj.SyncsEachWrite() {
		d.j = dj
	}
}

// beginLocked starts an event's locked section: its appends leave the
// fsync to endLocked's caller.
func (h *Hub) beginDeferLocked() {
	if h.ds.j != nil {
		h.ds.on, h.ds.end = true, 0
	}
}

// endDeferLocked ends the section and returns the offset whose fsync the
// event must wait for, 0 when it wrote nothing.
func (h *Hub) endDeferLocked() int64 {
	end := h.ds.end
	h.ds.on, h.ds.end = false, 0
	return end
}

// appendDeferredLocked writes ts without waiting for fsync.
func (h *Hub) appendDeferredLocked(ts []*alarm.Transition) (int, error) {
	end, err := h.ds.j.AppendAllUnsynced(ts)
	if err != nil {
		return 0, err
	}
	h.ds.end = max(h.ds.end, end)
	return len(ts), nil
}

// syncAll is an end past any write: waiting for it waits for an fsync of
// everything written so far.
const syncAll = math.MaxInt64

// resendSyncEnd is what a resent event (one already evaluated) waits for
// before it is acknowledged: with sync_each_write an fsync of all that is
// written, because the first copy may have been answered busy after its
// fsync failed; its transitions are in the file, not known on disk. 0
// (nothing) without sync_each_write.
func (h *Hub) resendSyncEnd() int64 {
	if h.ds.j == nil {
		return 0
	}
	return syncAll
}

// syncTo waits, outside the hub's lock, for the fsync covering end (a
// no-op for 0). Concurrent callers share fsyncs.
func (h *Hub) syncTo(end int64) error {
	if end == 0 || h.ds.j == nil {
		return nil
	}
	return h.ds.j.SyncTo(end)
}

// afterSync calls done once end is on disk (err: the fsync failed), on a
// syncer goroutine, without waiting itself; done is called at once for 0.
// The waiters queued while an fsync runs share the next one. The queue
// is not bounded here: each waiter is an answer its caller bounds (the
// SCAIP receiver's <mrs> in flight).
func (h *Hub) afterSync(end int64, done func(error)) {
	d := &h.ds
	if end == 0 || d.j == nil {
		done(nil)
		return
	}
	d.mu.Lock()
	d.queue = append(d.queue, syncWaiter{end: end, done: done})
	start := !d.running
	d.running = true
	d.mu.Unlock()
	if start {
		go d.run()
	}
}

// run syncs for the queued waiters until none is left: one fsync for all
// that queued before it started.
func (d *deferredSync) run() {
	var batch []syncWaiter
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.running = false
			d.mu.Unlock()
			return
		}
		batch, d.queue = d.queue, batch[:0]
		d.mu.Unlock()
		var end int64
		for _, w := range batch {
			end = max(end, w.end)
		}
		err := d.j.SyncTo(end)
		for i, w := range batch {
			w.done(err)
			batch[i] = syncWaiter{}
		}
	}
}
