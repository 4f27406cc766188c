package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
)

// RecTerm is the record a hub appends when it becomes active, after
// everything it replayed: the fence that refuses a former active hub's
// later appends.
const RecTerm = "term"

// RecState is a record of small named state (hub.StateKeeper: the
// silences); replay keeps the last of each name.
const RecState = "state"

type stateBody struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

// Message headers on every journal record.
const (
	HdrTerm = "Vaka-Term"
	HdrNode = "Vaka-Node"
)

// ErrDeposed is what Append returns once another hub appended after this
// one's last record: this hub is no longer the active one.
var ErrDeposed = errors.New("cluster: another hub is active now; this one must stop")

// Journal is the replicated alarm journal: a JetStream stream whose
// records are the local journal's JSON bodies (transitions and records),
// one message each. Transition.Seq and Transition.Rec are the message's
// stream sequence.
type Journal struct {
	n    *Node
	term uint64

	mu      sync.Mutex
	last    uint64 // the stream's last sequence, written or replayed by us
	deposed chan struct{}
	gone    atomic.Bool
	failAt  time.Time // last failed append: appends fail fast for failBackoff
	lastErr error

	records []store.Record
	newest  time.Time                  // the newest record's time, for KeepRecords
	state   map[string]json.RawMessage // RecState: the last of each name
	loss    store.Loss

	writeFails, slow, maxNanos atomic.Int64
	Appends                    atomic.Int64

	gc groupCommit // batch.go
	// limbo is the last message whose append failed without an answer
	// (no quorum, a timeout): Raft may still commit it later. late are
	// the entries of such a message found written after all (batch.go:
	// resolveLimbo), for the appends that would write them again.
	limbo *limboMsg
	late  []lateEntry
	// Batches and Batched count messages written through the group
	// commit and the entries in them (batch.go).
	Batches, Batched atomic.Int64
}

// failBackoff is how long appends fail at once after one failed: while the
// cluster has no quorum each try would hold the journal (and a synchronous
// caller, the hub writing what it held, its lock) for the whole append
// timeout.
const failBackoff = time.Second

var _ interface {
	Append(*alarm.Transition) error
	Close() error
} = (*Journal)(nil)

