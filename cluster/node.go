package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options say which group this hub belongs to and how it reaches it.
type Options struct {
	Node     string        // this hub's name in the group
	URLs     []string      // NATS servers
	Replicas int           // of the journal stream and the lease bucket
	LeaseTTL time.Duration // how long a lease lasts unrenewed
	Stream   string        // the journal stream's name
	Logger   *slog.Logger
	// AppendTimeout bounds one append's wait for the quorum's ack;
	// zero means DefaultAppendTimeout.
	AppendTimeout time.Duration
	// AvoidLeader names the NATS server on this hub's own machine (the
	// embedded node): while this hub is active, the journal stream's and
	// the lease bucket's Raft leaders are moved off it (placement.go), so
	// losing the machine costs no leader election. Empty: not moved.
	AvoidLeader string
}

// DefaultAppendTimeout bounds an append's wait for its quorum ack. The
// event waits meanwhile (the hub's lock does not: hub/pending.go), so it
// is short: an append that times out is held by the hub and its event
// answered busy, and the gateway sends it again.
const DefaultAppendTimeout = time.Second

// Node is this hub's connection to the group's NATS cluster.
type Node struct {
	opts Options
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	st   jetstream.Stream
	kv   jetstream.KeyValue
	// damaged counts shared values (sessions, push subscriptions, the
	// roster, devices seen) left out as damaged or invalid (kvmirror.go).
	damaged atomic.Int64
}

// SharedDamaged is how many values of the group's shared state were left
// out as damaged or invalid since this hub connected.
func (n *Node) SharedDamaged() int64 { return n.damaged.Load() }

func (o *Options) subject() string { return "vaka.journal." + strings.ToLower(o.Stream) }

// Connect connects to the NATS cluster and makes sure the journal stream
// and the lease bucket exist with the configured replicas, retrying until
// ctx ends while the cluster forms (a JetStream cluster answers only once
// it has elected its meta leader).
func Connect(ctx context.Context, o Options) (*Node, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AppendTimeout <= 0 {
		o.AppendTimeout = DefaultAppendTimeout
	}
	if o.Replicas <= 0 {
		o.Replicas = 3
	}
	nc, err := nats.Connect(strings.Join(o.URLs, ","),
		nats.Name("vaka-hub-"+o.Node),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		// No buffering while disconnected: an append must fail at once
		// (and be held by the hub, the event answered busy) rather than
		// wait in a buffer that a crash would lose.
		nats.ReconnectBufSize(-1),
		// A server whose machine lost power or network sends no TCP
		// reset: without pings the client would notice it only after
		// nats.go's default two minutes, and a standby connected there
		// could not take over. About 3 s instead.
		nats.PingInterval(time.Second),
		nats.MaxPingsOutstanding(2),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	n := &Node{opts: o, log: o.Logger, nc: nc, js: js}
	for attempt := 0; ; attempt++ {
		err = n.ensure(ctx)
		if err == nil {
			return n, nil
		}
		if attempt%10 == 0 {
			n.log.Warn("cluster: journal stream not ready yet; waiting for the NATS cluster", "err", err)
		}
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("cluster: journal stream: %w (last: %v)", ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (n *Node) ensure(ctx context.Context) error {
	// Short tries: a node that has just started (its machine back) may
	// drop the first requests while it catches up, and Connect retries.
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	want := jetstream.StreamConfig{
		Name:        n.opts.Stream,
		Description: "Vaka alarm journal (one record per alarm transition or supervision record)",
		Subjects:    []string{n.opts.subject()},
		Replicas:    n.opts.Replicas,
		Storage:     jetstream.FileStorage,
		// A record whose ack was lost is sent again with the same id:
		// the stream keeps it once (Journal.Append).
		Duplicates: 2 * time.Minute,
		Discard:    jetstream.DiscardNew,
		MaxMsgSize: 1 << 20,
		// Any current replica answers a read by sequence (direct get),
		// without JetStream's meta leader: a hub taking over reads what
		// its follower missed even while the meta leader, lost with the
		// old active hub's machine, is being re-elected (takeover.go).
		AllowDirect: true,
	}
	// A stream and bucket already set up as wanted are only looked up:
	// an update is a proposal through JetStream's meta leader on every
	// hub start, for nothing.
	st, err := n.js.Stream(c, want.Name)
	if err != nil || !sameStream(st.CachedInfo().Config, want) {
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		if st, err = n.js.CreateOrUpdateStream(c, want); err != nil {
			return err
		}
	}
	bucket := n.opts.Stream + "_LEASE"
	kv, err := n.js.KeyValue(c, bucket)
	if err == nil {
		var status jetstream.KeyValueStatus
		if status, err = kv.Status(c); err == nil {
			if bs, ok := status.(*jetstream.KeyValueBucketStatus); !ok || bs.StreamInfo().Config.Replicas != n.opts.Replicas {
				kv = nil
			}
		}
	}
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return err
	}
	if err != nil || kv == nil {
		kv, err = n.js.CreateOrUpdateKeyValue(c, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "Vaka redundant group: which hub is active",
			History:     1,
			Replicas:    n.opts.Replicas,
			Storage:     jetstream.FileStorage,
		})
		if err != nil {
			return err
		}
	}
	n.st, n.kv = st, kv
	return nil
}

// sameStream reports whether have is the journal stream as wanted.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Replicas == want.Replicas &&
		have.Storage == want.Storage && have.Duplicates == want.Duplicates && have.Discard == want.Discard &&
		have.MaxMsgSize == want.MaxMsgSize && have.AllowDirect == want.AllowDirect
}

// Close closes the connection.
func (n *Node) Close() { n.nc.Close() }

// isWrongLastSeq reports a refused expected-last-sequence or revision.
func isWrongLastSeq(err error) bool {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}
