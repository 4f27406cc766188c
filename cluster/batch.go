package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
)

// Batching: one quorum round trip for several journal entries.
//
// A raise and its first notify steps (hub AppendAll), a night's look-ins
// (AppendEncoded, AppendRecords) and appends made by several goroutines
// while one is on its way (group commit) go into one stream message, a
// JSON array of the entries. JetStream keeps a message whole or not at
// all, so a batch is all or none; the message carries the expected last
// sequence like a single append, so a batch refused under a stale term
// acknowledges none of its entries. Why not JetStream's atomic batch
// publish (v2.12+, Nats-Batch-Id): it costs one message per entry on the
// wire and in the stream, and needs allow_atomic on the stream, for the
// same all-or-none guarantee one message gives.
//
// Positions: entry i of the message at stream sequence s has
// Transition.Seq = Rec = s<<posShift | i, for every message (a single
// entry is i 0), so the positions order the history as the stream does
// and Read finds an entry inside its message.
const (
	posShift = 16
	// maxBatch bounds the entries in one message (and posShift must
	// hold it); maxBatchBytes its size, well under the stream's 1 MiB.
	maxBatch      = 1<<posShift - 1
	maxBatchBytes = 512 << 10
)

// pos is the position of entry i of the message at seq.
func pos(seq uint64, i int) uint64 { return seq<<posShift | uint64(i) }

// unpos splits a position into its message's sequence and its index.
func unpos(p uint64) (uint64, int) { return p >> posShift, int(p & (1<<posShift - 1)) }

// commitReq is one caller's entries for the group commit.
type commitReq struct {
	elems [][]byte
	size  int
	seq   uint64 // the message's stream sequence, once written
	first int    // the index of elems[0] in the message
	err   error
	done  chan struct{} // closed once written or refused (a waiting caller)
	// cb, for an asynchronous request (AppendAllAsync), is called instead
	// of closing done, from the goroutine that wrote the message.
	cb func(seq uint64, first int, err error)
}

// groupCommit is the queue of entries waiting for the next message.
type groupCommit struct {
	mu       sync.Mutex
	queue    []*commitReq
	flushing bool
	// halted is set when a message holding an asynchronous request (or
	// written while one waited behind it) was refused: every request
	// queued then and every later one is refused too, until
	// ResumeAppends. An asynchronous caller has already applied what it
	// queued and queued more behind it; nothing may be written after a
	// refused entry before the caller has taken the refused ones back
	// (the hub holds them, in order, and writes them again first).
	halted error
	// kick wakes the flusher goroutine (flusher) for an asynchronous
	// request; flusherUp says it runs. Both under mu.
	kick      chan struct{}
	flusherUp bool
}

// flusherIdle is how long the flusher goroutine waits for more work
// before it ends (the next asynchronous append starts it again).
const flusherIdle = time.Second

// startFlush has the flusher goroutine write what is queued; the caller
// set g.flushing, under g.mu, which it still holds.
//
// Why one long-lived goroutine rather than `go j.flush()` each time the
// queue fills from empty: at 1,000 events/s a message is written per
// event or two, so that started a goroutine per message, and each grew its
// stack (the ack's JSON decode is deep) by copying it: runtime.newstack
// and copystack were 7.5 % of the clustered hub's CPU at 1,000 events/s.
func (j *Journal) startFlush() {
	g := &j.gc
	if g.flusherUp {
		select {
		case g.kick <- struct{}{}:
		default: // already kicked: the flusher has not run flush since
		}
		return
	}
	if g.kick == nil {
		g.kick = make(chan struct{}, 1)
	}
	g.flusherUp = true
	go j.flusher()
}

// flusher runs flush each time it is kicked, and ends after flusherIdle
// without a kick while nothing is being written.
func (j *Journal) flusher() {
	g := &j.gc
	t := time.NewTimer(flusherIdle)
	defer t.Stop()
	j.flush()
	for {
		t.Reset(flusherIdle)
		select {
		case <-g.kick:
			j.flush()
		case <-t.C:
			g.mu.Lock()
			// flushing with no kick: a synchronous caller flushes
			// (commit); it may still leave work for a kick, so wait on.
			if !g.flushing && len(g.kick) == 0 {
				g.flusherUp = false
				g.mu.Unlock()
				return
			}
			g.mu.Unlock()
		}
	}
}

// finish tells q its outcome.
func (q *commitReq) finish(seq uint64, first int, err error) {
	q.seq, q.first, q.err = seq, first, err
	if q.cb != nil {
		q.cb(seq, first, err)
		return
	}
	close(q.done)
}

