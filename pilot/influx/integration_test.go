package influx

import (
	"context"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/pilot"
	"github.com/vaka-care/vaka/pilot/local"
)

const itTrial = `trials:
  - id: natt
    need: Färre nattliga tillsynsbesök
    hypothesis: Sensorer ersätter besök
    start: "2026-03-02"
    end: "2026-03-30"
    arms:
      - {id: sensors, units: [solrosen/avd-a], resident_count: 6}
      - {id: button, units: [solrosen/avd-b], resident_count: 6, planned_night_visits: 2}
    criteria:
      - {metric: p90_to_accept_s, arm: sensors, op: at_most, value: 60}
`

var sthlm, _ = time.LoadLocation("Europe/Stockholm")

func itModel(t testing.TB) *pilot.Model {
	var c pilot.Config
	if err := config.Decode("pilot.yaml", []byte(itTrial), &c); err != nil {
		t.Fatal(err)
	}
	return pilot.NewModel(&c, sthlm, []byte("test-key"))
}

// scenario turns simulated records into alarms going through their
// lifecycle, as the hub would show them to an observer.
func scenario(m *pilot.Model, obs interface {
	ObserveTransition(*alarm.Alarm, alarm.Transition)
}) int {
	tr := &m.Config.Trials[0]
	from, to := tr.Period(sthlm)
	dty := map[pilot.Source]event.DeviceType{pilot.SrcButton: event.PersonalTrigger, pilot.SrcBed: event.BedMonitor,
		pilot.SrcDoor: event.DoorSensor, pilot.SrcTechnical: event.PersonalTrigger}
	recs := pilot.Simulate(tr, from, to, sthlm, 42, nil)
	at := func(r time.Time, s float64) *time.Time {
		if s < 0 {
			return nil
		}
		x := r.Add(time.Duration(s * float64(time.Second)))
		return &x
	}
	for _, r := range recs {
		a := alarm.New(r.Alarm, r.RaisedAt)
		a.Site, a.Unit, a.Resident, a.Device, a.DeviceType, a.Kind = r.Site, r.Unit, r.Resident, r.Device, dty[r.Source], alarm.Kind(r.Kind)
		a.Rule = r.Rule
		obs.ObserveTransition(a, alarm.Transition{Alarm: a.ID, Action: alarm.ActRaise, At: r.RaisedAt})
		a.AcceptedAt, a.PresenceAt, a.ResolvedAt = at(r.RaisedAt, r.ToAccept), at(r.RaisedAt, r.ToPresence), at(r.RaisedAt, r.ToResolve)
		if r.Escalated {
			a.Tier = 1
		}
		if p := at(r.RaisedAt, r.ToPhone); p != nil {
			a.Deliveries = []alarm.Delivery{{User: "natt1", At: *p}}
		}
		if a.AcceptedAt != nil {
			obs.ObserveTransition(a, alarm.Transition{Alarm: a.ID, Action: alarm.ActAccept, At: *a.AcceptedAt})
		}
		a.State, a.Outcome = alarm.Resolved, alarm.Outcome(r.Outcome)
		obs.ObserveTransition(a, alarm.Transition{Alarm: a.ID, Action: alarm.ActResolve, At: *a.ResolvedAt, Outcome: a.Outcome})
	}
	n := 0
	for _, r := range recs {
		if r.RaisedAt.Before(to) {
			n++
		}
	}
	return n // the simulator's last night runs past the period's end
}

