package hub

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/notify"
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

// Supervision's storm runs in slices (applyTechnical): every silent device
// still gets its own device_silent alarm, a member of one group, and the
// screens get that group once per slice with the count so far (not once
// per member: a clone of the group and its list each), the last with all
// of them.
func TestTickStormRaisesEveryMemberAndSendsTheGroupPerSlice(t *testing.T) {
	const n = 1000
	c := newClock(dayTime)
	j, replay, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	cfg := loadConfig(t, stormYAML(n))
	tree, err := cfg.RouteTree()
	if err != nil {
		t.Fatal(err)
	}
	d := notify.New(notify.Options{Tree: tree, Now: c.Now})
	h, err := New(Options{Config: cfg, Journal: j, Replay: replay, Now: c.Now, Observers: []Observer{d}})
	if err != nil {
		t.Fatal(err)
	}
	h.SetRouter(d)
	d.Start(h, nil)
	defer d.Close()
	ch, cancel := h.Subscribe()
	defer cancel()
	c.Add(40 * time.Second)
	h.HandleHeartbeat("s", "gw", nil)
	c.Add(21 * time.Second)
	h.Tick()
	if got := countRule(h, "device_silent"); got != n {
		t.Fatalf("%d device_silent alarms, want %d", got, n)
	}
	var frames, last int
	for _, a := range drain(ch) {
		if a.Group() == nil {
			t.Fatalf("a member was shown on its own: %s %s", a.ID, a.Rule)
		}
		frames++
		last = a.Group().Count
	}
	if last != n {
		t.Errorf("the last group frame counts %d members, want %d", last, n)
	}
	if min := (n + techSliceItems - 1) / techSliceItems; frames < min || frames > n/4 {
		t.Errorf("%d group frames for %d members: want one per slice (%d to %d)", frames, n, min, n/4)
	}
	members, ok := h.GroupMembers(h.Alarms()[0].ID)
	if !ok || len(members) != n {
		t.Errorf("group lists %d members, want %d", len(members), n)
	}
	for _, m := range members {
		if !m.RaisedAt.Equal(c.Now()) {
			t.Fatalf("member %s raised at %v, want the tick's time %v", m.ID, m.RaisedAt, c.Now())
		}
	}
}

// forget looks at forgetScan alarms per Tick, not all of them, and still
// forgets every resolved alarm past the recent window in a few Ticks,
// never an open one or a recent one.
func TestForgetIsBoundedPerTickAndForgetsAllInTime(t *testing.T) {
	const old, recent = 3 * forgetScan, 100
	c := newClock(dayTime)
	h, _ := openHub(t, t.TempDir(), c)
	long, lately := c.Now().Add(-8*24*time.Hour), c.Now().Add(-time.Hour)
	h.mu.Lock()
	for i := range old + recent {
		a := alarm.New(fmt.Sprintf("F%06d", i), long)
		a.State = alarm.Resolved
		a.SetResolvedAt(&long)
		if i >= old {
			a.SetResolvedAt(&lately)
		}
		h.alarms[a.ID] = a
	}
	open := alarm.New("OPEN", long)
	h.alarms[open.ID] = open
	h.mu.Unlock()
	left := func() int {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return len(h.alarms)
	}
	h.forget(c.Now())
	if n := left(); n < old+recent+1-forgetScan {
		t.Fatalf("one forget dropped %d alarms; it may look at %d", old+recent+1-n, forgetScan)
	}
	for i := 0; i < 200 && left() > recent+1; i++ {
		h.forget(c.Now())
	}
	if n := left(); n != recent+1 {
		t.Fatalf("%d alarms kept after 200 forgets, want the %d recent and the open one", n, recent)
	}
	if _, ok := h.Alarm("OPEN"); !ok {
		t.Error("the open alarm was forgotten")
	}
}