// commit writes elems (JSON values: transitions, records) in one message,
// together with whatever other goroutines asked to write meanwhile, and
// returns the message's sequence and elems[0]'s index in it. All of elems
// are written or none. The first caller to find no message on its way
// writes messages until the queue is empty; the others wait for theirs.
func (j *Journal) commit(elems [][]byte) (uint64, int, error) {
	r := &commitReq{elems: elems, done: make(chan struct{})}
	if err := r.sized(); err != nil {
		return 0, 0, err
	}
	g := &j.gc
	g.mu.Lock()
	if g.halted != nil {
		g.mu.Unlock()
		return 0, 0, g.halted
	}
	g.queue = append(g.queue, r)
	if g.flushing {
		g.mu.Unlock()
		<-r.done
		return r.seq, r.first, r.err
	}
	g.flushing = true
	g.mu.Unlock()
	j.flush()
	<-r.done
	return r.seq, r.first, r.err
}

func (r *commitReq) sized() error {
	for _, e := range r.elems {
		r.size += len(e) + 1
	}
	if len(r.elems) > maxBatch || r.size > maxBatchBytes {
		return fmt.Errorf("cluster: %d journal entries (%d bytes) do not fit one message", len(r.elems), r.size)
	}
	return nil
}

// flush writes messages until the queue is empty; the caller set
// g.flushing.
func (j *Journal) flush() {
	g := &j.gc
	g.mu.Lock()
	for len(g.queue) > 0 {
		// Take as many requests as fit one message, whole.
		n, count, size := 0, 0, 0
		for n < len(g.queue) {
			q := g.queue[n]
			if n > 0 && (count+len(q.elems) > maxBatch || size+q.size > maxBatchBytes) {
				break
			}
			count += len(q.elems)
			size += q.size
			n++
		}
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()
		err := j.writeBatch(batch, count, size)
		var refused []*commitReq
		var halted error
		g.mu.Lock()
		if err != nil && (anyAsync(batch) || anyAsync(g.queue)) {
			// Nothing may follow a refused asynchronous entry (see
			// halted): refuse what waits behind it, and what comes next.
			g.halted = fmt.Errorf("cluster: an earlier journal append was refused; appends resume once the hub has taken it back: %w", err)
			refused, g.queue, halted = g.queue, nil, g.halted
		}
		g.mu.Unlock()
		for _, q := range batch {
			q.finishBatch()
		}
		for _, q := range refused {
			q.finish(0, 0, halted)
		}
		g.mu.Lock()
	}
	g.queue = nil
	g.flushing = false
	g.mu.Unlock()
}

func anyAsync(qs []*commitReq) bool {
	for _, q := range qs {
		if q.cb != nil {
			return true
		}
	}
	return false
}

// finishBatch tells q the outcome writeBatch recorded in it.
func (q *commitReq) finishBatch() { q.finish(q.seq, q.first, q.err) }

// AppendAllAsync takes ts's place in the journal at once, behind
// everything appended or queued before it, and returns without waiting
// for the quorum: done is called later, from another goroutine, with each
// transition's position, or with the error that refused them all. It is
// how the hub keeps the journal's order under its lock while waiting for
// the quorum outside it, so that the transitions of events handled at the
// same time share one message and one round trip (the hub's pending.go).
//
// All of ts are written or none, like AppendAll. A refusal halts the
// journal: every request queued behind it, and every later one, is
// refused as well, until ResumeAppends. done must not block; ts may be
// reused once AppendAllAsync returns (they are encoded here).
func (j *Journal) AppendAllAsync(ts []*alarm.Transition, done func(pos []uint64, err error)) {
	elems, err := encodeAll(ts)
	if err != nil {
		done(nil, err)
		return
	}
	r := &commitReq{elems: elems, cb: func(seq uint64, first int, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		ps := make([]uint64, len(elems))
		for i := range ps {
			ps[i] = pos(seq, first+i)
		}
		done(ps, nil)
	}}
	if err := r.sized(); err != nil {
		done(nil, err)
		return
	}
	g := &j.gc
	g.mu.Lock()
	if g.halted != nil {
		err := g.halted
		g.mu.Unlock()
		done(nil, err)
		return
	}
	g.queue = append(g.queue, r)
	if g.flushing {
		g.mu.Unlock()
		return
	}
	g.flushing = true
	j.startFlush()
	g.mu.Unlock()
}

