package influx

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/pilot/local"
	"github.com/vaka-care/vaka/tillsyn"
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
