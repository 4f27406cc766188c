package influx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

func (f *flakySink) Write(_ context.Context, body []byte) error {
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
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

func (p *permSink) Write(context.Context, []byte) error {
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
	want := `vaka_event,dty=0014,site=s,source=door,state=open,unit=avd\ a\,b\=c n=1,device="` + m.Pseud.ID("s", "d1") +
		`",resident="` + m.Pseud.ID("s", "r1") + `" 1000000005`
	if got != want {
		t.Errorf("\ngot  %s\nwant %s", got, want)
	}
	r := pilot.Record{Alarm: "A1", Site: "s", Source: pilot.SrcButton, Kind: "call", Rule: `a"b\`, RaisedAt: time.Unix(2, 0),
		ToPhone: pilot.Missing, ToAccept: 12.5, ToPresence: pilot.Missing, ToResolve: 100}
	got = string(RecordLine(&r, nil))
	want = `vaka_alarm,alarm=A1,kind=call,site=s,source=button resident="",device="",rule="a\"b\\",night=false,escalated=false,to_accept_s=12.5,to_resolve_s=100 2000000000`
	if got != want {
		t.Errorf("\ngot  %s\nwant %s", got, want)
	}
}

func trialModel(t *testing.T, arm string) *pilot.Model {
	t.Helper()
	c := &pilot.Config{Trials: []pilot.Trial{{ID: "natt", Need: "n", Hypothesis: "h", Start: "2026-03-01", End: "2026-04-01",
		Arms:     []pilot.Arm{{ID: arm, Units: []string{"s/u"}}},
		Consent:  []pilot.Consent{{Resident: "s/r1", RecordedBy: "ssk", RecordedAt: "2026-02-20", Arm: arm}},
		Criteria: []pilot.Criterion{{Metric: "p90_to_accept_s", Arm: arm, Op: pilot.OpAtMost, Value: 60}}}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return pilot.NewModel(c, time.UTC, []byte("k"))
}

// A config reload retags what is observed after it: the exporter no
// longer keeps the trials it had at startup.
func TestExporterReloadRetagsLaterPoints(t *testing.T) {
	sp, _ := OpenSpool(t.TempDir(), 1<<20)
	sink := &flakySink{}
	store := &outageStore{}
	e := New(Options{Model: trialModel(t, "sensors"), Spool: sp, Sink: sink, Local: store})
	at := time.Date(2026, 3, 10, 23, 0, 0, 0, time.UTC)
	resolve := func(id string) {
		a := alarm.New(id, at)
		a.Site, a.Unit, a.Kind, a.DeviceType, a.State = "s", "u", alarm.KindCall, event.PersonalTrigger, alarm.Resolved
		e.ObserveTransition(a, alarm.Transition{Alarm: id, Action: alarm.ActResolve, At: at.Add(time.Minute)})
	}
	e.ObserveEvent(testEvent(1), at)
	resolve("A1")
	e.SetModel(trialModel(t, "control"))
	e.ObserveEvent(testEvent(2), at)
	resolve("A2")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()
	var arms []string
	parts := 0
	for _, l := range sink.got {
		if strings.HasPrefix(l, MeasParticipation) {
			parts++
			continue
		}
		if strings.HasPrefix(l, MeasTransition) {
			continue
		}
		_, rest, _ := strings.Cut(l, ",arm=")
		arm, _, _ := strings.Cut(rest, ",")
		arms = append(arms, arm)
	}
	if want := []string{"sensors", "sensors", "control", "control"}; !slices.Equal(arms, want) {
		t.Errorf("arm tags of event, record, event, record: %v, want %v\n%s", arms, want, strings.Join(sink.got, "\n"))
	}
	if parts != 2 {
		t.Errorf("participants exported %d times, want at start and at the reload", parts)
	}
	if len(store.recs) != 2 || store.recs[0].Arm != "sensors" || store.recs[1].Arm != "control" {
		t.Errorf("embedded store records %+v", store.recs)
	}
	if e.Model().Config.Trials[0].Arms[0].ID != "control" {
		t.Error("Model() is not the reloaded one")
	}
}

type outageStore struct {
	mu   sync.Mutex
	recs []pilot.Record
	outs []pilot.Outage
}

func (s *outageStore) Add(recs []pilot.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *outageStore) AddOutages(os []pilot.Outage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outs = append(s.outs, os...)
	return nil
}

// Outages are timed from the device's last sign of life (an event the
// exporter saw) to the device_silent alarm, and end at the restore, or at
// the next event when the alarm was resolved before the device came back.
// Without InfluxDB they still reach the embedded store.
func TestExporterTimesDeviceOutages(t *testing.T) {
	store := &outageStore{}
	e := New(Options{Model: trialModel(t, "sensors"), Local: store})
	t0 := time.Date(2026, 3, 10, 2, 0, 0, 0, time.UTC)
	ev := testEvent(1) // device d1 at s/u
	silent := func(id string, raised time.Time) *alarm.Alarm {
		a := alarm.New(id, raised)
		a.Site, a.Unit, a.Device, a.DeviceType, a.Kind, a.Rule = "s", "u", "d1", event.DoorSensor, alarm.KindTechnical, pilot.RuleDeviceSilent
		e.ObserveTransition(a, alarm.Transition{Alarm: id, Action: alarm.ActRaise, At: raised})
		return a
	}
	// 1: heard at t0, found silent 150 s later, restored by the rule 1 h later.
	// The gateway's offline report between is no sign of life.
	e.ObserveEvent(ev, t0)
	off := *ev
	off.Status = event.Offline
	e.ObserveEvent(&off, t0.Add(100*time.Second))
	a := silent("A1", t0.Add(150*time.Second))
	back := t0.Add(time.Hour)
	a.SetRestoredAt(&back)
	e.ObserveEvent(ev, back) // the hub shows the event, then its restore
	e.ObserveTransition(a, alarm.Transition{Alarm: "A1", Action: alarm.ActRestore, At: back})
	// 2: found silent, alarm resolved, the device heard again later.
	b := silent("A2", back.Add(10*time.Minute))
	b.State = alarm.Resolved
	e.ObserveTransition(b, alarm.Transition{Alarm: "A2", Action: alarm.ActResolve, At: back.Add(20 * time.Minute)})
	e.ObserveEvent(ev, back.Add(2*time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()
	got := pilot.Latest(store.outs)
	if len(got) != 2 {
		t.Fatalf("outages %+v", store.outs)
	}
	o1, o2 := got[0], got[1]
	if o1.ID != "A1" || o1.Detect() != 150 || !o1.RestoredAt.Equal(back) || o1.Trial != "natt" || o1.Arm != "sensors" || o1.Source != pilot.SrcDoor {
		t.Errorf("outage 1 %+v", o1)
	}
	if o2.ID != "A2" || o2.Detect() != 600 || !o2.RestoredAt.Equal(back.Add(2*time.Hour)) {
		t.Errorf("outage 2 %+v", o2)
	}
	if strings.Contains(o1.Device, "d1") || o1.Device == "" {
		t.Errorf("device not pseudonymous: %q", o1.Device)
	}
	// Raise + restore of each; the hub's restore after the event is not a third.
	if len(store.outs) != 4 {
		t.Errorf("%d outage records written, want 4: %+v", len(store.outs), store.outs)
	}
}

// Without InfluxDB the alarm path hands the exporter only a device's sign
// of life, by value: no allocation per event.
func TestExporterWithoutInfluxDBAllocatesNothingPerEvent(t *testing.T) {
	e := New(Options{Model: trialModel(t, "sensors"), Local: &outageStore{}, Queue: 1 << 12})
	defer e.Close()
	ev := testEvent(1)
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() { e.ObserveEvent(ev, now) }); n != 0 {
		t.Errorf("%v allocations per event, want 0", n)
	}
	if d := e.Dropped(); d != 0 {
		t.Errorf("%d dropped", d)
	}
}
