package influx

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/pilot"
	"github.com/vaka-care/vaka/pilot/local"
	"github.com/vaka-care/vaka/pilot/web"
	"github.com/vaka-care/vaka/tillsyn"
)

// Both pilot sources give the dashboard supervision records.
var (
	_ web.SupervisionSource = (*Client)(nil)
	_ web.SupervisionSource = (*local.Store)(nil)
)

// Supervision records and visits go to InfluxDB as vaka_lookin and
// vaka_visit points tagged with trial and arm, and to the embedded store,
// with the resident pseudonymised and no free text (a visit's note stays
// in the hub's journal).
func TestExporterSupervision(t *testing.T) {
	sp, err := OpenSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	sink := &flakySink{}
	path := t.TempDir() + "/pilot.records"
	store, err := local.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := New(Options{Model: trialModel(t, "sensors"), Spool: sp, Sink: sink, Local: store})
	at := time.Date(2026, 3, 10, 23, 0, 0, 0, time.UTC)
	e.ObserveLookIn(tillsyn.Record{LookIn: tillsyn.LookIn{Site: "s", Unit: "u", Resident: "r1", Night: "2026-03-10", Wall: "23:00",
		Planned: at, Replaces: true}, At: at, Result: tillsyn.Result{Outcome: tillsyn.CannotTell, Cause: tillsyn.CauseSilent}, LedTo: "visit"})
	e.ObserveVisit(tillsyn.Visit{Site: "s", Unit: "u", Resident: "r1", Night: "2026-03-10", Wall: "23:00", By: "natt1",
		At: at.Add(20 * time.Minute), Note: "Astrid sov"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()
	var lookin, visit string
	for _, l := range sink.got {
		switch {
		case strings.HasPrefix(l, MeasLookIn+","):
			lookin = l
		case strings.HasPrefix(l, MeasVisit+","):
			visit = l
		}
	}
	for _, want := range []string{"arm=sensors", "cause=silent_sensor", "led_to=visit", "outcome=cannot_tell", "trial=natt", "replaces=true"} {
		if !strings.Contains(lookin, want) {
			t.Errorf("look-in line lacks %q: %s", want, lookin)
		}
	}
	if !strings.Contains(visit, "asked=true") || !strings.Contains(visit, "arm=sensors") {
		t.Errorf("visit line %s", visit)
	}
	for _, l := range []string{lookin, visit} {
		if strings.Contains(l, "r1") || strings.Contains(l, "natt1") || strings.Contains(l, "Astrid") {
			t.Errorf("personal data in %s", l)
		}
	}
	from := at.Add(-time.Hour)
	ls, vs, err := store.Supervision(ctx, "natt", from, at.Add(time.Hour))
	if err != nil || len(ls) != 1 || len(vs) != 1 || ls[0].Resident == "r1" || ls[0].Cause != "silent_sensor" {
		t.Fatalf("embedded store: %+v %+v %v", ls, vs, err)
	}
	// The store reads them back after a restart.
	store.Close()
	again, err := local.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if ls, vs, _ := again.Supervision(ctx, "natt", from, at.Add(time.Hour)); len(ls) != 1 || len(vs) != 1 || again.Len() != 0 {
		t.Errorf("after reopen: %d look-ins, %d visits, %d alarm records", len(ls), len(vs), again.Len())
	}
}

// A real InfluxDB 1.8 takes the look-in and visit points: one point per
// resident and time (a resend is the same point), none refused.
func TestIntegrationInfluxSupervisionPoints(t *testing.T) {
	d := startInfluxd(t)
	cl, err := Dial(d.config())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sp, err := OpenSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	store, err := local.Open(t.TempDir()+"/pilot.records", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := New(Options{Model: trialModel(t, "sensors"), Spool: sp, Sink: cl, Local: store})
	night := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	const residents = 50
	for i := 0; i < residents; i++ {
		for k, wall := range []string{"23:00", "02:00", "05:00"} {
			at := night.Add(time.Duration(23+3*k) * time.Hour)
			rec := tillsyn.Record{LookIn: tillsyn.LookIn{Site: "s", Unit: "u", Resident: fmt.Sprintf("r%d", i), Night: "2026-03-10",
				Wall: wall, Planned: at, Replaces: true}, At: at, Result: tillsyn.Result{Outcome: tillsyn.AllRight}}
			if i%10 == 0 && k == 1 {
				rec.Outcome, rec.Cause, rec.LedTo = tillsyn.CannotTell, tillsyn.CauseSilent, "visit"
				e.ObserveVisit(tillsyn.Visit{Site: "s", Unit: "u", Resident: rec.Resident, Night: rec.Night, Wall: wall, By: "natt1", At: at.Add(15 * time.Minute)})
			}
			e.ObserveLookIn(rec)
			if i == 0 {
				e.ObserveLookIn(rec) // a resend: the same point
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("flush: %v %+v\n%s", err, e.Stats(), d.logTail())
	}
	e.Close()
	if e.Dropped() != 0 {
		t.Fatalf("dropped %d: %+v", e.Dropped(), e.Stats())
	}
	n, err := cl.Count(ctx, MeasLookIn, "replaces", night, night.Add(48*time.Hour))
	if err != nil || n != 3*residents {
		t.Errorf("look-in points %d (%v), want %d", n, err, 3*residents)
	}
	v, err := cl.Count(ctx, MeasVisit, "asked", night, night.Add(48*time.Hour))
	if err != nil || v != residents/10 {
		t.Errorf("visit points %d (%v), want %d", v, err, residents/10)
	}
	// Read back, InfluxDB gives the same supervision measures as the
	// embedded store (which kept the resend twice: it is a log).
	from, to := night, night.Add(48*time.Hour)
	li, vi, err := cl.Supervision(ctx, "natt", from, to)
	if err != nil {
		t.Fatal(err)
	}
	ll, vl, _ := store.Supervision(ctx, "natt", from, to)
	seen := map[string]bool{}
	ll = slices.DeleteFunc(ll, func(l pilot.LookIn) bool { d := seen[l.ID]; seen[l.ID] = true; return d })
	si, sl := pilot.ComputeSupervision(li, vi, from, to, "sensors"), pilot.ComputeSupervision(ll, vl, from, to, "sensors")
	if !reflect.DeepEqual(si, sl) || si.LookIns != 3*residents || si.VisitsReplaced != 3*residents-residents/10 ||
		si.CannotTellByCause["silent_sensor"] != residents/10 || si.VisitsAsked != residents/10 {
		t.Errorf("supervision from InfluxDB %+v\nfrom the embedded store %+v", si, sl)
	}
}

// supervisionScenario feeds the trial's simulated night look-ins and
// visits to the exporter as the hub would (supervision records), and
// returns how many look-ins fall in the trial's period.
func supervisionScenario(m *pilot.Model, e *Exporter) int {
	tr := &m.Config.Trials[0]
	from, to := tr.Period(sthlm)
	data := pilot.SimulateData(tr, from, to, sthlm, 42, nil)
	n := 0
	for _, l := range data.LookIns {
		wall := l.ID[strings.LastIndexByte(l.ID, '/')+1:]
		e.ObserveLookIn(tillsyn.Record{LookIn: tillsyn.LookIn{Site: l.Site, Unit: l.Unit, Resident: l.Resident, Night: l.Night,
			Wall: wall, Planned: l.Planned, Replaces: l.Replaces}, At: l.Planned,
			Result: tillsyn.Result{Outcome: tillsyn.Outcome(l.Outcome), Cause: tillsyn.Cause(l.Cause)}, LedTo: l.LedTo})
		if l.Planned.Before(to) {
			n++
		}
	}
	for _, v := range data.Visits {
		e.ObserveVisit(tillsyn.Visit{Site: v.Site, Resident: v.Resident, Unit: tr.Arms[0].Units[0][strings.IndexByte(tr.Arms[0].Units[0], '/')+1:],
			Night: v.Night, Wall: "x", By: "natt1", At: v.At})
	}
	return n
}
