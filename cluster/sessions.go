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
	m *kvMirror[httpapi.SessionRecord]
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
	// The first hub to become active in a new group seeds the bucket
	// with its own sessions: no nurse is logged out by switching the
	// group on. A damaged value ends the session: the safe side.
	return &Sessions{m: newMirror(n, kv, "", "shared.sessions-seeded", "session",
		"it may not survive a failover, or a logout may not hold on the next active hub",
		func(r httpapi.SessionRecord) bool { return r.User != "" })}, nil
}

// PutSession replicates a new session (httpapi.SessionSync). It returns
// once a quorum of the bucket's replicas has it.
func (s *Sessions) PutSession(key string, rec httpapi.SessionRecord) error { return s.m.put(key, rec) }

// DeleteSession replicates a logout or a revocation.
func (s *Sessions) DeleteSession(key string) error { return s.m.del(key) }

// Attach reads every replicated session into auth (replacing what auth
// held, ReplaceSessions), makes auth replicate its later changes here,
// and keeps applying the bucket's changes until the returned stop is
// called. Call it before the web listener opens, so no login falls
// between the snapshot and the hook.
func (s *Sessions) Attach(ctx context.Context, auth *httpapi.Auth) (stop func(), err error) {
	return s.m.attach(ctx, mirrorLocal[httpapi.SessionRecord]{
		own:     auth.Records,
		replace: auth.ReplaceSessions,
		put: func(k string, r httpapi.SessionRecord) {
			auth.ApplySession(k, r)
			s.Applied.Add(1)
		},
		del: func(k string) {
			auth.ApplyDelete(k)
			s.Applied.Add(1)
		},
		hook: func(on bool) {
			if on {
				auth.SetSync(s)
			} else {
				auth.SetSync(nil)
			}
		},
	})
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