// ResumeAppends lets appends through again after an asynchronous append
// was refused (AppendAllAsync): the hub calls it once it holds every
// refused transition, in order, to write them again first.
func (j *Journal) ResumeAppends() {
	j.gc.mu.Lock()
	j.gc.halted = nil
	j.gc.mu.Unlock()
}

// writeBatch writes the entries of reqs as one message (a bare value when
// it is a single entry) and tells each request its place.
func (j *Journal) writeBatch(reqs []*commitReq, count, size int) error {
	body := batchBody(reqs, count)
	j.mu.Lock()
	err := j.usable()
	if err == nil && j.limbo != nil {
		err = j.resolveLimbo()
	}
	if err == nil && len(j.late) > 0 {
		if reqs, count, body = j.answerLate(reqs); len(reqs) == 0 {
			j.mu.Unlock()
			return nil
		}
	}
	var seq uint64
	if err == nil {
		seq, err = j.append(body)
	}
	j.mu.Unlock()
	if err == nil {
		j.Batches.Add(1)
		j.Batched.Add(int64(count))
	}
	i := 0
	for _, q := range reqs {
		q.seq, q.first, q.err = seq, i, err
		i += len(q.elems)
	}
	return err
}

// batchBody is the message of reqs' entries: a bare value when it is a
// single entry, else a JSON array.
func batchBody(reqs []*commitReq, count int) []byte {
	if count == 1 {
		for _, q := range reqs {
			if len(q.elems) == 1 {
				return q.elems[0]
			}
		}
	}
	size := 2
	for _, q := range reqs {
		for _, e := range q.elems {
			size += len(e) + 1
		}
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for _, q := range reqs {
		for _, e := range q.elems {
			if len(body) > 1 {
				body = append(body, ',')
			}
			body = append(body, e...)
		}
	}
	return append(body, ']')
}

// limboMsg is a message whose append failed without an answer.
type limboMsg struct {
	body []byte
	last uint64 // the sequence it was to follow
	id   string
}

// lateEntry is an entry of a message written after its append failed.
type lateEntry struct {
	body []byte
	seq  uint64 // its message's sequence
	i    int    // its index there
}

// resolveLimbo, before anything else is appended after an append that
// failed without an answer, finds out whether that message was written
// after all: Raft may commit a proposal made while the cluster had no
// quorum once the quorum is back. It sends the same message again (same
// id, same expected last sequence): JetStream answers with the message
// it kept, or writes it now, or refuses it because another message
// follows; that one is this hub's own message if it is the same bytes
// under this term and node (kept after the id's window), else another
// hub's (deposed). Either way what it held is now in the stream, and its
// entries are answered from there (answerLate) when the hub writes them
// again, instead of being written twice. Called under j.mu.
func (j *Journal) resolveLimbo() error {
	l := j.limbo
	ctx, cancel := context.WithTimeout(context.Background(), j.n.opts.AppendTimeout)
	defer cancel()
	m := j.msg(l.body)
	ack, err := j.n.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequence(l.last), jetstream.WithMsgID(l.id),
		jetstream.WithRetryAttempts(0))
	var seq uint64
	switch {
	case err == nil:
		seq = ack.Sequence
	case isWrongLastSeq(err):
		got, gerr := j.n.st.GetMsg(ctx, l.last+1)
		if gerr != nil {
			j.failAt, j.lastErr = time.Now(), gerr
			return fmt.Errorf("cluster: journal append not acknowledged by a quorum: %w", gerr)
		}
		if got.Header.Get(HdrTerm) != strconv.FormatUint(j.term, 10) || got.Header.Get(HdrNode) != j.n.opts.Node ||
			!bytes.Equal(got.Data, l.body) {
			j.depose(err)
			return ErrDeposed
		}
		seq = l.last + 1
	default:
		j.failAt, j.lastErr = time.Now(), err
		return fmt.Errorf("cluster: journal append not acknowledged by a quorum: %w", err)
	}
	if seq != l.last+1 {
		j.failAt, j.lastErr = time.Now(), fmt.Errorf("cluster: journal ack for sequence %d, expected %d", seq, l.last+1)
		return j.lastErr
	}
	j.limbo, j.last = nil, seq
	j.late = j.late[:0]
	if bytes.HasPrefix(l.body, []byte("[")) {
		var many []json.RawMessage
		if json.Unmarshal(l.body, &many) == nil {
			for i, e := range many {
				j.late = append(j.late, lateEntry{body: e, seq: seq, i: i})
			}
		}
	} else {
		j.late = append(j.late, lateEntry{body: l.body, seq: seq})
	}
	j.n.log.Warn("cluster: a journal append that had failed was written after all; its entries are not written again",
		"seq", seq, "entries", len(j.late))
	return nil
}

