package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ShareValue makes the group agree on one value for name, kept in the
// lease bucket (no expiry, same replicas): the first hub to offer one sets
// it, and every hub gets that value back, its own offer or not. The VAPID
// key is shared this way (cmd/vaka: shareVAPID), so a phone's Web Push
// subscription, made against one hub's public key, is valid for the hub
// that takes over. The bucket then holds a private key: the NATS cluster
// must be as closed as the hubs' data directories (it holds the journal).
func (n *Node) ShareValue(ctx context.Context, name string, offer []byte) ([]byte, error) {
	key := "shared." + name
	if _, err := n.kv.Create(ctx, key, offer); err == nil {
		return offer, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("cluster: share %s: %w", name, err)
	}
	e, err := n.kv.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("cluster: read shared %s: %w", name, err)
	}
	return e.Value(), nil
}
