package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// kvMirror keeps one kind of the group's shared state (staff sessions,
// push subscriptions, the roster's API shifts, devices seen) in a
// JetStream key-value bucket, and a hub's own copy equal to it. The rule
// is the same for every kind, hence one helper:
//
//   - only the active hub writes, each local change put or deleted here
//     before (or as) it is answered;
//   - a hub that becomes active reads the whole bucket and makes it its
//     own copy (attach), then follows the bucket while active, so a write
//     by a deposed hub in its last moments still applies;
//   - the first hub to become active in a new group (a single hub made
//     redundant) seeds the bucket with its own copy instead of dropping it,
//     marked by seedKey in the lease bucket (which does not expire).
//
// Values are JSON. Keys given to and by the local side are without the
// prefix.
type kvMirror[T any] struct {
	n       *Node
	kv      jetstream.KeyValue
	prefix  string // every key of this kind starts with it ("": the whole bucket)
	seedKey string // in the lease bucket
	what    string // in logs and errors: "session", "push subscription", ...
	// lost says what an unreplicated write costs, in the error log.
	lost    string
	valid   func(T) bool  // a value that decodes but is not valid counts as deleted
	timeout time.Duration // of one put or delete
	// readWithin bounds reading the whole bucket in attach.
	readWithin time.Duration
}

// mirrorLocal is a hub's own copy of one kind of shared state.
type mirrorLocal[T any] struct {
	own     func() map[string]T    // what to seed a new group with
	replace func(map[string]T) int // make the group's set the whole copy; returns what it kept
	put     func(key string, v T)  // apply a change read from the bucket
	del     func(key string)       // apply a deletion read from the bucket
	hook    func(replicating bool) // start (true) or stop replicating local changes
}

func newMirror[T any](n *Node, kv jetstream.KeyValue, prefix, seedKey, what, lost string, valid func(T) bool) *kvMirror[T] {
	return &kvMirror[T]{n: n, kv: kv, prefix: prefix, seedKey: seedKey, what: what, lost: lost, valid: valid,
		timeout: 2 * time.Second, readWithin: 10 * time.Second}
}

// put replicates a change; it returns once a quorum of the bucket's
// replicas has it.
func (m *kvMirror[T]) put(key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	if _, err := m.kv.Put(c, m.prefix+key, b); err != nil {
		m.n.log.Error("cluster: "+m.what+" not replicated; "+m.lost, "err", err)
		return fmt.Errorf("cluster: put %s: %w", m.what, err)
	}
	return nil
}

// del replicates a deletion (one already gone is fine).
func (m *kvMirror[T]) del(key string) error {
	c, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	if err := m.kv.Delete(c, m.prefix+key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		m.n.log.Error("cluster: "+m.what+" removal not replicated; "+m.lost, "err", err)
		return fmt.Errorf("cluster: delete %s: %w", m.what, err)
	}
	return nil
}

// get reads one key by direct get (any current replica answers; no
// consumer, so no JetStream meta leader is needed). ok is false when the
// key is absent, deleted or not valid.
func (m *kvMirror[T]) get(ctx context.Context, key string) (v T, ok bool, err error) {
	e, err := m.kv.Get(ctx, m.prefix+key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("cluster: read %s: %w", m.what, err)
	}
	v, ok = m.decode(e)
	return v, ok, nil
}

// decode reads a put's value; a delete, a purge or a damaged or invalid
// value gives false (the safe side: the entry is dropped). A damaged or
// invalid one is counted (Node.SharedDamaged) and logged by kind, never
// by key or content: a session's key is a credential.
func (m *kvMirror[T]) decode(e jetstream.KeyValueEntry) (T, bool) {
	var v T
	if e.Operation() != jetstream.KeyValuePut {
		return v, false
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil || (m.valid != nil && !m.valid(v)) {
		m.n.damaged.Add(1)
		m.n.log.Warn("cluster: a damaged or invalid "+m.what+" in the group's key-value bucket; left out", "bytes", len(e.Value()))
		return v, false
	}
	return v, true
}

// attach makes the bucket's set local's whole copy (seeding a new group
// with local's own first), turns local's replication on, and applies the
// bucket's changes until the returned stop is called. A watch is a
// consumer: it needs JetStream's meta leader, so call it once the hub
// acknowledges events, never on the alarm path.
func (m *kvMirror[T]) attach(ctx context.Context, local mirrorLocal[T]) (stop func(), err error) {
	wctx, cancel := context.WithCancel(context.Background())
	var w jetstream.KeyWatcher
	if m.prefix == "" {
		w, err = m.kv.WatchAll(wctx)
	} else {
		w, err = m.kv.Watch(wctx, m.prefix+">")
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("cluster: watch %s: %w", m.what, err)
	}
	group := map[string]T{}
	deadline := time.NewTimer(m.readWithin)
	defer deadline.Stop()
snapshot:
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return nil, fmt.Errorf("cluster: %s watch ended while reading", m.what)
			}
			if e == nil { // the end of what the bucket held
				break snapshot
			}
			k := strings.TrimPrefix(e.Key(), m.prefix)
			if v, ok := m.decode(e); ok {
				group[k] = v
			} else {
				delete(group, k)
			}
		case <-deadline.C:
			_ = w.Stop()
			cancel()
			return nil, fmt.Errorf("cluster: %s bucket not read within %s", m.what, m.readWithin)
		case <-ctx.Done():
			_ = w.Stop()
			cancel()
			return nil, ctx.Err()
		}
	}
	serr := m.markSeeded(ctx)
	switch {
	case serr == nil:
		mine := local.own()
		for k, v := range mine {
			if _, ok := group[k]; !ok && m.put(k, v) == nil {
				group[k] = v
			}
		}
		m.n.log.Info("cluster: "+m.what+" bucket seeded with this hub's own", "entries", len(mine))
	case !errors.Is(serr, jetstream.ErrKeyExists):
		m.n.log.Warn("cluster: could not tell whether the "+m.what+" bucket was seeded; taking it as it is", "err", serr)
	}
	kept := local.replace(group)
	local.hook(true)
	m.n.log.Info("cluster: "+m.what+" state taken over from the group", "entries", kept)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			k := strings.TrimPrefix(e.Key(), m.prefix)
			if v, ok := m.decode(e); ok {
				local.put(k, v)
			} else {
				local.del(k)
			}
		}
	}()
	return func() {
		local.hook(false)
		_ = w.Stop()
		cancel()
		<-done
	}, nil
}

// markSeeded sets the seed mark and returns nil if this hub is the first
// to attach (it must seed the bucket), ErrKeyExists if the mark was
// there. The mark is read first by direct get, which any current replica
// answers: a hub that just took over often does so while the lease
// bucket's leader is being moved off its node, and a write sent in that
// moment waits its whole timeout (5 s were seen before the staff app
// opened). Writes are short tries, retried.
func (m *kvMirror[T]) markSeeded(ctx context.Context) error {
	var err error
	for try := 0; try < 10; try++ {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err = m.n.kv.Get(c, m.seedKey)
		if err == nil {
			cancel()
			return jetstream.ErrKeyExists
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			_, err = m.n.kv.Create(c, m.seedKey, []byte("1"))
		}
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrKeyExists) || ctx.Err() != nil {
			return err
		}
	}
	return err
}
