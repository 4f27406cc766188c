package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vaka-care/vaka/alarm"
)

func TestLastSeqOf(t *testing.T) {
	cases := []struct {
		err  error
		seq  uint64
		want bool
	}{
		{fmt.Errorf("nats: %w", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence, Description: "wrong last sequence: 42"}), 42, true},
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant, Description: "wrong last sequence"}, 0, false},
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence, Description: "wrong last sequence: x"}, 0, false},
		{errors.New("wrong last sequence: 7"), 0, false},
		{nil, 0, false},
	}
	for _, c := range cases {
		seq, ok := lastSeqOf(c.err)
		if seq != c.seq || ok != c.want {
			t.Errorf("lastSeqOf(%v) = %d, %v; want %d, %v", c.err, seq, ok, c.seq, c.want)
		}
	}
}

// stepLeaderTo moves stream's leader to server to (bounded tries).
func stepLeaderTo(t *testing.T, n *Node, stream, to string) {
	t.Helper()
	req, _ := json.Marshal(stepdownRequest{Placement: &stepdownPlacement{Preferred: to}})
	for try := 0; try < 50; try++ {
		if leaderOf(t, n, stream) == to {
			return
		}
		n.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 2*time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: leader not moved to %s", stream, to)
}

// TestIntegrationTakeoverWithoutMetaLeader: the NATS node that is
// JetStream's meta leader is lost (with the old active hub's machine)
// while the journal stream and the lease bucket are led elsewhere. A hub
// taking over then must not wait for a new meta leader: it takes the
// lease, reads the records its follower had not read and appends its
// term record making no JetStream API request but direct gets (every
// other waits for the meta leader), and replays exactly what was
// acknowledged.
func TestIntegrationTakeoverWithoutMetaLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	nodes, urls := startNATS(t)
	a := connect(t, urls, "hub-a", 2*time.Second)
	la := acquire(t, a, 30*time.Second)
	ja, _ := open(t, a, la)
	var meta *Embedded
	for deadline := time.Now().Add(30 * time.Second); meta == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, e := range nodes {
			if e.srv.JetStreamIsLeader() {
				meta = e
			}
		}
	}
	if meta == nil {
		t.Fatal("no meta leader within 30 s")
	}
	var other string
	for _, e := range nodes {
		if e != meta {
			other = e.srv.Name()
			break
		}
	}
	stepLeaderTo(t, a, a.opts.Stream, other)
	stepLeaderTo(t, a, a.opts.leaseStream(), other)

	at := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	var acked []string
	for i := range 20 {
		id := fmt.Sprintf("A%06d", i+1)
		if err := ja.Append(raise(id, at)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	// hub-b follows, then hub-a appends 5 more the follower may not have
	// read yet: the takeover reads them.
	b := connect(t, urls, "hub-b", 2*time.Second)
	var got []alarm.Transition
	f := b.Follow(func(tr alarm.Transition) { got = append(got, tr) })
	time.Sleep(5 * followEvery)
	for i := 20; i < 25; i++ {
		id := fmt.Sprintf("A%06d", i+1)
		if err := ja.Append(raise(id, at)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	stopped := f.Stop() // no more following: what is left is read at takeover
	followed := stopped.last
	// Every JetStream API request made from here to the end of the
	// takeover: only direct gets may be among them (stream info, message
	// get and consumer requests wait for a meta leader).
	var apiMu sync.Mutex
	var api []string
	sub, err := a.nc.Subscribe("$JS.API.>", func(m *nats.Msg) {
		apiMu.Lock()
		api = append(api, m.Subject)
		apiMu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	a.nc.Flush()
	la.Release()
	meta.Close()
	t0 := time.Now()
	lb := acquire(t, b, 20*time.Second)
	defer lb.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f2 := &Follower{j: stopped, stop: make(chan struct{}), done: make(chan struct{})}
	close(f2.done)
	jb, err := b.OpenJournal(ctx, lb, func(tr alarm.Transition) { got = append(got, tr) }, f2)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	metaBack := false
	for _, e := range nodes {
		if e != meta && e.srv.JetStreamIsLeader() {
			metaBack = true
		}
	}
	b.nc.Flush()
	a.nc.Flush()
	sub.Unsubscribe()
	apiMu.Lock()
	for _, subj := range api {
		if !strings.HasPrefix(subj, "$JS.API.DIRECT.GET.") {
			t.Errorf("the takeover asked %s, which waits for a meta leader", subj)
		}
	}
	apiMu.Unlock()
	// A stopped server hands its leaderships over as it goes, so a new
	// meta leader may be there within milliseconds or seconds; a lost
	// machine hands nothing over.
	t.Logf("took over in %s (follower had read to %d of 25; meta leader re-elected by then: %v; API requests %v)",
		took.Round(time.Millisecond), followed, metaBack, api)
	if len(got) != len(acked) {
		t.Fatalf("replayed %d transitions, %d acknowledged", len(got), len(acked))
	}
	for i, tr := range got {
		if tr.Alarm != acked[i] {
			t.Fatalf("transition %d: %s, want %s", i, tr.Alarm, acked[i])
		}
	}
	if err := jb.Append(raise("A000026", at)); err != nil {
		t.Fatal(err)
	}
	if err := ja.Append(raise("A999999", at)); !errors.Is(err, ErrDeposed) {
		t.Fatalf("former hub's append: %v", err)
	}
}