// answerLate answers the requests whose entries are, in order, the next
// entries of a message written after its append had failed (the hub
// writing its held transitions again), and returns the rest with their
// body. Entries of the late message that nobody writes again (a caller
// that got the error and gave up, or tries something else) are passed
// over. Called under j.mu.
func (j *Journal) answerLate(reqs []*commitReq) ([]*commitReq, int, []byte) {
	var rest []*commitReq
	for _, q := range reqs {
		k := lateIndex(j.late, q.elems)
		if k < 0 {
			rest = append(rest, q)
			continue
		}
		e := j.late[k]
		q.seq, q.first, q.err = e.seq, e.i, nil
		j.late = j.late[k+len(q.elems):]
	}
	if len(j.late) == 0 {
		j.late = nil
	}
	count := 0
	for _, q := range rest {
		count += len(q.elems)
	}
	return rest, count, batchBody(rest, count)
}

// lateIndex is where elems start in late as consecutive entries of one
// message, or -1.
func lateIndex(late []lateEntry, elems [][]byte) int {
next:
	for k := 0; k+len(elems) <= len(late); k++ {
		for i, e := range elems {
			l := late[k+i]
			if l.seq != late[k].seq || !bytes.Equal(l.body, e) {
				continue next
			}
		}
		return k
	}
	return -1
}

// AppendAll writes ts in one message, acknowledged by a quorum, all or
// none (the hub's batchAppender: a raise and its first notify steps cost
// one round trip). Each gets its position in Seq and Rec.
func (j *Journal) AppendAll(ts []*alarm.Transition) error {
	elems, err := encodeAll(ts)
	if err != nil {
		return err
	}
	seq, first, err := j.commit(elems)
	if err != nil {
		return err
	}
	for i, t := range ts {
		t.Seq = pos(seq, first+i)
		t.Rec = int64(t.Seq)
	}
	return nil
}

// encodeAll encodes ts with the local journal's encoder (the same bytes
// as encoding/json, a fraction of its CPU), into one buffer.
func encodeAll(ts []*alarm.Transition) ([][]byte, error) {
	elems := make([][]byte, len(ts))
	buf := make([]byte, 0, 512*len(ts))
	for i, t := range ts {
		start := len(buf)
		b, err := store.AppendTransitionJSON(buf, t)
		if err != nil {
			return nil, fmt.Errorf("cluster: encode transition: %w", err)
		}
		buf = b
		elems[i] = buf[start:len(buf):len(buf)]
	}
	return elems, nil
}

// AppendEncoded writes records already encoded (the hub's
// encodedAppender: a night's look-ins skip encoding/json twice), many to
// a message like AppendRecords. A message is kept whole or not at all; a
// failure part-way leaves the messages before it written.
func (j *Journal) AppendEncoded(rt string, items []store.EncodedItem) error {
	if err := checkRecordType(rt); err != nil {
		return err
	}
	done, total := 0, len(items)
	for len(items) > 0 {
		var elems [][]byte
		size := 0
		for len(elems) < len(items) && len(elems) < recordChunk && size < recordChunkBytes {
			it := items[len(elems)]
			if !json.Valid(it.Body) {
				return fmt.Errorf("cluster: record %d of %d is not JSON", done+len(elems), total)
			}
			e := Record(rt, 0, it.At, json.RawMessage(it.Body))
			size += len(e)
			elems = append(elems, e)
		}
		if _, _, err := j.commit(elems); err != nil {
			return fmt.Errorf("cluster: %d of %d records written: %w", done, total, err)
		}
		done += len(elems)
		items = items[len(elems):]
	}
	return nil
}

func checkRecordType(rt string) error {
	if rt == "" || len(rt) > 64 || rt == RecTerm || rt == RecState {
		return errors.New("cluster: record type missing, reserved or not a plain word")
	}
	for _, c := range rt {
		if c == '"' || c == '\\' || c < ' ' {
			return errors.New("cluster: record type missing, reserved or not a plain word")
		}
	}
	return nil
}

// GroupStats are the batching counters: messages written through the
// group commit and the entries in them.
func (j *Journal) GroupStats() (messages, entries int64) { return j.Batches.Load(), j.Batched.Load() }
