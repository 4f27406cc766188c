package hub

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/store"
)

// fullDiskJournal is the single hub's file journal refusing every append
// while refuse is set, as a full disk does (fenced_test.go's
// refusingJournal is a redundant group's, which holds nothing back).
type fullDiskJournal struct {
	*store.Journal
	refuse atomic.Bool
}

var errDiskFull = errors.New("test: no space left on device")

func (j *fullDiskJournal) Append(t *alarm.Transition) error {
	if j.refuse.Load() {
		return errDiskFull
	}
	return j.Journal.Append(t)
}

func (j *fullDiskJournal) AppendAll(ts []*alarm.Transition) error {
	if j.refuse.Load() {
		return errDiskFull
	}
	return j.Journal.AppendAll(ts)
}

// gateObserver holds the first delivery of one event id in the rules
// (ObserveEvent runs between evaluation and the journal), until released.
type gateObserver struct {
	id      string
	entered chan struct{}
	release chan struct{}
	once    atomic.Bool
}

func (g *gateObserver) ObserveEvent(ev *event.Event, _ time.Time) {
	if ev.ID == g.id && g.once.CompareAndSwap(false, true) {
		close(g.entered)
		<-g.release
	}
}

func (g *gateObserver) ObserveTransition(*alarm.Alarm, alarm.Transition) {}

// A second delivery of an event whose first is still in the rules (a
// gateway that reconnected and resent while its old connection's handler
// runs) is answered only once the first's outcome is known, and with it:
// when the journal refused the first, the resend is busy too, never OK
// for an event that is not kept. Before dedup waited, the resend was
// acknowledged at once.
func TestResendWaitsForFirstDelivery(t *testing.T) {
	c := newClock(dayTime)
	dir := t.TempDir()
	fj, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fj.Close() })
	j := &fullDiskJournal{Journal: fj}
	gate := &gateObserver{id: "race-1", entered: make(chan struct{}), release: make(chan struct{})}
	h, err := New(Options{Config: loadConfig(t, hubYAML), Journal: j, Replay: replay, Now: c.Now, Observers: []Observer{gate}})
	if err != nil {
		t.Fatal(err)
	}
	payload := press("race-1", c.Now())

	first := make(chan event.Reply, 1)
	go func() { first <- h.HandleEvent("s", "gw", payload) }()
	select {
	case <-gate.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first delivery never reached the rules")
	}
	second := make(chan event.Reply, 1)
	go func() { second <- h.HandleEvent("s", "gw", payload) }()
	select {
	case r := <-second:
		t.Fatalf("the resend was answered %+v while the first delivery was still in the rules", r)
	case <-time.After(200 * time.Millisecond):
	}
	j.refuse.Store(true) // the first delivery's journal write will fail
	close(gate.release)
	var r1, r2 event.Reply
	for i, ch := range []chan event.Reply{first, second} {
		select {
		case r := <-ch:
			if i == 0 {
				r1 = r
			} else {
				r2 = r
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("delivery %d never answered", i+1)
		}
	}
	if r1.Code != event.ReplyBusy || r2.Code != event.ReplyBusy {
		t.Fatalf("journal refusing: first %+v, resend %+v; want both busy (nothing kept, nothing acknowledged)", r1, r2)
	}
	// The journal takes writes again: the next resend writes what was
	// held and is acknowledged, once.
	j.refuse.Store(false)
	if r := h.HandleEvent("s", "gw", payload); r.Code != event.ReplyOK {
		t.Fatalf("resend after the journal recovered: %+v, want OK", r)
	}
	n := 0
	for _, a := range h.Alarms() {
		if a.Device == "btn-a" && a.Open() {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d open alarms for the button, want 1 (the resends not evaluated again)", n)
	}
}
