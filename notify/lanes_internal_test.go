package notify

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// order records the alarms of recorded steps in order; on the n-th
// technical step it lets a care alarm arrive, as the hub would.
type order struct {
	mu     sync.Mutex
	ids    []string
	onTech func(n int)
	tech   int
}

func (o *order) Record(t alarm.Transition) error {
	o.mu.Lock()
	o.ids = append(o.ids, t.Alarm)
	fire := o.onTech
	if t.Alarm[0] == 'T' {
		o.tech++
	}
	n := o.tech
	o.mu.Unlock()
	if fire != nil && t.Alarm[0] == 'T' {
		fire(n)
	}
	return nil
}

// A care alarm is not delayed behind a large technical backlog in the
// dispatcher: queued behind 5,000 technical raises it is handled first,
// and one that arrives while technical work is under way goes before the
// rest of it. Asserted by position in the order of recorded steps.
func TestCareLaneAheadOfTechnicalBacklog(t *testing.T) {
	var c Config
	tr, err := c.Compile([]string{"natt1"}, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	d := New(Options{Tree: tr})
	rec := &order{}
	d.rec = rec
	raise := func(id string, k alarm.Kind) {
		a := &alarm.Alarm{ID: id, Kind: k, Rule: "r", Site: "s", Gateway: fmt.Sprint("gw", id)}
		d.ObserveTransition(a, alarm.Transition{Alarm: id, Action: alarm.ActRaise})
	}
	const backlog = 5000
	for i := range backlog {
		raise(fmt.Sprintf("T%04d", i), alarm.KindTechnical)
	}
	raise("C1", alarm.KindCall)
	rec.onTech = func(n int) {
		if n == 100 {
			raise("C2", alarm.KindFall)
		}
	}
	d.drain()
	if len(rec.ids) == 0 || rec.ids[0] != "C1" {
		t.Fatalf("first step for %v, want C1 before %d technical alarms", rec.ids[:min(3, len(rec.ids))], backlog)
	}
	n := 0
	for _, id := range rec.ids {
		if id[0] == 'T' {
			n++
		}
	}
	if n > techChunk {
		t.Fatalf("%d technical steps in one turn, want at most %d", n, techChunk)
	}
	for turns := 0; turns < 2*backlog/techChunk+10 && d.tech.len()+d.care.len() > 0; turns++ {
		d.drain()
	}
	pos := -1
	for i, id := range rec.ids {
		if id == "C2" {
			pos = i
		}
	}
	// C2 arrived at the 100th technical step: it is handled at the next
	// check (every 32 steps), not after the rest of the 5,000.
	if pos < 0 || pos > 1+128+1 {
		t.Fatalf("C2 handled at position %d of %d, want right after the technical step where it arrived", pos, len(rec.ids))
	}
	if len(rec.ids) != backlog+2 {
		t.Errorf("%d steps recorded, want %d: none lost", len(rec.ids), backlog+2)
	}
}