// OpenJournal replays the stream into each (transitions, in order), keeps
// the supervision records of the last KeepRecords, and appends this
// hub's term record after the last one it read. If another hub appended
// meanwhile, it reads that too and tries again, so what it replayed is
// exactly what precedes its term. Call it holding the lease. With from
// (the Follower this standby ran into the same each) it stops following
// and reads only what the follower had not read yet.
func (n *Node) OpenJournal(ctx context.Context, l *Lease, each func(alarm.Transition), from *Follower) (*Journal, error) {
	j := newJournal(n)
	if from != nil {
		j = from.Stop()
	}
	j.term = l.Term
	followed := j.last
	// The stream may be between leaders (the NATS node that led it went
	// with the hub that held the lease): transient errors are retried,
	// for as long as this hub holds the lease, up to openPatience.
	giveUp := time.Now().Add(openPatience)
	var lastErr error
	retry := func(err error) bool {
		lastErr = err
		if time.Now().After(giveUp) || ctx.Err() != nil {
			return false
		}
		select {
		case <-l.Lost():
			return false
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
		return true
	}
	// The follower most likely read everything: try the term record
	// there first, asking nothing of the meta leader (takeover.go).
	end, known := j.last, true
	for attempt := 0; attempt < 1000; attempt++ {
		// Short tries: a request to a stream between leaders waits its
		// whole timeout, and the election is over in a few seconds.
		if !known {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			var err error
			end, err = j.streamEnd(c)
			cancel()
			if err != nil {
				if retry(err) {
					continue
				}
				return nil, lastErr
			}
			known = true
		}
		if end > j.last {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := j.catchUp(c, end, each)
			cancel()
			if err != nil {
				if retry(err) {
					continue // replay goes on from the last record it handed on
				}
				return nil, lastErr
			}
		}
		// A short try: sent while the stream is between leaders it waits
		// its whole timeout, and the retry (same message id: kept once)
		// reaches the new leader as soon as it is elected.
		c, cancel := context.WithTimeout(ctx, time.Second)
		seq, err := j.publish(c, Record(RecTerm, 0, time.Now(), map[string]any{"node": n.opts.Node, "term": l.Term}), true)
		cancel()
		if err == nil {
			read := j.last - followed
			j.last = seq
			j.prune()
			l.journalOpened()
			n.log.Info("cluster: journal replayed; this hub is active", "node", n.opts.Node, "term", l.Term,
				"records", j.last, "followed", followed, "read_at_takeover", read)
			return j, nil
		}
		if !isWrongLastSeq(err) {
			if retry(fmt.Errorf("cluster: term record: %w", err)) {
				continue
			}
			return nil, lastErr
		}
		// Someone appended after what we read: read it too (up to the
		// last sequence the refusal names, else ask the stream).
		if end, known = lastSeqOf(err); known && end <= j.last {
			known = false
		}
	}
	return nil, fmt.Errorf("cluster: journal kept growing while this hub took over (another hub still appending?): %v", lastErr)
}

// openPatience bounds how long a hub that took the lease keeps trying to
// read the journal and append its term record through transient errors
// (a stream electing a new leader takes seconds).
const openPatience = 60 * time.Second

func newJournal(n *Node) *Journal {
	return &Journal{n: n, deposed: make(chan struct{}), state: map[string]json.RawMessage{}}
}

// prune keeps the records of the last KeepRecords before the newest.
func (j *Journal) prune() {
	cut := j.newest.Add(-store.DefaultKeepRecords)
	kept := j.records[:0]
	for _, r := range j.records {
		if !r.At.Before(cut) {
			kept = append(kept, r)
		}
	}
	clear(j.records[len(kept):])
	j.records = kept
}

// Follower is a standby following the journal stream as the active hub
// writes it, handing each transition to the same Rebuilder the hub will
// start from: at takeover only what the follower had not read yet is
// read, so a long journal does not lengthen the failover.
type Follower struct {
	j    *Journal
	each func(alarm.Transition)
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// followEvery is how often a follower asks the stream for what is new.
const followEvery = 200 * time.Millisecond

// Follow starts following the stream into each (a hub.Rebuilder's Add).
// each is called from the follower's goroutine until Stop returns.
func (n *Node) Follow(each func(alarm.Transition)) *Follower {
	f := &Follower{j: newJournal(n), each: each, stop: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *Follower) run() {
	defer close(f.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var lastLog time.Time
	for {
		c, cancelRound := context.WithTimeout(ctx, 5*time.Second)
		info, err := f.j.n.st.Info(c)
		if err == nil && info.State.LastSeq > f.j.last {
			err = f.j.replay(c, info.State.LastSeq, f.each)
			f.j.prune()
		}
		cancelRound()
		if err != nil && ctx.Err() == nil && time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			f.j.n.log.Warn("cluster: standby cannot follow the journal now; it reads the rest when it takes over", "err", err)
		}
		select {
		case <-f.stop:
			return
		case <-time.After(followEvery):
		}
	}
}

// Stop stops following and returns what was read (up to which sequence,
// the records and state), for OpenJournal to go on from.
func (f *Follower) Stop() *Journal {
	f.once.Do(func() { close(f.stop) })
	<-f.done
	return f.j
}

// replay reads the stream from j.last+1 to end.
func (j *Journal) replay(ctx context.Context, end uint64, each func(alarm.Transition)) error {
	// A plain ephemeral pull consumer, created within ctx: an ordered
	// consumer re-creates itself inside Fetch with its own retries, which
	// blocked a takeover for as long as the stream had no leader.
	cons, err := j.n.js.CreateConsumer(ctx, j.n.opts.Stream, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: j.last + 1,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 30 * time.Second,
		MemoryStorage: true, Replicas: 1})
	if err != nil {
		return fmt.Errorf("cluster: journal replay: %w", err)
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = j.n.js.DeleteConsumer(c, j.n.opts.Stream, cons.CachedInfo().Name)
		cancel()
	}()
	for j.last < end {
		// Ask for no more than is there: Fetch waits until the batch is
		// full or its wait is over.
		batch, err := cons.Fetch(int(min(1000, end-j.last)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("cluster: journal replay: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("cluster: journal replay: %w", err)
			}
			seq := md.Sequence.Stream
			if seq > j.last+1 {
				// A message the stream has but did not deliver is read
				// again from j.last+1; one it does not have is lost.
				if _, gerr := j.n.st.GetMsg(ctx, j.last+1); !errors.Is(gerr, jetstream.ErrMsgNotFound) {
					return fmt.Errorf("cluster: journal replay: %d delivered after %d (%v)", seq, j.last, gerr)
				}
				j.loss.SeqGaps = append(j.loss.SeqGaps, store.SeqGap{From: j.last + 1, To: seq - 1})
			}
			if seq <= j.last {
				continue
			}
			j.last = seq
			j.decode(m.Data(), seq, each)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("cluster: journal replay: %w", err)
		}
		if got == 0 {
			return fmt.Errorf("cluster: journal replay stalled at %d of %d", j.last, end)
		}
	}
	return nil
}

var recordPrefix = []byte(`{"rt":`)

func (j *Journal) decode(body []byte, seq uint64, each func(alarm.Transition)) {
	if bytes.HasPrefix(body, []byte("[")) {
		// Entries written together (batch.go): records and transitions,
		// entry i at position seq<<posShift | i.
		var many []json.RawMessage
		if err := json.Unmarshal(body, &many); err != nil {
			j.damaged(seq, err)
			return
		}
		for i, one := range many {
			if bytes.HasPrefix(one, []byte("[")) {
				j.damaged(seq, errors.New("an array inside a batch"))
				continue
			}
			j.decodeOne(one, seq, i, each)
		}
		return
	}
	j.decodeOne(body, seq, 0, each)
}

func (j *Journal) decodeOne(body []byte, seq uint64, i int, each func(alarm.Transition)) {
	if bytes.HasPrefix(body, recordPrefix) {
		var r store.Record
		if err := json.Unmarshal(body, &r); err != nil {
			j.damaged(seq, err)
			return
		}
		switch r.Type {
		case RecTerm:
			return
		case RecState:
			var st stateBody
			if err := json.Unmarshal(r.Body, &st); err != nil || st.Name == "" {
				j.damaged(seq, fmt.Errorf("bad state record: %v", err))
				return
			}
			j.state[st.Name] = st.Value
			return
		}
		if r.At.After(j.newest) {
			j.newest = r.At
		}
		j.records = append(j.records, r)
		return
	}
	var t alarm.Transition
	if err := json.Unmarshal(body, &t); err != nil {
		j.damaged(seq, err)
		return
	}
	t.Seq = pos(seq, i)
	t.Rec = int64(t.Seq)
	each(t)
}

func (j *Journal) damaged(seq uint64, err error) {
	j.loss.Corrupt++
	j.loss.New = true
	j.n.log.Error("cluster: undecodable journal record skipped", "seq", seq, "err", err)
}

// Record encodes a store.Record's JSON body.
func Record(rt string, seq uint64, at time.Time, body any) []byte {
	b, _ := json.Marshal(store.Record{Type: rt, Seq: seq, At: at, Body: mustJSON(body)})
	return b
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}

// msg is a journal message with this hub's term and node.
func (j *Journal) msg(body []byte) *nats.Msg {
	m := nats.NewMsg(j.n.opts.subject())
	m.Data = body
	m.Header.Set(HdrTerm, strconv.FormatUint(j.term, 10))
	m.Header.Set(HdrNode, j.n.opts.Node)
	return m
}

// publish appends body after j.last, fenced by expected-last-sequence and
// de-duplicated by a message id of term and sequence (a resend after a
// lost ack is kept once). It returns the record's stream sequence.
func (j *Journal) publish(ctx context.Context, body []byte, term bool) (uint64, error) {
	m := j.msg(body)
	id := j.msgID(term)
	ack, err := j.n.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequence(j.last), jetstream.WithMsgID(id),
		jetstream.WithRetryAttempts(0))
	if err != nil {
		return 0, err
	}
	if ack.Sequence != j.last+1 {
		return 0, fmt.Errorf("cluster: journal ack for sequence %d, expected %d", ack.Sequence, j.last+1)
	}
	return ack.Sequence, nil
}

// msgID is the message id of the next append: a resend after a lost ack
// is kept once.
func (j *Journal) msgID(term bool) string {
	id := strconv.FormatUint(j.term, 10) + "-" + strconv.FormatUint(j.last+1, 10)
	if term {
		id = "term-" + id
	}
	return id
}

// Append writes t after the last record and returns once a quorum of the
// stream's replicas has it. It fails, and nothing is acknowledged, when
// the cluster does not answer within the append timeout (the hub holds t
// and answers the event busy) or when another hub has appended since
// (ErrDeposed: this hub must stop).
func (j *Journal) Append(t *alarm.Transition) error {
	return j.AppendAll([]*alarm.Transition{t}) // batch.go: with whatever else is on its way
}

func (j *Journal) usable() error {
	if j.gone.Load() {
		return ErrDeposed
	}
	if !j.failAt.IsZero() && time.Since(j.failAt) < failBackoff {
		return fmt.Errorf("cluster: journal unavailable (retrying within %s): %w", failBackoff, j.lastErr)
	}
	return nil
}

// append publishes one body under j.mu.
func (j *Journal) append(body []byte) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), j.n.opts.AppendTimeout)
	defer cancel()
	t0 := time.Now()
	seq, err := j.publish(ctx, body, false)
	// A lost connection (its NATS node gone) or a stream between leaders
	// is retried within the same timeout: the client reconnects to
	// another node in about 250 ms, and the message id keeps a record
	// the stream had already taken from being written twice.
	for tries := 0; err != nil && !isWrongLastSeq(err) && ctx.Err() == nil && tries < 20; tries++ {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
		if ctx.Err() == nil && j.n.nc.Status() == nats.CONNECTED {
			seq, err = j.publish(ctx, body, false)
		}
	}
	if d := time.Since(t0); d > store.SlowWrite {
		j.slow.Add(1)
		if int64(d) > j.maxNanos.Load() {
			j.maxNanos.Store(int64(d))
		}
	}
	if err != nil {
		if isWrongLastSeq(err) {
			j.depose(err)
			return 0, ErrDeposed
		}
		// Unanswered: it may be committed later (batch.go).
		j.limbo = &limboMsg{body: body, last: j.last, id: j.msgID(false)}
		j.writeFails.Add(1)
		j.failAt, j.lastErr = time.Now(), err
		return 0, fmt.Errorf("cluster: journal append not acknowledged by a quorum: %w", err)
	}
	j.failAt, j.lastErr = time.Time{}, nil
	j.last = seq
	j.Appends.Add(1)
	return seq, nil
}

