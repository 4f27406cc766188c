package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
)

// TestIntegrationJournalBatch, on a real 3-node JetStream cluster:
//   - a raise and its notify steps (AppendAll) are one stream message,
//     read back at their positions and replayed in order;
//   - appends from 8 goroutines at once share messages (group commit),
//     and every goroutine's transitions are replayed in the order its
//     appends returned, at the positions they returned;
//   - a batch appended by a hub after another took over is refused as a
//     whole (ErrDeposed for every caller) and none of it is in the stream.
func TestIntegrationJournalBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	a := connect(t, urls, "hub-a", 2*time.Second)
	la := acquire(t, a, 30*time.Second)
	ja, _ := open(t, a, la)
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	info := func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		i, err := a.st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return i.State.LastSeq
	}

	// All of a raise and its first notify steps in one message.
	before := info()
	ts := []*alarm.Transition{raise("A000001", at),
		{Alarm: "A000001", Action: alarm.ActNotify, At: at, By: "notify", To: []string{"natt1"}},
		{Alarm: "A000001", Action: alarm.ActNotify, At: at, By: "notify", To: []string{"natt2"}, Tier: 0}}
	if err := ja.AppendAll(ts); err != nil {
		t.Fatal(err)
	}
	if after := info(); after != before+1 {
		t.Fatalf("AppendAll of 3 took %d stream messages, want 1", after-before)
	}
	for i, tr := range ts {
		if s, k := unpos(tr.Seq); s != before+1 || k != i || tr.Rec != int64(tr.Seq) {
			t.Fatalf("entry %d at message %d index %d (rec %d), want message %d index %d", i, s, k, tr.Rec, before+1, i)
		}
	}
	back, err := ja.Read([]int64{ts[2].Rec, ts[0].Rec})
	if err != nil {
		t.Fatal(err)
	}
	if back[0].Action != alarm.ActNotify || back[0].To[0] != "natt2" || back[1].Action != alarm.ActRaise || back[1].Seq != ts[0].Seq {
		t.Fatalf("read back %+v", back)
	}
	// Encoded records go many to a message too, and replay.
	if err := ja.AppendEncoded("tillsyn", []store.EncodedItem{{At: at, Body: []byte(`{"i":1}`)}, {At: at, Body: []byte(`{"i":2}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := ja.AppendEncoded("tillsyn", []store.EncodedItem{{At: at, Body: []byte(`{"i":`)}}); err == nil {
		t.Fatal("a body that is not JSON was taken")
	}

	// Group commit: 8 writers at once.
	const writers, each = 8, 40
	m0, e0 := ja.GroupStats()
	got := make([][]uint64, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				tr := raise(fmt.Sprintf("W%d-%03d", w, k), at)
				if err := ja.Append(tr); err != nil {
					errs <- err
					return
				}
				got[w] = append(got[w], tr.Seq)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m1, e1 := ja.GroupStats()
	msgs, entries := m1-m0, e1-e0
	t.Logf("%d concurrent appends in %d messages", entries, msgs)
	if entries != writers*each || msgs >= entries {
		t.Errorf("%d appends from %d writers took %d messages: want fewer messages than appends", entries, writers, msgs)
	}

	// A standby takes over (a's lease released, as if it expired); a's
	// next batch, from several goroutines at once, is refused whole.
	la.Release()
	b := connect(t, urls, "hub-b", 2*time.Second)
	lb := acquire(t, b, 10*time.Second)
	jb, replayed := open(t, b, lb)
	pos := map[string]uint64{}
	for _, tr := range replayed {
		pos[tr.Alarm+"/"+string(tr.Action)+"/"+fmt.Sprint(tr.To)] = tr.Seq
	}
	for i := 1; i < len(replayed); i++ {
		if replayed[i].Seq <= replayed[i-1].Seq {
			t.Fatalf("replayed out of position order: %d after %d", replayed[i].Seq, replayed[i-1].Seq)
		}
	}
	for w := range writers {
		for k, seq := range got[w] {
			id := fmt.Sprintf("W%d-%03d", w, k)
			if p := pos[id+"/raise/[]"]; p != seq {
				t.Fatalf("%s replayed at %d, its append returned %d", id, p, seq)
			}
		}
	}
	var refused sync.WaitGroup
	var nok sync.Map
	for w := range 4 {
		refused.Add(1)
		go func() {
			defer refused.Done()
			err := ja.AppendAll([]*alarm.Transition{raise(fmt.Sprintf("Z%d", w), at),
				{Alarm: fmt.Sprintf("Z%d", w), Action: alarm.ActNotify, At: at, By: "notify"}})
			if !errors.Is(err, ErrDeposed) {
				nok.Store(w, err)
			}
		}()
	}
	refused.Wait()
	nok.Range(func(k, v any) bool {
		t.Errorf("deposed hub's batch %v: %v, want ErrDeposed", k, v)
		return true
	})
	if err := jb.Append(raise("A000002", at)); err != nil {
		t.Fatal(err)
	}
	lb.Release()
	c := connect(t, urls, "hub-c", 2*time.Second)
	lc := acquire(t, c, 10*time.Second)
	_, all := open(t, c, lc)
	for _, tr := range all {
		if tr.Alarm[0] == 'Z' {
			t.Errorf("deposed hub's %s %s is in the stream", tr.Alarm, tr.Action)
		}
	}
	if last := all[len(all)-1]; last.Alarm != "A000002" {
		t.Errorf("last replayed %s, want the new hub's A000002", last.Alarm)
	}
	lc.Release()
}

// BenchmarkJournalAppendAll: a raise and its first notify step appended
// together, one quorum round trip (compare BenchmarkJournalAppend, one
// transition). Run: go test -run '^$' -bench JournalAppendAll -benchtime 2000x ./cluster/
func BenchmarkJournalAppendAll(b *testing.B) {
	_, urls := startNATS(b)
	n := connect(b, urls, "hub-a", 5*time.Second)
	l := acquire(b, n, 30*time.Second)
	defer l.Release()
	j, _ := open(b, n, l)
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("A%06d", i)
		ts := []*alarm.Transition{raise(id, at), {Alarm: id, Action: alarm.ActNotify, At: at, By: "notify", To: []string{"natt1"}}}
		if err := j.AppendAll(ts); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
