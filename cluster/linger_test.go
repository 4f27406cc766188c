package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

func TestAppendLingerSetting(t *testing.T) {
	for _, c := range []struct {
		opt     time.Duration
		env     string
		want    time.Duration
		wantErr bool
	}{
		{0, "", DefaultAppendLinger, false},
		{-1, "5ms", 0, false}, // the option wins over the environment
		{3 * time.Millisecond, "", 3 * time.Millisecond, false},
		{time.Second, "", time.Second, false}, // bounded only from the environment
		{0, "off", 0, false},
		{0, "0", 0, false},
		{0, "500us", 500 * time.Microsecond, false},
		{0, "2s", DefaultAppendLinger, true},
		{0, "-1ms", DefaultAppendLinger, true},
		{0, "soon", DefaultAppendLinger, true},
	} {
		got, err := appendLinger(c.opt, c.env)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("appendLinger(%v, %q) = %v, %v; want %v, error %v", c.opt, c.env, got, err, c.want, c.wantErr)
		}
	}
}

// TestIntegrationJournalLinger, on a real 3-node JetStream cluster, with a
// linger far longer than a quorum round trip (so the test does not depend
// on how fast this machine is):
//   - an append after a quiet spell is sent at once (acknowledged well
//     before the linger);
//   - appends made right after a message was sent wait for the linger
//     (acknowledged no sooner than the linger after it), all in one
//     message, each at its own position in the order appended, and each
//     acknowledged only with that message in the stream;
//   - a synchronous append (it may hold the hub's lock) is never held, and
//     takes what lingers with it.
func TestIntegrationJournalLinger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	const linger = 600 * time.Millisecond
	_, urls := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Connect(ctx, Options{Node: "hub-a", URLs: urls, Replicas: 3, LeaseTTL: 5 * time.Second,
		Stream: "VAKA_TEST", AppendLinger: linger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	l := acquire(t, n, 30*time.Second)
	defer l.Release()
	j, _ := open(t, n, l)
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	lastSeq := func() uint64 {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		i, err := n.st.Info(c)
		if err != nil {
			t.Fatal(err)
		}
		return i.State.LastSeq
	}
	type ack struct {
		pos []uint64
		err error
		at  time.Time
	}
	appendAsync := func(id string) chan ack {
		ch := make(chan ack, 1)
		j.AppendAllAsync([]*alarm.Transition{raise(id, at)}, func(pos []uint64, err error) {
			ch <- ack{pos, err, time.Now()}
		})
		return ch
	}
	wait := func(ch chan ack) ack {
		select {
		case a := <-ch:
			if a.err != nil {
				t.Fatal(a.err)
			}
			return a
		case <-time.After(20 * time.Second):
			t.Fatal("append not answered within 20 s")
		}
		return ack{}
	}

	// The term record was the last message: let the linger pass.
	time.Sleep(linger + 100*time.Millisecond)
	before := lastSeq()
	sent := time.Now()
	first := wait(appendAsync("Q000001"))
	if d := first.at.Sub(sent); d >= linger {
		t.Fatalf("an append after a quiet spell was answered after %v: held for the linger (%v)", d, linger)
	}

	// Right behind it: ten appends, held for the linger, in one message.
	var chs []chan ack
	for i := range 10 {
		chs = append(chs, appendAsync(fmt.Sprintf("B%06d", i)))
	}
	var acks []ack
	for _, ch := range chs {
		acks = append(acks, wait(ch))
	}
	if got := lastSeq(); got != before+2 {
		t.Fatalf("1 + 10 appends took %d messages, want 2", got-before)
	}
	for i, a := range acks {
		if d := a.at.Sub(sent); d < linger {
			t.Errorf("append %d right behind a message answered %v after it was sent, before the linger (%v)", i, d, linger)
		}
		if s, k := unpos(a.pos[0]); s != before+2 || k != i {
			t.Errorf("append %d at message %d index %d, want message %d index %d", i, s, k, before+2, i)
		}
	}
	back, err := j.Read([]int64{int64(acks[9].pos[0]), int64(first.pos[0])})
	if err != nil {
		t.Fatal(err)
	}
	if back[0].Alarm != "B000009" || back[1].Alarm != "Q000001" {
		t.Fatalf("read back %s, %s; want B000009, Q000001", back[0].Alarm, back[1].Alarm)
	}

	// Right behind that message: three more appends, which would linger,
	// then a synchronous one (a notifier step, held under the hub's lock):
	// it is not held, and takes the three with it at once.
	tb := acks[len(acks)-1].at
	var cs []chan ack
	for i := range 3 {
		cs = append(cs, appendAsync(fmt.Sprintf("C%06d", i)))
	}
	sync := raise("S000001", at)
	if err := j.Append(sync); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(tb); d >= linger/2 {
		t.Errorf("a synchronous append right behind a message answered %v after it, held for the linger (%v)", d, linger)
	}
	for i, ch := range cs {
		a := wait(ch)
		if s, k := unpos(a.pos[0]); s != before+3 || k != i {
			t.Errorf("append %d queued before the synchronous one at message %d index %d, want message %d index %d", i, s, k, before+3, i)
		}
	}
	if s, k := unpos(sync.Seq); s != before+3 || k != 3 {
		t.Errorf("the synchronous append at message %d index %d, want message %d index 3", s, k, before+3)
	}
	if got := lastSeq(); got != before+3 {
		t.Errorf("%d messages in all, want 3", got-before)
	}
}