func (j *Journal) depose(err error) {
	if j.gone.CompareAndSwap(false, true) {
		j.n.log.Error("cluster: journal append refused: another hub appended after this one; stopping", "node", j.n.opts.Node, "term", j.term, "err", err)
		close(j.deposed)
	}
}

// Deposed is closed when an append found another hub active.
func (j *Journal) Deposed() <-chan struct{} { return j.deposed }

// AppendRecord writes one record (store.Journal.AppendRecord).
func (j *Journal) AppendRecord(rt string, at time.Time, body any) error {
	return j.AppendRecords(rt, []store.RecordItem{{At: at, Body: body}})
}

// recordChunk bounds the records AppendRecords puts in one message (and
// recordChunkBytes its size, well under the stream's 1 MiB).
const (
	recordChunk      = 512
	recordChunkBytes = 512 << 10
)

// AppendRecords writes records of type rt, many to a message (a JSON
// array), each message acknowledged by a quorum before the next is sent,
// so a night's 30,000 look-ins cost about 60 round trips, and the
// journal's lock is let go between messages for the alarm path. A message
// is kept whole or not at all; a failure part-way leaves the messages
// before it written (and says how many records). Why not one message per
// record, sent without waiting: expected-last-sequence fences a pipeline
// badly (a record sent to follow one that was refused can follow another
// hub's term record instead).
func (j *Journal) AppendRecords(rt string, items []store.RecordItem) error {
	if err := checkRecordType(rt); err != nil {
		return err
	}
	done, total := 0, len(items)
	for len(items) > 0 {
		var elems [][]byte
		size := 0
		for len(elems) < len(items) && len(elems) < recordChunk && size < recordChunkBytes {
			e := Record(rt, 0, items[len(elems)].At, items[len(elems)].Body)
			size += len(e)
			elems = append(elems, e)
		}
		if _, _, err := j.commit(elems); err != nil { // batch.go: one message
			return fmt.Errorf("cluster: %d of %d records written: %w", done, total, err)
		}
		done += len(elems)
		items = items[len(elems):]
	}
	return nil
}

