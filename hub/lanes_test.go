package hub

import (
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/store"
)

// raiseOrder is an Observer (called under the hub's lock, in commit
// order) that lists the kinds of raised alarms and, at the nth technical
// raise, starts a call-button press and waits until the press is queued
// for the hub's lock: the press then arrives in the middle of the storm.
type raiseOrder struct {
	mu    sync.Mutex
	kinds []alarm.Kind
	n     int
	h     *Hub
	press func()
}

func (o *raiseOrder) ObserveEvent(*event.Event, time.Time) {}
func (o *raiseOrder) ObserveTransition(a *alarm.Alarm, t alarm.Transition) {
	if t.Action != alarm.ActRaise {
		return
	}
	o.mu.Lock()
	o.kinds = append(o.kinds, a.Kind)
	n := len(o.kinds)
	o.mu.Unlock()
	if n == o.n {
		go o.press()
		for deadline := time.Now().Add(5 * time.Second); o.h.ln.careWaiting.Load() == 0; {
			if time.Now().After(deadline) {
				panic("the press never queued for the hub's lock")
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// A care event is not delayed behind a large technical backlog at the
// hub: a call-button press that queues for the lock while supervision is
// raising 3,000 "device silent" alarms is raised right after the one in
// progress, not after the rest of the storm (asserted by its position
// among the raises, not by time).
func TestCareEventGoesBeforeTechnicalStorm(t *testing.T) {
	const n, at = 3000, 100
	c := newClock(dayTime)
	j, replay, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	o := &raiseOrder{n: at}
	h, err := New(Options{Config: loadConfig(t, stormYAML(n)), Journal: j, Replay: replay, Now: c.Now, Observers: []Observer{o}})
	if err != nil {
		t.Fatal(err)
	}
	o.h = h
	pressed := make(chan event.Reply, 1)
	o.press = func() { pressed <- h.HandleEvent("s", "gw", press("p1", c.Now())) }
	c.Add(40 * time.Second)
	h.HandleHeartbeat("s", "gw", nil)
	c.Add(21 * time.Second)
	h.Tick()
	if r := <-pressed; r.Code != event.ReplyOK {
		t.Fatalf("press: %+v", r)
	}
	pos := -1
	for i, k := range o.kinds {
		if k == alarm.KindCall {
			pos = i
		}
	}
	if len(o.kinds) != n+1 || pos < at {
		t.Fatalf("%d raises, call at %d", len(o.kinds), pos)
	}
	if pos > at+4 {
		t.Errorf("the call was raised after %d technical alarms; it queued after %d: it waited behind %d", pos, at, pos-at)
	}
}