// The same scenario gives the same measures and verdicts from InfluxDB
// (written by the exporter, read back with Flux) as from the embedded store.
func TestIntegrationInfluxSameMeasuresAsEmbedded(t *testing.T) {
	d := startInfluxd(t)
	m := itModel(t)
	cl, err := Dial(d.config())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sp, err := OpenSpool(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	store, err := local.Open(t.TempDir()+"/records.jsonl", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := New(Options{Model: m, Spool: sp, Sink: cl, Local: store})
	n := scenario(m, e)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (%+v)\n%s", err, e.Stats(), d.logTail())
	}
	e.Close()
	tr := &m.Config.Trials[0]
	from, to := tr.Period(sthlm)
	fromInflux, err := cl.Records(ctx, tr.ID, from, to)
	if err != nil {
		t.Fatal(err)
	}
	fromLocal, _ := store.Records(ctx, tr.ID, from, to)
	if len(fromInflux) != n || len(fromLocal) != n {
		t.Fatalf("records: influx %d, embedded %d, scenario %d", len(fromInflux), len(fromLocal), n)
	}
	sort.Slice(fromInflux, func(i, j int) bool { return fromInflux[i].Alarm < fromInflux[j].Alarm })
	sort.Slice(fromLocal, func(i, j int) bool { return fromLocal[i].Alarm < fromLocal[j].Alarm })
	for i := range fromLocal {
		a, b := fromLocal[i], fromInflux[i]
		a.RaisedAt, b.RaisedAt = a.RaisedAt.UTC(), b.RaisedAt.UTC()
		if a != b {
			t.Fatalf("record %d differs:\nembedded %+v\ninflux   %+v", i, a, b)
		}
	}
	ri := pilot.BuildReport(tr, fromInflux, from, to, sthlm)
	rl := pilot.BuildReport(tr, fromLocal, from, to, sthlm)
	if !reflect.DeepEqual(ri.Arms, rl.Arms) || !reflect.DeepEqual(ri.Results, rl.Results) {
		t.Fatalf("measures differ:\ninflux   %+v\nembedded %+v", ri.Arms, rl.Arms)
	}
	s := ri.Arms["sensors"]
	t.Logf("%d alarms; sensors arm: %.2f alarms/resident-night, p90 accept %.0f s, only-sensor %d; verdict %s",
		n, s.PerResidentNight[""], s.ToAccept.P90, s.OnlySensor, ri.Results[0].Verdict)
	// Transitions were written too: one raise per alarm.
	cnt, err := cl.Count(ctx, MeasTransition, "since_raise_s", from.Add(-time.Hour), to.Add(24*time.Hour))
	if err != nil || cnt < int64(2*n) {
		t.Errorf("transitions in InfluxDB: %d (%v), want ≥ %d", cnt, err, 2*n)
	}
}

// InfluxDB stopped mid-run and started again: the alarm path never waits,
// the spool holds what InfluxDB could not take, and every point arrives.
func TestIntegrationInfluxOutageLosesNothing(t *testing.T) {
	d := startInfluxd(t)
	cl, _ := Dial(d.config())
	defer cl.Close()
	sp, err := OpenSpool(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	e := New(Options{Model: testModel(), Spool: sp, Sink: cl, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		WriteTimeout: 2 * time.Second})
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	const per = 20000
	var slowest time.Duration
	send := func(from int) {
		for i := from; i < from+per; i++ {
			t0 := time.Now()
			e.ObserveEvent(testEvent(i), base.Add(time.Duration(i)*time.Microsecond))
			slowest = max(slowest, time.Since(t0))
			if i%1000 == 0 {
				time.Sleep(time.Millisecond) // a realistic pace, not a flood past the queue
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	send(0)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d.stop()
	send(per)
	time.Sleep(1500 * time.Millisecond) // several failed writes and backoffs
	st := e.Stats()
	if st.WriteErrors == 0 || st.SpoolBytes == 0 {
		t.Fatalf("InfluxDB down, yet no write errors or nothing spooled: %+v", st)
	}
	t.Logf("while down: %+v", st)
	send(2 * per)
	d.start()
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("after restart: %v %+v\n%s", err, e.Stats(), d.logTail())
	}
	e.Close()
	n, err := cl.Count(ctx, MeasEvent, "n", base.Add(-time.Second), base.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3*per || e.Dropped() != 0 {
		t.Fatalf("InfluxDB holds %d of %d points; dropped %d; %+v", n, 3*per, e.Dropped(), e.Stats())
	}
	t.Logf("all %d points arrived across the outage; slowest ObserveEvent %v", n, slowest)
	// A channel send; only the scheduler (2 shared cores, the race
	// detector, influxd and fsync beside it) can make one slow.
	if slowest > 250*time.Millisecond {
		t.Errorf("an ObserveEvent took %v: the alarm path waited", slowest)
	}
}