// Read reads the transitions at the given stream sequences.
func (j *Journal) Read(recs []int64) ([]alarm.Transition, error) {
	out := make([]alarm.Transition, 0, len(recs))
	for _, rec := range recs {
		if rec <= 0 {
			return out, errors.New("cluster: read: no journal position")
		}
		seq, i := unpos(uint64(rec))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := j.n.st.GetMsg(ctx, seq)
		cancel()
		if err != nil {
			return out, fmt.Errorf("cluster: read %d: %w", rec, err)
		}
		body := m.Data
		if bytes.HasPrefix(body, []byte("[")) {
			var many []json.RawMessage
			if err := json.Unmarshal(body, &many); err != nil || i >= len(many) {
				return out, fmt.Errorf("cluster: read %d: entry %d of a batch of %d: %v", rec, i, len(many), err)
			}
			body = many[i]
		} else if i != 0 {
			return out, fmt.Errorf("cluster: read %d: entry %d of a single record", rec, i)
		}
		var t alarm.Transition
		if err := json.Unmarshal(body, &t); err != nil {
			return out, fmt.Errorf("cluster: read %d: %w", rec, err)
		}
		t.Seq, t.Rec = uint64(rec), rec
		out = append(out, t)
	}
	return out, nil
}

// Records hands over the supervision records replayed at open, once.
func (j *Journal) Records() []store.Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.records
	j.records = nil
	return out
}

