package hub

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// alarmID gives the ids fmt.Sprintf("A%06d") gave, which the journal and
// staff already hold.
func TestAlarmIDMatchesSprintf(t *testing.T) {
	for _, n := range []uint64{0, 1, 9, 10, 99_999, 999_999, 1_000_000, 12_345_678, 1<<64 - 1} {
		if got, want := alarmID(n), fmt.Sprintf("A%06d", n); got != want {
			t.Errorf("alarmID(%d) = %q, want %q", n, got, want)
		}
	}
}

// ruleBy is "rule:" + rule, also past its cache's bound.
func TestRuleBy(t *testing.T) {
	for i := range ruleByMax + 10 {
		r := fmt.Sprintf("r%d", i)
		if got := ruleBy(r); got != "rule:"+r {
			t.Fatalf("ruleBy(%q) = %q", r, got)
		}
	}
	if got := ruleBy("call_button"); got != "rule:call_button" {
		t.Fatalf("ruleBy = %q", got)
	}
}

// subjectOf, written out to avoid an allocation, is what a.Subject() is,
// field for field (every field of the subject set to something).
func TestSubjectOfMatchesSubject(t *testing.T) {
	a := alarm.New("A000007", time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC))
	a.Kind, a.Rule, a.Priority = alarm.KindCall, "call_button", 1
	a.Site, a.Gateway, a.Device, a.DeviceType = "s", "g", "d", event.DeviceType("0003")
	a.Status, a.Unit, a.Room, a.Resident = event.StatusCode("0010"), "u", "12", "r-1"
	want := *a.Subject()
	v := reflect.ValueOf(want)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("test alarm leaves Subject.%s empty", v.Type().Field(i).Name)
		}
	}
	if got := subjectOf(a); got != want {
		t.Fatalf("subjectOf = %+v, want %+v", got, want)
	}
}

// eventKeyLocked is the event's key, for the event being applied and for
// any other.
func TestEventKeyLocked(t *testing.T) {
	h := &Hub{}
	ev := &event.Event{Site: "s", Gateway: "g", ID: "e1"}
	other := &event.Event{Site: "s", Gateway: "g", ID: "e2"}
	h.ln.ev, h.ln.evKey = ev, ev.Key()
	if got := h.eventKeyLocked(ev); got != "s/g/e1" {
		t.Fatalf("key = %q", got)
	}
	if got := h.eventKeyLocked(other); got != "s/g/e2" {
		t.Fatalf("other key = %q", got)
	}
}
