package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vaka-care/vaka/webpush"
)

// PushSubs replicates the phones' Web Push subscriptions through the
// lease bucket (keys push.<id>; the bucket does not expire), so the hub
// that takes over still reaches every locked phone (with the group's one
// VAPID key, ShareValue). Like Sessions: the active hub writes, a hub
// that becomes active makes the group's set its own (Attach), the first
// one of a new group seeding it with its own.
type PushSubs struct {
	n       *Node
	timeout time.Duration
}

const pushPrefix = "push."

// PushSubs returns the replicated subscriptions of the group.
func (n *Node) PushSubs() *PushSubs { return &PushSubs{n: n, timeout: 2 * time.Second} }

// PutSubscription replicates a stored subscription (webpush.StoreSync).
func (p *PushSubs) PutSubscription(sub webpush.Subscription) error {
	b, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if _, err := p.n.kv.Put(c, pushPrefix+sub.ID, b); err != nil {
		p.n.log.Error("cluster: push subscription not replicated; the next active hub may not reach that phone", "err", err)
		return fmt.Errorf("cluster: put push subscription: %w", err)
	}
	return nil
}

// DeleteSubscription replicates a removed subscription.
func (p *PushSubs) DeleteSubscription(id string) error {
	c, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if err := p.n.kv.Delete(c, pushPrefix+id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("cluster: delete push subscription: %w", err)
	}
	return nil
}

// Attach makes the group's subscriptions store's whole content (seeding
// the group with store's own if it is the first), replicates later
// changes, and applies the group's changes until stop is called.
func (p *PushSubs) Attach(ctx context.Context, store *webpush.Store) (stop func(), err error) {
	wctx, cancel := context.WithCancel(context.Background())
	w, err := p.n.kv.Watch(wctx, pushPrefix+"*")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("cluster: watch push subscriptions: %w", err)
	}
	group := map[string]webpush.Subscription{}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
snapshot:
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return nil, errors.New("cluster: push subscription watch ended while reading")
			}
			if e == nil {
				break snapshot
			}
			if sub, ok := decodeSub(e); ok {
				group[sub.ID] = sub
			} else {
				delete(group, strings.TrimPrefix(e.Key(), pushPrefix))
			}
		case <-deadline.C:
			_ = w.Stop()
			cancel()
			return nil, errors.New("cluster: push subscriptions not read within 10 s")
		case <-ctx.Done():
			_ = w.Stop()
			cancel()
			return nil, ctx.Err()
		}
	}
	c, ccancel := context.WithTimeout(ctx, 5*time.Second)
	_, serr := p.n.kv.Create(c, "shared.push-seeded", []byte("1"))
	ccancel()
	if serr == nil {
		for _, sub := range store.All() {
			if _, ok := group[sub.ID]; !ok && p.PutSubscription(sub) == nil {
				group[sub.ID] = sub
			}
		}
	}
	list := make([]webpush.Subscription, 0, len(group))
	for _, sub := range group {
		list = append(list, sub)
	}
	kept := store.ReplaceAll(list)
	store.SetSync(p)
	p.n.log.Info("cluster: push subscriptions taken over from the group", "subscriptions", kept)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			if sub, ok := decodeSub(e); ok {
				store.ApplyPut(sub)
			} else {
				store.ApplyDelete(strings.TrimPrefix(e.Key(), pushPrefix))
			}
		}
	}()
	return func() {
		store.SetSync(nil)
		_ = w.Stop()
		cancel()
		<-done
	}, nil
}

func decodeSub(e jetstream.KeyValueEntry) (webpush.Subscription, bool) {
	var sub webpush.Subscription
	if e.Operation() != jetstream.KeyValuePut {
		return sub, false
	}
	if err := json.Unmarshal(e.Value(), &sub); err != nil || sub.ID == "" {
		return sub, false
	}
	return sub, true
}
