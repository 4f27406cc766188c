package cluster

import (
	"context"

	"github.com/vaka-care/vaka/webpush"
)

// PushSubs replicates the phones' Web Push subscriptions through the
// lease bucket (keys push.<id>; the bucket does not expire), so the hub
// that takes over still reaches every locked phone (with the group's one
// VAPID key, ShareValue). Like Sessions: the active hub writes, a hub
// that becomes active makes the group's set its own (Attach), the first
// one of a new group seeding it with its own.
type PushSubs struct {
	m *kvMirror[webpush.Subscription]
}

const pushPrefix = "push."

// PushSubs returns the replicated subscriptions of the group.
func (n *Node) PushSubs() *PushSubs {
	return &PushSubs{m: newMirror(n, n.kv, pushPrefix, "shared.push-seeded", "push subscription",
		"the next active hub may not reach that phone",
		func(sub webpush.Subscription) bool { return sub.ID != "" })}
}

// PutSubscription replicates a stored subscription (webpush.StoreSync).
func (p *PushSubs) PutSubscription(sub webpush.Subscription) error { return p.m.put(sub.ID, sub) }

// DeleteSubscription replicates a removed subscription.
func (p *PushSubs) DeleteSubscription(id string) error { return p.m.del(id) }

// Attach makes the group's subscriptions store's whole content (seeding
// the group with store's own if it is the first), replicates later
// changes, and applies the group's changes until stop is called.
func (p *PushSubs) Attach(ctx context.Context, store *webpush.Store) (stop func(), err error) {
	return p.m.attach(ctx, mirrorLocal[webpush.Subscription]{
		own: func() map[string]webpush.Subscription {
			own := map[string]webpush.Subscription{}
			for _, sub := range store.All() {
				own[sub.ID] = sub
			}
			return own
		},
		replace: func(group map[string]webpush.Subscription) int {
			list := make([]webpush.Subscription, 0, len(group))
			for id, sub := range group {
				if sub.ID == id { // a value stored under another key is not trusted
					list = append(list, sub)
				}
			}
			return store.ReplaceAll(list)
		},
		put: func(id string, sub webpush.Subscription) {
			if sub.ID == id {
				store.ApplyPut(sub)
			}
		},
		del: store.ApplyDelete,
		hook: func(on bool) {
			if on {
				store.SetSync(p)
			} else {
				store.SetSync(nil)
			}
		},
	})
}
