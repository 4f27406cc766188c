package hub

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
	"github.com/vaka-care/vaka/tillsyn"
)

// tillsynHubYAML: resident r-a has a bed monitor and a door sensor and a
// plan of three look-ins that raise an alarm when not all right; r-b has
// the same sensors and a plan that asks for a visit.
const tillsynHubYAML = `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    units: [{id: u}]
    residents:
      - id: r-a
        unit: u
        consent: {rules: [tillsyn, bed_exit], recorded_by: anna, recorded_at: "2026-11-01"}
        plan:
          tillsyn:
            times: ["23:00", "02:00", "05:00"]
            tolerance: 15m
            all_right: {in_bed: true, door_closed: true, no_alarm_open: true}
            not_all_right: {do: alarm, kind: call, priority: 2}
            replaces: ["23:00", "02:00", "05:00"]
      - id: r-b
        unit: u
        consent: {rules: [tillsyn], recorded_by: anna, recorded_at: "2026-11-01"}
        plan:
          tillsyn:
            times: ["02:00"]
            heard_within: 1h
            all_right: {in_bed: true, door_closed: true}
            not_all_right: {do: visit, visit_within: 20m}
    gateways:
      - id: gw
        heartbeat: 1h
        devices:
          - {id: bed-a, type: bed_monitor, resident: r-a, unit: u, room: "12"}
          - {id: door-a, type: door_sensor, resident: r-a, unit: u, room: "12"}
          - {id: bed-b, type: bed_monitor, resident: r-b, unit: u, room: "14"}
          - {id: door-b, type: door_sensor, resident: r-b, unit: u, room: "14"}
`

