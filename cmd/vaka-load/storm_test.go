package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The storm end to end at a tiny scale through the real hub over MQTT:
// a first wave of buttons falls silent, then the whole fleet; each raises
// its device_silent alarm, presses on working buttons arrive, and the
// result carries the storm's figures (cards, notifications, heap, GC,
// cuts) and a report that judges the goals. The 250,000-button run is
// `make bench-storm`.
func TestIntegrationStormTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub and runs for about 20 s")
	}
	o := supOptions{Storm: true, Notify: true, Devices: 300, Gateways: 4, Beat: 2 * time.Second, Grace: 8 * time.Second,
		Silent: 100, StopAt: time.Second, Spread: time.Second, AllAt: 2 * time.Second, PressRate: 10}
	o.PressButtons = o.presses() // one per press, as the command's default
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	res, err := superviseRun(o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.stormSummary())
	s := res.Storm
	if s == nil {
		t.Fatal("no storm figures")
	}
	// Every silent button's alarm is raised and reaches staff inside its
	// group (listed on the card, or among the members the card opens).
	if res.FalseAlarms != 0 || res.DetectEarly != 0 || res.Missed != 0 {
		t.Errorf("supervision: detected %d of %d, missed %d, false %d, early %d", res.Detected, o.Devices, res.Missed, res.FalseAlarms, res.DetectEarly)
	}
	if res.Presses == 0 || res.PressesLost != 0 || res.PubErrors != 0 {
		t.Errorf("presses %d, lost %d, publish errors %d", res.Presses, res.PressesLost, res.PubErrors)
	}
	// Every press records the generator's lateness and the hub's part,
	// split at the alarm's raised_at; the fleet's writes record theirs.
	arrived := res.Presses - res.PressesLost
	if res.PressSendLag.N != res.Presses || res.PressHub.N != arrived || res.PressToRaise.N != arrived || res.PressRaiseToScreen.N != arrived {
		t.Errorf("press timings: send lag %d, hub %d, to raise %d, to screen %d, want %d/%d", res.PressSendLag.N, res.PressHub.N,
			res.PressToRaise.N, res.PressRaiseToScreen.N, res.Presses, arrived)
	}
	if res.PressHub.Max > res.PressLatency.Max+0.001 || res.PressSendLag.P50 < 0 {
		t.Errorf("the hub's part (max %v ms) exceeds the whole (max %v ms), or send lag %v ms negative", res.PressHub.Max, res.PressLatency.Max, res.PressSendLag.P50)
	}
	if res.RadioLag.N == 0 || res.Beats == 0 || res.WriteEveryMs != 200 {
		t.Errorf("fleet writes %d, radio tests %d, write interval %v ms (want beat/10 = 200)", res.RadioLag.N, res.Beats, res.WriteEveryMs)
	}
	if res.GenValid != (res.GenNote == "") {
		t.Errorf("generator valid %v but note %q", res.GenValid, res.GenNote)
	}
	// The silent buttons are one group card per gateway (the default
	// group_by site and gateway); each pressed button its own care alarm.
	care := min(res.Presses, o.PressButtons)
	if s.CareCards != care || s.Cards > o.Gateways+care || s.Cards < care+1 {
		t.Errorf("cards %d (care %d), want %d care cards and at most %d group cards", s.Cards, s.CareCards, care, o.Gateways)
	}
	if s.Notifications < float64(care) {
		t.Errorf("%v notifications, want at least one per care alarm (%d)", s.Notifications, care)
	}
	if s.StreamCuts != 0 || res.StreamCut != "" {
		t.Errorf("stream cut: %v (%s)", s.StreamCuts, res.StreamCut)
	}
	if s.RaisedSilent != float64(o.Devices) {
		t.Errorf("hub raised %v device_silent alarms, want %d", s.RaisedSilent, o.Devices)
	}
	if s.HeapPeakMiB <= 0 || s.GCCycles <= 0 || s.OpenAlarms < float64(o.Devices) {
		t.Errorf("heap peak %v MiB, GC cycles %v, open alarms %v", s.HeapPeakMiB, s.GCCycles, s.OpenAlarms)
	}
	if len(s.Goals) < 4 {
		t.Fatalf("goals %+v", s.Goals)
	}
	// The report is generated from the result file.
	dir := t.TempDir()
	b, _ := json.Marshal(res)
	path := filepath.Join(dir, "storm.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := writeStormReport(&md, []string{path}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Alarm storm", "press p99 ≤ 50 ms", "0 stream cuts", "heap ≤ 1 GiB", "notifications"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}
