package influx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/pilot"
)

// flakySink fails its first `fail` writes, then keeps every line.
type flakySink struct {
	mu    sync.Mutex
	fail  int
	calls []time.Time
	got   []string
}

func (f *flakySink) Write(_ context.Context, lines []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, time.Now())
	if f.fail > 0 {
		f.fail--
		return errors.New("connection refused")
	}
	f.got = append(f.got, lines...)
	return nil
}

func testModel() *pilot.Model {
	c := &pilot.Config{}
	c.Check()
	return pilot.NewModel(c, time.UTC, []byte("k"))
}

func testEvent(i int) *event.Event {
	return &event.Event{V: 1, ID: fmt.Sprint(i), Site: "s", Gateway: "g", Device: "d1", Type: event.DoorSensor,
		State: event.StateOpen, Resident: "r1", Unit: "u"}
}

// Retry and backoff, in fake time: InfluxDB down for five attempts, then
// back. The writer waits 100, 200, 400, 800, 1600 ms (doubling from
// MinBackoff), and every line arrives once, in order.
func TestExporterRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sp, err := OpenSpool(t.TempDir(), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		sink := &flakySink{fail: 5}
		e := New(Options{Model: testModel(), Spool: sp, Sink: sink, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
		t0 := time.Now()
		for i := range 50 {
			e.ObserveEvent(testEvent(i), t0.Add(time.Duration(i)))
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		sink.mu.Lock()
		calls, got := sink.calls, len(sink.got)
		sink.mu.Unlock()
		if got != 50 {
			t.Fatalf("InfluxDB got %d lines, want 50", got)
		}
		want := []time.Duration{100, 200, 400, 800, 1000} // capped at MaxBackoff
		for i, w := range want {
			if d := calls[i+1].Sub(calls[i]); d != w*time.Millisecond {
				t.Errorf("retry %d after %v, want %v", i+1, d, w*time.Millisecond)
			}
		}
		if st := e.Stats(); st.WriteErrors != 5 || st.Written != 50 || st.SpoolBytes != 0 || e.Dropped() != 0 {
			t.Errorf("stats %+v dropped %d", st, e.Dropped())
		}
		e.Close()
	})
}

// blockingStore holds the pump until released, so the queue fills.
type blockingStore struct {
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (b *blockingStore) Add(recs []pilot.Record) error {
	<-b.release
	b.mu.Lock()
	b.n += len(recs)
	b.mu.Unlock()
	return nil
}

// A stuck consumer never makes the alarm path wait: a full queue drops,
// counts every drop, and Dropped (raised by the hub) says so.
func TestExporterFullQueueDropsAndCountsNeverBlocks(t *testing.T) {
	store := &blockingStore{release: make(chan struct{})}
	e := New(Options{Model: testModel(), Local: store, Queue: 8})
	a := alarm.New("A1", time.Now())
	start := time.Now()
	for i := range 1000 {
		a.ID = fmt.Sprint("A", i)
		e.ObserveTransition(a, alarm.Transition{Alarm: a.ID, Action: alarm.ActResolve, At: time.Now()})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("1000 observations took %v with a stuck consumer", d)
	}
	dropped := e.Dropped()
	if dropped < 900 { // the queue holds 8, the pump holds the batch it took
		t.Fatalf("dropped %d, want most of 1000", dropped)
	}
	close(store.release)
	e.Close()
	store.mu.Lock()
	defer store.mu.Unlock()
	if int64(store.n)+dropped != 1000 {
		t.Errorf("stored %d + dropped %d != 1000", store.n, dropped)
	}
}

// permSink refuses as malformed.
type permSink struct{ n int }

func (p *permSink) Write(context.Context, []string) error {
	p.n++
	return refused{errors.New("400 bad line")}
}

func TestExporterMalformedBatchIsSkippedAndCounted(t *testing.T) {
	sp, _ := OpenSpool(t.TempDir(), 1<<20)
	e := New(Options{Model: testModel(), Spool: sp, Sink: &permSink{}})
	e.ObserveEvent(testEvent(1), time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Dropped() != 1 || e.Stats().Rejected != 1 {
		t.Errorf("dropped %d stats %+v", e.Dropped(), e.Stats())
	}
	e.Close()
}

func TestLineProtocolEscapes(t *testing.T) {
	m := testModel()
	ev := testEvent(1)
	ev.Site, ev.Unit = "s", "avd a,b=c"
	got := string(EventLine(m, ev, time.Unix(1, 5), nil))
	want := `vaka_event,site=s,unit=avd\ a\,b\=c,source=door,dty=0014,state=open n=1,device="` + m.Pseud.ID("s", "d1") +
		`",resident="` + m.Pseud.ID("s", "r1") + `" 1000000005`
	if got != want {
		t.Errorf("\ngot  %s\nwant %s", got, want)
	}
	r := pilot.Record{Alarm: "A1", Site: "s", Source: pilot.SrcButton, Kind: "call", Rule: `a"b\`, RaisedAt: time.Unix(2, 0),
		ToPhone: pilot.Missing, ToAccept: 12.5, ToPresence: pilot.Missing, ToResolve: 100}
	got = string(RecordLine(&r, nil))
	want = `vaka_alarm,alarm=A1,site=s,source=button,kind=call resident="",device="",rule="a\"b\\",night=false,escalated=false,to_accept_s=12.5,to_resolve_s=100 2000000000`
	if got != want {
		t.Errorf("\ngot  %s\nwant %s", got, want)
	}
}
