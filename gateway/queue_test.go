package gateway_test

import (
	"errors"
	"testing"

	"github.com/vaka-care/vaka/gateway"
)

func TestMemQueueOrderAndBound(t *testing.T) {
	q := gateway.NewMemQueue(3)
	for i := uint64(1); i <= 3; i++ {
		if ev, err := q.Push(gateway.Message{Seq: i}); len(ev) != 0 || err != nil {
			t.Fatalf("push %d: %v %v", i, ev, err)
		}
	}
	if _, err := q.Push(gateway.Message{Seq: 4}); !errors.Is(err, gateway.ErrQueueFull) {
		t.Fatalf("telemetry into a full queue: %v, want ErrQueueFull", err)
	}
	for want := uint64(1); want <= 3; want++ {
		m, ok := q.Front()
		if !ok || m.Seq != want {
			t.Fatalf("front = %d %v, want %d", m.Seq, ok, want)
		}
		q.Pop()
	}
	if _, ok := q.Front(); ok || q.Len() != 0 {
		t.Fatal("queue not empty after popping everything")
	}
}

func TestMemQueueAlarmEvictsOldestTelemetry(t *testing.T) {
	q := gateway.NewMemQueue(4)
	for _, m := range []gateway.Message{
		{Seq: 1},              // front, maybe in flight: never evicted
		{Seq: 2, Alarm: true}, // alarms stay
		{Seq: 3},              // oldest evictable telemetry
		{Seq: 4},
	} {
		if _, err := q.Push(m); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := q.Push(gateway.Message{Seq: 5, Alarm: true})
	if err != nil || len(ev) != 1 || ev[0].Seq != 3 {
		t.Fatalf("alarm push evicted %v (err %v), want seq 3", ev, err)
	}
	if ev, err = q.Push(gateway.Message{Seq: 6, Alarm: true}); err != nil || len(ev) != 1 || ev[0].Seq != 4 {
		t.Fatalf("second alarm evicted %v (err %v), want seq 4", ev, err)
	}
	// Only the front is telemetry now, and it is never evicted.
	if _, err := q.Push(gateway.Message{Seq: 7, Alarm: true}); !errors.Is(err, gateway.ErrQueueFull) {
		t.Fatalf("alarm into a queue of alarms: %v, want ErrQueueFull", err)
	}
	var got []uint64
	for range 10 {
		m, ok := q.Front()
		if !ok {
			break
		}
		got = append(got, m.Seq)
		q.Pop()
	}
	want := []uint64{1, 2, 5, 6}
	if len(got) != len(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

// TestMemQueueLong pushes and pops past the compaction threshold, keeping
// the queue partly full, and checks nothing is lost or reordered.
func TestMemQueueLong(t *testing.T) {
	q := gateway.NewMemQueue(3000)
	next, want := uint64(1), uint64(1)
	for round := range 20 {
		for range 2500 {
			if _, err := q.Push(gateway.Message{Seq: next}); err != nil {
				break
			}
			next++
		}
		for range 2000 + round {
			m, ok := q.Front()
			if !ok {
				break
			}
			if m.Seq != want {
				t.Fatalf("round %d: front %d, want %d", round, m.Seq, want)
			}
			q.Pop()
			want++
		}
	}
	if got := uint64(q.Len()); got != next-want {
		t.Fatalf("Len %d, want %d", got, next-want)
	}
}

func TestMemQueueByteBoundEvictsEnoughTelemetry(t *testing.T) {
	q := gateway.NewMemQueue(1000)
	small := make([]byte, 100)
	q.SetMaxBytes(5 * (100 + 64 + 2))
	for i := uint64(1); i <= 5; i++ {
		if _, err := q.Push(gateway.Message{ID: "m" + string(rune('0'+i)), Seq: i, Payload: small}); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if _, err := q.Push(gateway.Message{ID: "m6", Seq: 6, Payload: small}); !errors.Is(err, gateway.ErrQueueFull) {
		t.Fatalf("telemetry into a full queue: %v", err)
	}
	// An alarm three times as large evicts the three oldest telemetry
	// messages behind the front, and nothing more.
	ev, err := q.Push(gateway.Message{ID: "a7", Seq: 7, Alarm: true, Payload: make([]byte, 3*100+2*64+4)})
	if err != nil || len(ev) != 3 || ev[0].Seq != 2 || ev[2].Seq != 4 {
		t.Fatalf("evicted %+v, %v", ev, err)
	}
	if q.Len() != 3 || q.Bytes() > 5*(100+64+2) {
		t.Fatalf("len %d bytes %d", q.Len(), q.Bytes())
	}
	// Larger than the whole bound: refused, nothing evicted.
	if ev, err := q.Push(gateway.Message{ID: "a8", Seq: 8, Alarm: true, Payload: make([]byte, 10000)}); !errors.Is(err, gateway.ErrQueueFull) || len(ev) != 0 {
		t.Fatalf("oversized alarm: %v %v", ev, err)
	}
}
