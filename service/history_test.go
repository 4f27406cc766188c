package service_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/store"
)

func getAlarmJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// journalHistory is what the journal holds for alarm id, as its history
// lists it: every step but the repeats past alarm.MaxRepeatHistory. It
// reads a copy, so the running hub's journal is not touched.
func journalHistory(t *testing.T, dataDir, id string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	cp := t.TempDir()
	if err := os.WriteFile(filepath.Join(cp, store.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	j, ts, err := store.Open(cp, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	var seqs []uint64
	repeats := 0
	for _, tr := range ts {
		if tr.Alarm != id {
			continue
		}
		if tr.Action == alarm.ActRepeat {
			if repeats++; repeats > alarm.MaxRepeatHistory {
				continue
			}
		}
		seqs = append(seqs, tr.Seq)
	}
	return seqs
}

func seqsOf(h []alarm.Transition) []uint64 {
	var out []uint64
	for _, t := range h {
		out = append(out, t.Seq)
	}
	return out
}

// An alarm with more steps than an open alarm keeps in memory
// (alarm.MemHistory): the list and the stream carry its last steps and say
// how many are left out; GET of the alarm itself lists every step, read
// back from the journal, while the hub runs and after a restart.
func TestIntegrationLongHistoryServedWholeLiveAndAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	routing := `routing:
  receivers:
    - {name: natt, users: [natt1]}
  route: {receiver: natt}
`
	dir := t.TempDir()
	s := startStaffHub(t, dir, routing)
	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "history-gw")
	if err != nil {
		t.Fatal(err)
	}
	const presses = 1 + alarm.MaxRepeatHistory + 2 // a raise, then more repeats than the history lists
	for i := range presses {
		if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent(fmt.Sprintf("h-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var id string
	for i := 0; i < 300 && id == ""; i++ {
		for _, a := range s.Hub.Alarms() {
			if a.Repeats() == presses-1 && slices.ContainsFunc(a.History(), func(h alarm.Transition) bool { return h.Action == alarm.ActNotify }) {
				id = a.ID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if id == "" {
		t.Fatal("no alarm with every press and its notify step")
	}
	want := journalHistory(t, dir, id)
	if len(want) <= alarm.MemHistory {
		t.Fatalf("journal holds %d steps for %s; the test needs more than %d", len(want), id, alarm.MemHistory)
	}

	base := "http://" + s.HTTPAddr()
	natt1, _ := appSession(t, base, "natt1", "natt1-secret")
	var list struct {
		Alarms []alarm.Alarm `json:"alarms"`
	}
	getAlarmJSON(t, natt1, base+"/api/v1/alarms", &list)
	i := slices.IndexFunc(list.Alarms, func(a alarm.Alarm) bool { return a.ID == id })
	if i < 0 {
		t.Fatalf("%s not in the list", id)
	}
	la := list.Alarms[i]
	if len(la.History()) > alarm.MemHistory || la.HistoryOmitted()+len(la.History()) != len(want) {
		t.Errorf("list: %d steps listed, %d omitted; the journal holds %d", len(la.History()), la.HistoryOmitted(), len(want))
	}
	// The last steps, and the alert step (who was told) kept from earlier.
	got := seqsOf(la.History())
	if !slices.IsSorted(got) || len(got) == 0 || got[len(got)-1] != want[len(want)-1] ||
		!slices.ContainsFunc(la.History(), func(h alarm.Transition) bool { return h.Action == alarm.ActNotify && slices.Contains(h.To, "natt1") }) {
		t.Errorf("list: steps %v (%+v), want the last of %v with the notify step", got, la.History(), want)
	}
	for _, q := range got {
		if !slices.Contains(want, q) {
			t.Errorf("list: step %d is not this alarm's", q)
		}
	}

	var one alarm.Alarm
	getAlarmJSON(t, natt1, base+"/api/v1/alarms/"+id, &one)
	if got := seqsOf(one.History()); !slices.Equal(got, want) || one.HistoryOmitted() != 0 {
		t.Errorf("live: GET %s lists steps %v (omitted %d), want %v", id, got, one.HistoryOmitted(), want)
	}
	if len(one.History()) > 0 && (one.History()[0].Action != alarm.ActRaise || one.History()[0].By != "rule:call_button") {
		t.Errorf("live: first step %+v, want the raise", one.History()[0])
	}

	s.Close()
	s2 := startStaffHub(t, dir, routing)
	base = "http://" + s2.HTTPAddr()
	natt1, _ = appSession(t, base, "natt1", "natt1-secret")
	var again alarm.Alarm
	getAlarmJSON(t, natt1, base+"/api/v1/alarms/"+id, &again)
	if got := seqsOf(again.History()); !slices.Equal(got, want) {
		t.Errorf("after restart: GET %s lists steps %v, want %v", id, got, want)
	}
	for k := range again.History() {
		if k < len(one.History()) && (again.History()[k].Action != one.History()[k].Action || !again.History()[k].At.Equal(one.History()[k].At) ||
			again.History()[k].EventID != one.History()[k].EventID || slices.Compare(again.History()[k].To, one.History()[k].To) != 0) {
			t.Errorf("after restart step %d = %+v, before %+v", k, again.History()[k], one.History()[k])
		}
	}
}

// /metrics carries the runtime's heap and GC series (internal/rtmetrics).
func TestIntegrationMetricsHaveRuntimeSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	s := startStaffHub(t, t.TempDir(), "")
	runtime.GC()
	url := "http://" + s.HTTPAddr() + "/metrics"
	for _, name := range []string{"vaka_go_heap_live_bytes", "vaka_go_memory_total_bytes", "vaka_go_gc_cycles_total",
		"vaka_go_gc_pause_seconds_count", "vaka_go_gc_pause_p99_seconds", "vaka_go_goroutines"} {
		if v := testenv.Metric(t, url, name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if v := testenv.Metric(t, url, `vaka_go_gc_pause_seconds_bucket{le="+Inf"}`); v < 1 {
		t.Errorf("pause histogram +Inf bucket %v", v)
	}
	testenv.Metric(t, url, "vaka_go_gc_assist_cpu_seconds_total")
	testenv.Metric(t, url, "vaka_go_memory_limit_bytes")
}
