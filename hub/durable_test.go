package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/store"
)

// On a full disk the hub answers busy instead of OK, still shows the alarm,
// holds its transitions, says so in Healthy and a hub_integrity alarm, and
// refuses to call a resend kept while it is not. When space returns it
// writes what it held in order, acknowledges the resend without evaluating
// it twice, and a reopened journal has everything.
func TestFullJournalHoldsAndRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	testenv.Tmpfs(t, dir, 256<<10)
	c := newClock(dayTime)
	h, j := openHub(t, dir, c)

	if r := h.HandleEvent("s", "gw", press("p-1", c.Now())); r.Code != event.ReplyOK {
		t.Fatalf("with room: %+v", r)
	}
	filler := filepath.Join(dir, "filler")
	testenv.FillDisk(t, filler)

	var busy event.Reply
	for i := range 200 { // the journal's last page may take a few more records
		c.Add(1)
		r := h.HandleEvent("s", "gw", evPayload(fmt.Sprintf("f-%d", i), "fall-a", "0005", "", "0009", c.Now()))
		if r.Code != event.ReplyOK {
			busy = r
			break
		}
	}
	if busy.Code != event.ReplyBusy || busy.ID == "" {
		t.Fatalf("on a full disk: %+v, want busy (snu 6) naming the event", busy)
	}
	if h.Healthy() == nil {
		t.Error("Healthy() = nil while transitions are held")
	}
	if d := h.Degraded(); len(d) == 0 {
		t.Error("Degraded() empty: no hub_integrity alarm for the journal")
	}
	var fall, integrity *alarm.Alarm
	for _, a := range h.Alarms() {
		switch a.Rule {
		case rules.RuleHubIntegrity:
			integrity = a
		case rules.RuleFall:
			fall = a
		}
	}
	if fall == nil || integrity == nil {
		t.Fatalf("held alarm shown %v, hub_integrity raised %v: want both", fall != nil, integrity != nil)
	}
	// The gateway resends while the disk is still full: still busy.
	if r := h.HandleEvent("s", "gw", evPayload(busy.ID, "fall-a", "0005", "", "0009", c.Now())); r.Code != event.ReplyBusy {
		t.Fatalf("resend on a full disk: %+v, want busy", r)
	}
	// Staff may still act; the step is held with the rest.
	if _, err := h.Act(fall.ID, alarm.ActAccept, "natt1", "", ""); err != nil {
		t.Fatalf("accept on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if r := h.HandleEvent("s", "gw", evPayload(busy.ID, "fall-a", "0005", "", "0009", c.Now())); r.Code != event.ReplyOK {
		t.Fatalf("resend after space returned: %+v, want OK", r)
	}
	if h.Healthy() != nil {
		t.Errorf("Healthy() = %v after recovery", h.Healthy())
	}
	got, _ := h.Alarm(fall.ID)
	if got.Repeats() != fall.Repeats() || got.State != alarm.Accepted {
		t.Errorf("after recovery: repeats %d (was %d) state %s, want the resend not evaluated twice and accepted", got.Repeats(), fall.Repeats(), got.State)
	}
	in, _ := h.Alarm(integrity.ID)
	if in.RestoredAt() == nil || !in.Open() {
		t.Errorf("hub_integrity after recovery: restored %v open %v, want restored and still open for someone to resolve", in.RestoredAt(), in.Open())
	}

	// Everything held reached the journal, in order, undamaged.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	h2, _ := openHub(t, dir, c)
	re, ok := h2.Alarm(fall.ID)
	if !ok || re.State != alarm.Accepted || re.Repeats() != fall.Repeats() {
		t.Fatalf("after reopen: state %s repeats %d (want %d), want the held fall alarm, accepted", re.State, re.Repeats(), fall.Repeats())
	}
	if _, ok := h2.Alarm(integrity.ID); !ok {
		t.Error("after reopen: the hub_integrity alarm was not kept")
	}
}

// A raise the journal cannot take is held as the alarm was raised: when
// the disk takes it, after staff accepted the alarm meanwhile, its record
// still says raised (the raise record carries the alarm itself, so holding
// it must copy it).
func TestHeldRaiseJournaledAsRaised(t *testing.T) {
	var y strings.Builder
	y.WriteString(strings.Replace(stormYAML(0), "          - {id: btn-a, type: personal_trigger, resident: r-a, unit: u, room: \"12\"}\n", "", 1))
	for i := range 400 {
		fmt.Fprintf(&y, "          - {id: b%d, type: personal_trigger, unit: u, room: r%d}\n", i, i)
	}
	cfg := loadConfig(t, y.String())
	dir := filepath.Join(t.TempDir(), "data")
	testenv.Tmpfs(t, dir, 256<<10)
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClock(dayTime)
	h, err := New(Options{Config: cfg, Journal: j, Replay: replay, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	testenv.FillDisk(t, filepath.Join(dir, "filler"))
	// Each press raises a new alarm (its own button): the write the disk
	// refuses first is a raise.
	var held string
	for i := range 400 {
		c.Add(1)
		payload := fmt.Appendf(nil, `{"v":1,"id":"p-%d","device":"b%d","dty":"0003","state":"pressed","ts":%q}`, i, i, c.Now().UTC().Format(time.RFC3339))
		if r := h.HandleEvent("s", "gw", payload); r.Code != event.ReplyOK {
			for _, a := range h.Alarms() {
				if a.Device == fmt.Sprintf("b%d", i) {
					held = a.ID
				}
			}
			break
		}
	}
	if held == "" {
		t.Fatal("no raise was refused on a full disk")
	}
	if _, err := h.Act(held, alarm.ActAccept, "natt2", "", ""); err != nil {
		t.Fatalf("accept on a full disk: %v", err)
	}
	// Another alarm's step while the first is held: the held accept keeps
	// its own alarm's subject (the hub reuses the space it builds it in).
	var heldDev string
	for _, a := range h.Alarms() {
		if a.ID == held {
			heldDev = a.Device
		}
	}
	for _, a := range h.Alarms() {
		if a.ID != held && a.Open() {
			if _, err := h.Act(a.ID, alarm.ActAccept, "natt1", "", ""); err != nil {
				t.Fatalf("accept on a full disk: %v", err)
			}
			break
		}
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2, ts, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	found := false
	for _, tr := range ts {
		if tr.Alarm == held && tr.Action == alarm.ActAccept && (tr.Subj == nil || tr.Subj.Device != heldDev) {
			t.Errorf("held accept journaled with subject %+v, want its alarm's (device %s)", tr.Subj, heldDev)
		}
		if tr.Alarm == held && tr.Action == alarm.ActRaise {
			found = true
			if tr.Raise == nil || tr.Raise.State != alarm.Raised || tr.Raise.AcceptedBy() != "" {
				t.Errorf("held raise journaled as %+v, want the alarm as raised", tr.Raise)
			}
		}
	}
	if !found {
		t.Errorf("raise of %s not in the journal", held)
	}
}
