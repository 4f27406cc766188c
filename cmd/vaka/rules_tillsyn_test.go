package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const tillsynRulesYAML = `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    residents:
      - id: r-a
        consent: {rules: [tillsyn], recorded_by: anna, recorded_at: "2026-11-01"}
        plan:
          tillsyn:
            times: ["23:00", "02:00", "05:00"]
            tolerance: 10m
            all_right: {in_bed: true, door_closed: true}
            replaces: ["02:00"]
    gateways:
      - id: gw
        devices:
          - {id: bed-a, type: bed_monitor, resident: r-a}
          - {id: door-a, type: door_sensor, resident: r-a}
`

// vaka rules explain shows a resident's look-ins of the night (with the
// March night's 02:00 moved to 03:00); vaka rules replay re-runs a night's
// event log with the plan, and with another plan from the flags.
func TestRulesExplainAndReplayTillsyn(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfgPath, []byte(tillsynRulesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := runRules([]string{"explain", "--config", cfgPath, "--site", "s", "--resident", "r-a", "--at", "2026-03-29T00:30:00+01:00"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"night look-ins, night of 2026-03-28", "23:00", "2026-03-29 03:00 CEST", "02:00 does not exist tonight",
		"in bed", "door closed", "bed-a (bed)", "tolerance 10m0s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain lacks %q:\n%s", want, out.String())
		}
	}

	// A night: in bed but for 01:55–02:12.
	loc, _ := time.LoadLocation("Europe/Stockholm")
	var log strings.Builder
	n := 0
	ev := func(at time.Time, dev, dty, state string) {
		n++
		fmt.Fprintf(&log, `{"v":1,"id":"e%d","site":"s","gateway":"gw","device":%q,"dty":%q,"state":%q,"ts":%q}`+"\n",
			n, dev, dty, state, at.UTC().Format(time.RFC3339))
	}
	start := time.Date(2026, 11, 23, 22, 30, 0, 0, loc)
	for at := start; at.Before(start.Add(7 * time.Hour)); at = at.Add(20 * time.Minute) {
		ev(at, "door-a", "0014", "closed")
		if h := at.In(loc); !(h.Hour() == 2 && h.Minute() < 12) && !(h.Hour() == 1 && h.Minute() >= 55) {
			ev(at, "bed-a", "0012", "occupied")
		}
	}
	ev(time.Date(2026, 11, 24, 1, 55, 0, 0, loc), "bed-a", "0012", "empty")
	ev(time.Date(2026, 11, 24, 2, 12, 0, 0, loc), "bed-a", "0012", "occupied")
	evPath := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(evPath, []byte(log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runRules([]string{"replay", "--config", cfgPath, "--events", evPath}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"night look-ins (3)", "2026-11-24 02:00  s/r-a     not_all_right  02:10:00", "2026-11-24 05:00  s/r-a     all_right"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("replay lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := runRules([]string{"replay", "--config", cfgPath, "--events", evPath, "--resident", "r-a", "--tillsyn-times", "23:00,01:30,05:00"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2026-11-24 01:30  s/r-a     all_right") || strings.Contains(out.String(), "not_all_right") {
		t.Errorf("replay at 01:30:\n%s", out.String())
	}
	if err := runRules([]string{"replay", "--config", cfgPath, "--events", evPath, "--tillsyn-times", "12:00"}, &out); err == nil ||
		!strings.Contains(err.Error(), "outside the night window") {
		t.Errorf("a changed plan outside the night: %v", err)
	}
}
