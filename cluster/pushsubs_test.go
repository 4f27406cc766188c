package cluster

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaka-care/vaka/webpush"
)

func subBody(endpoint string) webpush.SubscriptionBody {
	var b webpush.SubscriptionBody
	b.Endpoint = endpoint
	b.Keys.P256dh, b.Keys.Auth = "BPk", "YXV0aA"
	return b
}

func storeIDs(s *webpush.Store, user string) map[string]bool {
	out := map[string]bool{}
	for _, sub := range s.ForUser(user) {
		out[sub.ID] = true
	}
	return out
}

// TestIntegrationPushSubsFollowFailover: on a real 3-node JetStream
// cluster, the subscription hub-a had before the group and one stored
// while active are both on hub-b when it attaches (same id and receipt
// token), one only in hub-b's own file is dropped, and a subscription
// removed on hub-b (the push service said it is gone) is removed on hub-a.
func TestIntegrationPushSubsFollowFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	now := time.Date(2026, 12, 3, 23, 0, 0, 0, time.UTC)

	na := connect(t, urls, "hub-a", 3*time.Second)
	storeA, err := webpush.OpenStore(filepath.Join(dir, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	pre, _ := storeA.Add("anna", subBody("https://push.example/pre"), now)
	stopA, err := na.PushSubs().Attach(ctx, storeA)
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	later, _ := storeA.Add("anna", subBody("https://push.example/later"), now)
	if f := webpush.SyncFailures(); f != 0 {
		t.Fatalf("%d subscription changes not replicated", f)
	}

	nb := connect(t, urls, "hub-b", 3*time.Second)
	storeB, err := webpush.OpenStore(filepath.Join(dir, "b.json"))
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := storeB.Add("anna", subBody("https://push.example/stale"), now) // before attaching: hub-b's own
	stopB, err := nb.PushSubs().Attach(ctx, storeB)
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	ids := storeB.ForUser("anna")
	if len(ids) != 2 {
		t.Fatalf("hub-b has %d subscriptions of anna, want 2 (%+v)", len(ids), ids)
	}
	for _, want := range []*webpush.Subscription{pre, later} {
		got, ok := storeB.ByToken(want.Token)
		if !ok || got.ID != want.ID || got.Endpoint != want.Endpoint {
			t.Errorf("subscription %s on hub-b: %+v %v", want.Endpoint, got, ok)
		}
	}
	if storeIDs(storeB, "anna")[stale.ID] {
		t.Error("a subscription only in hub-b's own file survived taking over the group's")
	}
	storeB.Remove(pre.ID)
	waitFor(t, "a removal on hub-b applied on hub-a", func() bool {
		m := storeIDs(storeA, "anna")
		return !m[pre.ID] && m[later.ID]
	})
}