func openTillsynHub(t *testing.T, dir string, c *clock) *Hub {
	t.Helper()
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	h, err := New(Options{Config: loadConfig(t, tillsynHubYAML), Journal: j, Replay: replay, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A whole night through the real engine and journal with an injected
// clock: r-a gets out of bed at 01:58 (bed_exit fires at 02:13, so the
// 02:00 look-in is not all right and leads to the open alarm, not to a
// second one); staff resolve it at 02:40; r-b's door sensor falls silent
// at 00:30, so its 02:00 look-in cannot tell and asks for a visit, which a
// nurse records. After a restart the night's records come back and no
// look-in is made twice.
func TestHubTillsynWholeNight(t *testing.T) {
	dir := t.TempDir()
	at := func(clock string) time.Time {
		m, _ := tillsyn.ParseClock(clock)
		d := 23
		if m < 12*60 {
			d = 24
		}
		return time.Date(2026, 11, d, m/60, m%60, 0, 0, stockholm)
	}
	c := newClock(at("21:50"))
	h := openTillsynHub(t, dir, c)
	seq := 0
	send := func(device, state string) {
		seq++
		dty := "0012"
		if strings.HasPrefix(device, "door") {
			dty = "0014"
		}
		r := h.HandleEvent("s", "gw", evPayload(fmt.Sprintf("e%d", seq), device, dty, state, "", c.Now()))
		if r.Code != 0 {
			t.Fatalf("event refused: %+v", r)
		}
	}
	bedA := "occupied"
	resolved := false
	for i := 0; !c.Now().After(at("06:00")) && i < 10000; i++ {
		now := c.Now()
		wall := now.In(stockholm).Format("15:04:05")
		if now.Minute()%20 == 0 && now.Second() == 0 {
			// Sensors report (a state, or a repeat as a sign of life).
			h.HandleHeartbeat("s", "gw", nil)
			send("bed-a", bedA)
			send("door-a", "closed")
			send("bed-b", "occupied")
			if now.Before(at("00:30")) {
				send("door-b", "closed")
			}
		}
		switch wall {
		case "01:58:00":
			bedA = "empty"
			send("bed-a", bedA)
		case "02:25:00":
			bedA = "occupied"
			send("bed-a", bedA)
		}
		if !resolved && now.After(at("02:40")) {
			for _, a := range h.Alarms() {
				if a.Rule == "bed_exit" && a.Open() {
					mustAct(t, h, a.ID, alarm.ActAccept, "natt1", "")
					mustAct(t, h, a.ID, alarm.ActResolve, "natt1", alarm.OutcomeRealNeed)
					resolved = true
				}
			}
		}
		h.Tick()
		c.Add(5 * time.Second)
	}
	if !resolved {
		t.Fatal("bed_exit never raised")
	}
	recs := h.TillsynRecords()
	got := map[string]tillsyn.Record{}
	for _, r := range recs {
		got[r.Resident+" "+r.Wall] = r
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4: %+v", len(recs), recs)
	}
	check := func(key string, o tillsyn.Outcome, cause tillsyn.Cause, ledTo string) tillsyn.Record {
		t.Helper()
		r, ok := got[key]
		if !ok {
			t.Fatalf("no record for %s", key)
		}
		if r.Outcome != o || r.Cause != cause || r.LedTo != ledTo {
			t.Errorf("%s: %s %s led to %q, want %s %s %q (%v)", key, r.Outcome, r.Cause, r.LedTo, o, cause, ledTo, r.Reasons)
		}
		return r
	}
	check("r-a 23:00", tillsyn.AllRight, "", "")
	r := check("r-a 02:00", tillsyn.NotAllRight, "", "open_alarm")
	if !r.At.Equal(at("02:15")) || !strings.Contains(strings.Join(r.Reasons, ";"), "bed_exit") {
		t.Errorf("r-a 02:00 at %s reasons %v", r.At.In(stockholm), r.Reasons)
	}
	check("r-a 05:00", tillsyn.AllRight, "", "")
	rb := check("r-b 02:00", tillsyn.CannotTell, tillsyn.CauseSilent, "visit")
	if !rb.VisitBy.Equal(rb.At.Add(20 * time.Minute)) {
		t.Errorf("visit by %s", rb.VisitBy)
	}
	for _, ev := range rb.Evidence {
		if ev.Device == "door-b" && (ev.Usable || ev.Why != string(tillsyn.CauseSilent) || !ev.LastSeen.Equal(at("00:20"))) {
			t.Errorf("door-b evidence %+v", ev)
		}
	}
	// r-a: no tillsyn alarm, the open bed_exit alarm already called staff.
	// r-b: nobody recorded the requested visit by 02:30, so it rang.
	var tillsynAlarms []string
	for _, a := range h.Alarms() {
		if a.Rule == "tillsyn" {
			tillsynAlarms = append(tillsynAlarms, a.Resident)
			if a.Resident != "r-b" || !strings.Contains(a.Note, "requested visit not recorded by 02:30") || !a.RaisedAt.Equal(at("02:30")) {
				t.Errorf("tillsyn alarm %+v", a)
			}
		}
	}
	if len(tillsynAlarms) != 1 {
		t.Errorf("tillsyn alarms for %v, want one for r-b (visit overdue)", tillsynAlarms)
	}

	// The round view: r-b's visit first, then the rest in time order.
	round := h.TillsynRound(c.Now())
	if len(round.Entries) != 4 || !round.Entries[0].NeedsVisit || round.Entries[0].Resident != "r-b" || round.Entries[0].Room != "14" {
		t.Fatalf("round %s", mustJSON(t, round))
	}
	for i := 2; i < len(round.Entries); i++ {
		if round.Entries[i].Planned.Before(round.Entries[i-1].Planned) {
			t.Errorf("round not in time order at %d", i)
		}
	}
	v, err := h.RecordVisit("s", "r-b", "natt2", at("02:30"), "sov, dörrgivaren byts")
	if err != nil || v.Wall != "02:00" || v.Night != "2026-11-23" {
		t.Fatalf("visit %+v %v", v, err)
	}
	if _, err := h.RecordVisit("s", "nobody", "natt2", at("02:30"), ""); err != ErrNoPlan {
		t.Errorf("visit to a resident without a plan: %v", err)
	}
	if round := h.TillsynRound(c.Now()); round.Entries[0].NeedsVisit {
		t.Errorf("visit recorded, still needs one: %+v", round.Entries[0])
	}

	// Everything is in the journal: four supervision records, one visit.
	j, _, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	recsJ := j.Records()
	var nT, nV int
	for _, r := range recsJ {
		switch r.Type {
		case RecTillsyn:
			nT++
			var x tillsyn.Record
			if err := json.Unmarshal(r.Body, &x); err != nil || x.Resident == "" {
				t.Errorf("journaled record %s: %v", r.Body, err)
			}
		case RecVisit:
			nV++
		}
	}
	if nT != 4 || nV != 1 {
		t.Errorf("journal holds %d supervision records and %d visits, want 4 and 1", nT, nV)
	}
}

// After a restart mid-night the journaled look-ins are not made again and
// the view shows them; a look-in whose time passed while the hub was down
// is "cannot tell" (late), never judged on later sensor state.
func TestHubTillsynRestart(t *testing.T) {
	dir := t.TempDir()
	c := newClock(time.Date(2026, 11, 23, 22, 59, 0, 0, stockholm))
	h := openTillsynHub(t, dir, c)
	h.HandleHeartbeat("s", "gw", nil)
	for i := 0; i < 40; i++ { // to 23:02
		h.HandleEvent("s", "gw", evPayload(fmt.Sprintf("x%d", i), "bed-a", "0012", "occupied", "", c.Now()))
		h.HandleEvent("s", "gw", evPayload(fmt.Sprintf("y%d", i), "door-a", "0014", "closed", "", c.Now()))
		h.Tick()
		c.Add(5 * time.Second)
	}
	if n := len(h.TillsynRecords()); n != 1 {
		t.Fatalf("%d records before restart", n)
	}
	// The hub is down from 23:02 to 02:30.
	c.Add(3*time.Hour + 28*time.Minute)
	h2 := openTillsynHub(t, dir, c)
	h2.Tick()
	recs := h2.TillsynRecords()
	if len(recs) != 3 {
		t.Fatalf("%d records after restart, want 3: %+v", len(recs), recs)
	}
	byKey := map[string]tillsyn.Record{}
	for _, r := range recs {
		byKey[r.Resident+" "+r.Wall] = r
	}
	if r := byKey["r-a 23:00"]; r.Outcome != tillsyn.AllRight {
		t.Errorf("23:00 after restart: %+v", r)
	}
	for _, k := range []string{"r-a 02:00", "r-b 02:00"} {
		if r := byKey[k]; r.Outcome != tillsyn.CannotTell || r.Cause != tillsyn.CauseLate || r.VisitBy.IsZero() {
			t.Errorf("%s: %s %s", k, r.Outcome, r.Cause)
		}
	}
	h2.Tick()
	if n := len(h2.TillsynRecords()); n != 3 {
		t.Errorf("%d records after a second tick", n)
	}
}

// A visit the journal cannot take is still kept for the round view, and
// not silently: it is counted and raised as hub_integrity.
func TestHubTillsynJournalFailureIsRaised(t *testing.T) {
	dir := t.TempDir()
	c := newClock(time.Date(2026, 11, 24, 2, 30, 0, 0, stockholm))
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Config: loadConfig(t, tillsynHubYAML), Journal: j, Replay: replay, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if _, err := h.RecordVisit("s", "r-b", "natt2", c.Now(), ""); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range h.Alarms() {
		if a.Rule == "hub_integrity" && a.Open() && strings.Contains(a.Note, "supervision records not journaled") {
			found = true
		}
	}
	if !found {
		t.Errorf("no hub_integrity alarm for the lost visit: %s", mustJSON(t, h.Alarms()))
	}
	h.ts.mu.Lock()
	n := len(h.ts.visits)
	h.ts.mu.Unlock()
	if n != 1 {
		t.Errorf("visit not kept in memory: %d", n)
	}
}

// A reload that moves a look-in drops the old one still queued and makes
// the new one; look-ins already recorded stay.
func TestHubTillsynReloadMovesLookIn(t *testing.T) {
	c := newClock(time.Date(2026, 11, 23, 23, 30, 0, 0, stockholm))
	h := openTillsynHub(t, t.TempDir(), c)
	h.Tick() // schedules the night: r-a 23:00 (late), 02:00, 05:00; r-b 02:00
	moved := strings.Replace(tillsynHubYAML, `times: ["23:00", "02:00", "05:00"]`, `times: ["23:00", "01:30", "05:00"]`, 1)
	moved = strings.Replace(moved, `replaces: ["23:00", "02:00", "05:00"]`, `replaces: ["23:00", "01:30", "05:00"]`, 1)
	h.Reload(loadConfig(t, moved))
	c.Add(3 * time.Hour) // 02:30
	h.Tick()
	var walls []string
	for _, r := range h.TillsynRecords() {
		if r.Resident == "r-a" {
			walls = append(walls, r.Wall)
		}
	}
	if strings.Join(walls, ",") != "23:00,01:30" {
		t.Errorf("r-a's look-ins after the reload: %v, want 23:00 (before it) and 01:30, not 02:00", walls)
	}
}

// A requested visit recorded before its deadline is not escalated; one
// that is not, is (once).
func TestHubTillsynVisitDeadline(t *testing.T) {
	for _, visit := range []bool{true, false} {
		c := newClock(time.Date(2026, 11, 24, 1, 0, 0, 0, stockholm))
		h := openTillsynHub(t, t.TempDir(), c)
		for i := 0; i < 2*3600/5; i++ { // 01:00 → 03:00; no sensor ever heard
			h.HandleHeartbeat("s", "gw", nil)
			if visit && c.Now().Equal(time.Date(2026, 11, 24, 2, 20, 0, 0, stockholm)) {
				if _, err := h.RecordVisit("s", "r-b", "natt2", c.Now(), ""); err != nil {
					t.Fatal(err)
				}
			}
			h.Tick()
			c.Add(5 * time.Second)
		}
		var rb []*alarm.Alarm
		for _, a := range h.Alarms() {
			if a.Rule == "tillsyn" && a.Resident == "r-b" {
				rb = append(rb, a)
			}
		}
		var rec tillsyn.Record
		for _, r := range h.TillsynRecords() {
			if r.Resident == "r-b" {
				rec = r
			}
		}
		if rec.Outcome != tillsyn.CannotTell || rec.Cause != tillsyn.CauseNotFitted || !rec.VisitBy.Equal(time.Date(2026, 11, 24, 2, 30, 0, 0, stockholm)) {
			t.Fatalf("r-b's look-in %+v", rec)
		}
		if visit && len(rb) != 0 {
			t.Errorf("visit made in time, yet %d tillsyn alarms", len(rb))
		}
		if !visit && (len(rb) != 1 || rb[0].Repeats() != 0) {
			t.Errorf("no visit: %d tillsyn alarms %s", len(rb), mustJSON(t, rb))
		}
	}
}
