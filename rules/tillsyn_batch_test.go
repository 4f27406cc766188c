package rules_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/tillsyn"
)

// batchYAML: n residents with a bed monitor and a door sensor each; the
// the config asks for consent to each plan.
func batchYAML(n int) string {
	var b strings.Builder
	b.WriteString(`demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    residents:
`)
	for i := 0; i < n; i++ {
		consent := `rules: [tillsyn], `
		fmt.Fprintf(&b, `      - id: r-%d
        consent: {%srecorded_by: anna, recorded_at: "2026-11-01"}
        plan:
          tillsyn:
            times: ["02:00"]
            all_right: {in_bed: true, door_closed: true}
`, i, consent)
	}
	b.WriteString("    gateways:\n      - id: gw\n        devices:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "          - {id: bed-%d, type: bed_monitor, resident: r-%d}\n          - {id: door-%d, type: door_sensor, resident: r-%d}\n", i, i, i, i)
	}
	return b.String()
}

// TillsynSnapshots reads what TillsynSnapshot reads, for every resident
// it returns, and stops early only when its time is up (after every
// fourth resident); snapshots it did not read are left alone.
func TestTillsynSnapshotsSameAsOneByOne(t *testing.T) {
	const n = 11
	var cfg hub.Config
	if err := config.Decode("hub.yaml", []byte(batchYAML(n)), &cfg); err != nil {
		t.Fatal(err)
	}
	e := rules.New(cfg.RuleConfig())
	at := time.Date(2026, 11, 24, 1, 50, 0, 0, cfg.Loc)
	for i := 0; i < n; i++ {
		if i == 5 {
			continue // never heard
		}
		states := []event.State{event.StateOccupied, event.StateEmpty}
		for k, dev := range []string{"bed", "door"} {
			st := states[i%2]
			if k == 1 {
				st = event.StateClosed
			}
			ev := event.Event{V: 1, ID: fmt.Sprintf("e%d-%d", i, k), Site: "s", Gateway: "gw", Device: fmt.Sprintf("%s-%d", dev, i),
				Type: event.DeviceType([]string{"0012", "0014"}[k]), State: st, Time: at.Add(time.Duration(i) * time.Second)}
			e.Eval(&ev, ev.Time, nil)
		}
	}
	plans := cfg.TillsynPlans()
	if len(plans) != n {
		t.Fatalf("%d plans", len(plans))
	}
	qs := make([]rules.TillsynQuery, 0, n+1)
	for _, p := range plans {
		qs = append(qs, rules.TillsynQuery{Site: p.Site, Resident: p.Resident, Sensors: p.Sensors})
	}
	qs = append(qs, rules.TillsynQuery{Site: "nowhere", Resident: "r-0", Sensors: plans[0].Sensors})
	now := at.Add(10 * time.Minute)

	out := make([]tillsyn.Snapshot, len(qs))
	shared := make([]tillsyn.Sensor, 0, 2*len(qs))
	for i := range out {
		out[i].Sensors = shared[2*i : 2*i : 2*i+2]
	}
	if got := e.TillsynSnapshots(qs, now, time.Hour, nil, out); got != len(qs) {
		t.Fatalf("read %d of %d with an hour to spare", got, len(qs))
	}
	for i, q := range qs {
		want := e.TillsynSnapshot(q.Site, q.Resident, q.Sensors, now)
		if len(want.Sensors) == 0 {
			want.Sensors = out[i].Sensors[:0] // nil and empty read alike
		}
		if !reflect.DeepEqual(out[i], want) {
			t.Errorf("%s/%s:\n got %+v\nwant %+v", q.Site, q.Resident, out[i], want)
		}
		if len(out[i].Sensors) > 0 && &out[i].Sensors[0] != &shared[:2*len(qs)][2*i] {
			t.Errorf("%s: sensors not read into the given array", q.Resident)
		}
	}
	if out[len(qs)-1].Consent || !out[0].Consent || out[5].Sensors[0].Heard || !out[1].BedEmpty {
		t.Errorf("states not as fed: %+v", out[:6])
	}

	// No time to spare: four residents, then it stops.
	out2 := make([]tillsyn.Snapshot, len(qs))
	if got := e.TillsynSnapshots(qs, now, 0, nil, out2); got != 4 {
		t.Fatalf("read %d with no time, want 4 (the clock is read every fourth)", got)
	}
	if out2[4].At != (time.Time{}) || !reflect.DeepEqual(out2[3], out[3]) {
		t.Errorf("read past where it stopped, or not what it said it read")
	}
	if got := e.TillsynSnapshots(qs[:3], now, 0, nil, out2); got != 3 {
		t.Errorf("read %d of 3", got)
	}
	if got := e.TillsynSnapshots(nil, now, time.Hour, nil, nil); got != 0 {
		t.Errorf("read %d of none", got)
	}

	// An alarm waiting (stop true from the second resident on): the hold
	// ends after the resident being read, with an hour to spare.
	calls := 0
	stop := func() bool { calls++; return calls >= 2 }
	out3 := make([]tillsyn.Snapshot, len(qs))
	if got := e.TillsynSnapshots(qs, now, time.Hour, stop, out3); got != 2 {
		t.Fatalf("read %d with an alarm waiting after the second, want 2", got)
	}
	if !reflect.DeepEqual(out3[1], out[1]) || out3[2].At != (time.Time{}) {
		t.Errorf("read past the stop, or not what it said it read")
	}
	// Always stopped: still one resident per call, so the look-ins move on.
	if got := e.TillsynSnapshots(qs, now, time.Hour, func() bool { return true }, out3); got != 1 {
		t.Errorf("read %d when always stopped, want 1", got)
	}
}