// Loss is what the replay could not decode, and sequence gaps.
func (j *Journal) Loss() store.Loss { return j.loss }

// LossTotals are this process's counts: the stream's own integrity is
// JetStream's (checksummed, replicated), nothing is kept across restarts.
func (j *Journal) LossTotals() store.LossCounts {
	return store.LossCounts{Corrupt: int64(j.loss.Corrupt), WriteFails: j.writeFails.Load()}
}

// SyncWindow is zero: an acknowledged record is on a quorum of machines,
// so losing one machine's power loses nothing (each JetStream server
// flushes to its own disk on its own schedule; docs/scale-out.md).
func (j *Journal) SyncWindow() time.Duration { return 0 }

// Stats are the append counters (no fsync of our own).
func (j *Journal) Stats() store.Stats {
	return store.Stats{SlowWrites: j.slow.Load(), MaxWriteNanos: j.maxNanos.Load()}
}

// Term is the lease term this journal appends under.
func (j *Journal) Term() uint64 { return j.term }

// Close stops appending; the connection is the Node's.
func (j *Journal) Close() error {
	j.gone.Store(true)
	return nil
}

// SaveState appends state under name, acknowledged by a quorum like
// Append (hub.StateKeeper).
func (j *Journal) SaveState(name string, body []byte) error {
	if !json.Valid(body) {
		return errors.New("cluster: state is not JSON")
	}
	if _, _, err := j.commit([][]byte{Record(RecState, 0, time.Now(), stateBody{Name: name, Value: body})}); err != nil {
		return err
	}
	j.mu.Lock()
	j.state[name] = append(json.RawMessage(nil), body...)
	j.mu.Unlock()
	return nil
}

// State returns the last state saved under name.
func (j *Journal) State(name string) ([]byte, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	b, ok := j.state[name]
	return b, ok
}

// Fenced says this journal is shared by a redundant group: an append it
// refuses may be another hub's to make, so the hub alerts nobody for a
// transition before it is appended (hub/fenced.go).
func (j *Journal) Fenced() bool { return true }
