package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vaka-care/vaka/httpapi"
)

// Sessions replicates the staff app's login sessions through a JetStream
// key-value bucket next to the lease (<stream>_SESSIONS, same replicas),
// so a failover does not log out every night nurse at the worst moment,
// and a session revoked on one hub is revoked on the next one too.
//
// Only the active hub serves the web, so only it writes. A hub that
// becomes active reads the whole bucket and makes it its set of sessions
// (Attach), then follows the bucket for as long as it is active: a write
// by a deposed hub in its last moments is applied too. The key is the hex
// SHA-256 of the session token, the value the user and the session's
// times: like sessions.json, the bucket logs nobody in.
type Sessions struct {
	n       *Node
	kv      jetstream.KeyValue
	timeout time.Duration
	// Applied counts changes read from the bucket and applied (for tests
	// and logs).
	Applied atomic.Int64
}

// sessionTTLMargin is kept beyond the session lifetime before the bucket
// drops a record by itself (a record's own expiry is checked on use).
const sessionTTLMargin = 10 * time.Minute

// OpenSessions makes sure the sessions bucket exists and returns it.
// sessionTTL is http.session_ttl: the bucket forgets a record that long
// (plus a margin) after it was written.
func (n *Node) OpenSessions(ctx context.Context, sessionTTL time.Duration) (*Sessions, error) {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := n.js.CreateOrUpdateKeyValue(c, jetstream.KeyValueConfig{
		Bucket:      n.opts.sessionsBucket(),
		Description: "Vaka redundant group: staff app login sessions (by token hash)",
		History:     1,
		TTL:         sessionTTL + sessionTTLMargin,
		Replicas:    n.opts.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: sessions bucket: %w", err)
	}
	return &Sessions{n: n, kv: kv, timeout: 2 * time.Second}, nil
}

// PutSession replicates a new session (httpapi.SessionSync). It returns
// once a quorum of the bucket's replicas has it.
func (s *Sessions) PutSession(key string, rec httpapi.SessionRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if _, err := s.kv.Put(c, key, b); err != nil {
		s.n.log.Error("cluster: session not replicated; it may not survive a failover", "err", err)
		return fmt.Errorf("cluster: put session: %w", err)
	}
	return nil
}

// DeleteSession replicates a logout or a revocation.
func (s *Sessions) DeleteSession(key string) error {
	c, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := s.kv.Delete(c, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.n.log.Error("cluster: session end not replicated; the next active hub would still accept it", "err", err)
		return fmt.Errorf("cluster: delete session: %w", err)
	}
	return nil
}

// Attach reads every replicated session into auth (replacing what auth
// held, ReplaceSessions), makes auth replicate its later changes here,
// and keeps applying the bucket's changes until the returned stop is
// called. Call it before the web listener opens, so no login falls
// between the snapshot and the hook.
func (s *Sessions) Attach(ctx context.Context, auth *httpapi.Auth) (stop func(), err error) {
	wctx, cancel := context.WithCancel(context.Background())
	w, err := s.kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("cluster: watch sessions: %w", err)
	}
	initial := map[string]httpapi.SessionRecord{}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
snapshot:
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return nil, errors.New("cluster: sessions watch ended while reading")
			}
			if e == nil { // the end of what the bucket held
				break snapshot
			}
			if r, ok := decodeSession(e); ok && e.Operation() == jetstream.KeyValuePut {
				initial[e.Key()] = r
			} else {
				delete(initial, e.Key())
			}
		case <-deadline.C:
			_ = w.Stop()
			cancel()
			return nil, errors.New("cluster: sessions bucket not read within 10 s")
		case <-ctx.Done():
			_ = w.Stop()
			cancel()
			return nil, ctx.Err()
		}
	}
	// The first hub to become active in a new group (a single hub made
	// redundant) seeds the bucket with its own sessions instead of
	// dropping them: no nurse is logged out by switching the group on.
	// From then on the bucket is the truth. The mark lives in the lease
	// bucket, which does not expire.
	c, ccancel := context.WithTimeout(ctx, 5*time.Second)
	_, serr := s.n.kv.Create(c, "shared.sessions-seeded", []byte("1"))
	ccancel()
	switch {
	case serr == nil:
		mine := auth.Records()
		for k, r := range mine {
			if _, ok := initial[k]; !ok {
				if err := s.PutSession(k, r); err == nil {
					initial[k] = r
				}
			}
		}
		s.n.log.Info("cluster: sessions bucket seeded with this hub's sessions", "sessions", len(mine))
	case !errors.Is(serr, jetstream.ErrKeyExists):
		s.n.log.Warn("cluster: could not tell whether the sessions bucket was seeded; taking it as it is", "err", serr)
	}
	kept := auth.ReplaceSessions(initial)
	auth.SetSync(s)
	s.n.log.Info("cluster: staff sessions taken over from the group", "sessions", kept)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			if r, ok := decodeSession(e); ok && e.Operation() == jetstream.KeyValuePut {
				auth.ApplySession(e.Key(), r)
			} else {
				auth.ApplyDelete(e.Key())
			}
			s.Applied.Add(1)
		}
	}()
	return func() {
		auth.SetSync(nil)
		_ = w.Stop()
		cancel()
		<-done
	}, nil
}

// decodeSession reads a put's value; a delete, a purge or a damaged value
// (which ends the session: the safe side) gives false.
func decodeSession(e jetstream.KeyValueEntry) (httpapi.SessionRecord, bool) {
	var r httpapi.SessionRecord
	if e.Operation() != jetstream.KeyValuePut {
		return r, false
	}
	if err := json.Unmarshal(e.Value(), &r); err != nil || r.User == "" {
		return r, false
	}
	return r, true
}

// ActiveNode names the hub that holds the lease now ("" if none): what a
// standby tells a browser that reached it.
func (n *Node) ActiveNode(ctx context.Context) (string, error) {
	e, err := n.kv.Get(ctx, leaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var lv leaseValue
	if err := json.Unmarshal(e.Value(), &lv); err != nil {
		return "", fmt.Errorf("cluster: lease value: %w", err)
	}
	return lv.Node, nil
}
