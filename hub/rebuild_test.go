package hub

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/store"
)

// summary is what must survive of an alarm: who, where, what, its state.
func summary(a *alarm.Alarm) string {
	return fmt.Sprintf("%s %s %s %s/%s/%s room %s res %s raised %s state %s by %s/%s outcome %s repeats %d",
		a.ID, a.Kind, a.Rule, a.Site, a.Gateway, a.Device, a.Room, a.Resident, a.RaisedAt.UTC().Format(time.RFC3339),
		a.State, a.AcceptedBy(), a.ResolvedBy(), a.Outcome(), a.Repeats())
}

func summaries(h *Hub) map[string]string {
	out := map[string]string{}
	for _, a := range h.Alarms() {
		if a.Rule != rules.RuleHubIntegrity {
			out[a.ID] = summary(a)
		}
	}
	return out
}

func integrityAlarm(h *Hub) *alarm.Alarm {
	for _, a := range h.Alarms() {
		if a.Rule == rules.RuleHubIntegrity && a.Open() {
			return a
		}
	}
	return nil
}

// Damage at every byte of a raise record in the middle of the journal:
// after the restart every alarm is there, the damaged one rebuilt from its
// later records and marked so, and hub_integrity is raised once, naming
// it. A second restart finds the same damage and raises nothing new.
func TestJournalDamageAtEveryByteOfARaiseRebuildsEveryAlarm(t *testing.T) {
	base := t.TempDir()
	c := newClock(dayTime)
	h, j := openHub(t, base, c)
	h.HandleEvent("s", "gw", press("e1", dayTime)) // A000001: accepted
	c.Add(time.Second)
	h.HandleEvent("s", "gw", evPayload("e2", "fall-a", "0005", "", "0009", c.Now())) // A000002: resolved
	c.Add(time.Second)
	h.HandleEvent("s", "gw", press("e3", c.Now())) // repeat of A000001
	c.Add(time.Minute)
	mustAct(t, h, "A000001", alarm.ActAccept, "anna", "")
	mustAct(t, h, "A000002", alarm.ActAccept, "bo", "")
	mustAct(t, h, "A000002", alarm.ActPresence, "bo", "")
	mustAct(t, h, "A000002", alarm.ActResolve, "bo", alarm.OutcomeRealNeed)
	h.HandleStatus("s", "gw", []byte(`{"state":"offline"}`)) // A000003: open
	want := summaries(h)
	if len(want) != 3 {
		t.Fatalf("%d alarms before the damage, want 3", len(want))
	}
	j.Close()
	full, err := os.ReadFile(filepath.Join(base, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(full, []byte("\n"))
	victim := -1 // the raise of A000002, in the middle of the file
	for i, l := range lines {
		if bytes.Contains(l, []byte(`"alarm":"A000002","action":"raise"`)) {
			victim = i
		}
	}
	if victim < 1 || victim >= len(lines)-2 {
		t.Fatalf("raise of A000002 at line %d of %d", victim, len(lines))
	}
	from := len(bytes.Join(lines[:victim], nil))
	// Every byte takes ~18 s; -short (the fast loop) damages every 13th,
	// the first and the last byte of the record, and make test every one.
	step, end := 1, from+len(lines[victim])
	if testing.Short() {
		step = 13
	}
	for i := from; i < end; i += step {
		if step > 1 && i+step >= end {
			i = end - 1 // the record's last byte, its newline
		}
		dir := t.TempDir()
		b := bytes.Clone(full)
		b[i] ^= 0x01 // (0x20 would only change the case of a hex digit: no damage)
		if err := os.WriteFile(filepath.Join(dir, store.FileName), b, 0o640); err != nil {
			t.Fatal(err)
		}
		h2, j2 := openHub(t, dir, c)
		got := summaries(h2)
		for id, w := range want {
			if got[id] != w {
				t.Fatalf("byte %d: %s after the damage:\n got  %s\n want %s", i, id, got[id], w)
			}
		}
		if a, _ := h2.Alarm("A000002"); !strings.Contains(a.Note, "raise record lost") {
			t.Fatalf("byte %d: rebuilt alarm not marked: note %q", i, a.Note)
		}
		ia := integrityAlarm(h2)
		if ia == nil || !strings.Contains(ia.Note, "A000002") || !strings.Contains(ia.Note, fmt.Sprintf("line %d", victim+1)) {
			t.Fatalf("byte %d: hub_integrity %+v", i, ia)
		}
		j2.Close()
		h3, j3 := openHub(t, dir, c)
		if again := integrityAlarm(h3); again == nil || again.ID != ia.ID || again.Repeats() != 0 {
			t.Fatalf("byte %d: second start raised the old damage again: %+v", i, again)
		}
		j3.Close()
	}
}

// A torn tail cut at start is a record written and gone: it raises
// hub_integrity too.
func TestTornTailRaisesIntegrity(t *testing.T) {
	dir := t.TempDir()
	c := newClock(dayTime)
	h, j := openHub(t, dir, c)
	h.HandleEvent("s", "gw", press("e1", dayTime))
	j.Close()
	f, err := os.OpenFile(filepath.Join(dir, store.FileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`0badf00d {"seq":2,"alarm":"A000001","act`)
	f.Close()
	h2, _ := openHub(t, dir, c)
	ia := integrityAlarm(h2)
	if ia == nil || !strings.Contains(ia.Note, "torn") {
		t.Fatalf("hub_integrity after a torn tail: %+v", ia)
	}
	if _, ok := h2.Alarm("A000001"); !ok {
		t.Fatal("alarm before the torn tail lost")
	}
}

// A clean journal raises nothing.
func TestCleanJournalRaisesNoIntegrity(t *testing.T) {
	dir := t.TempDir()
	c := newClock(dayTime)
	h, j := openHub(t, dir, c)
	h.HandleEvent("s", "gw", press("e1", dayTime))
	j.Close()
	h2, _ := openHub(t, dir, c)
	if ia := integrityAlarm(h2); ia != nil {
		t.Fatalf("hub_integrity on a clean journal: %s", ia.Note)
	}
}

// A lost accept record does not leave a handled alarm open: its presence
// and resolve still apply, the accept inferred from the same person.
func TestLostAcceptIsInferredFromTheNextStep(t *testing.T) {
	dir := t.TempDir()
	c := newClock(dayTime)
	h, j := openHub(t, dir, c)
	h.HandleEvent("s", "gw", press("e1", dayTime))
	mustAct(t, h, "A000001", alarm.ActAccept, "bo", "")
	mustAct(t, h, "A000001", alarm.ActPresence, "bo", "")
	mustAct(t, h, "A000001", alarm.ActResolve, "bo", alarm.OutcomeFalse)
	want := summary(mustAlarm(t, h, "A000001"))
	j.Close()
	path := filepath.Join(dir, store.FileName)
	b, _ := os.ReadFile(path)
	i := bytes.Index(b, []byte(`"action":"accept"`))
	b[i+3] ^= 0x01
	os.WriteFile(path, b, 0o640)
	h2, _ := openHub(t, dir, c)
	if got := summary(mustAlarm(t, h2, "A000001")); got != want {
		t.Fatalf("after a lost accept:\n got  %s\n want %s", got, want)
	}
	if integrityAlarm(h2) == nil {
		t.Fatal("no hub_integrity for the lost accept")
	}
}

func mustAlarm(t *testing.T, h *Hub, id string) *alarm.Alarm {
	t.Helper()
	a, ok := h.Alarm(id)
	if !ok {
		t.Fatalf("alarm %s missing", id)
	}
	return a
}

// The loss counters on /metrics survive a restart.
func TestLossMetricsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	c := newClock(dayTime)
	h, j := openHub(t, dir, c)
	h.HandleEvent("s", "gw", press("e1", dayTime))
	j.Close()
	f, _ := os.OpenFile(filepath.Join(dir, store.FileName), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`0badf00d {"seq":2`)
	f.Close()
	for start := 1; start <= 2; start++ {
		j, replay, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		if _, err := New(Options{Config: loadConfig(t, hubYAML), Journal: j, Replay: replay, Now: c.Now, Registry: reg}); err != nil {
			t.Fatal(err)
		}
		if n := counter(t, reg, "vaka_store_torn_tails_total"); n != 1 {
			t.Fatalf("start %d: vaka_store_torn_tails_total %v, want 1", start, n)
		}
		if n := counter(t, reg, "vaka_store_corrupt_records_total"); n != 1 {
			t.Fatalf("start %d: vaka_store_corrupt_records_total %v, want 1", start, n)
		}
		j.Close()
	}
}
