package alarm

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/vaka-care/vaka/event"
)

// oldJSON is what json.Marshal gave for each of extraCases' alarms with
// alarm.Alarm's field list as it was before the seldom set fields moved
// behind the extra (issue 20), recorded from that struct, to prove the
// JSON did not change. It stands apart from Wire on purpose: a test that
// compared Alarm's JSON with Wire's would pass whatever Wire became.
var oldJSON = map[string]string{
	"no extra":    `{"id":"A1","kind":"call","rule":"call","priority":1,"site":"s","gateway":"gw","device":"b1","dty":"0003","unit":"u","room":"12","resident":"r1","event_id":"s/gw/e1","source_time":"2026-12-03T03:04:05.000000006+01:00","raised_at":"2026-12-03T03:04:05.000000006+01:00","state":"raised","note":"n","repeats":0,"deliveries":[{"user":"natt1","phone":"app:x","at":"2026-12-03T03:05:05.000000006+01:00","tier":0,"channel":"app"}],"updated_at":"2026-12-03T03:05:05.000000006+01:00"}`,
	"every extra": `{"id":"A1","kind":"call","rule":"call","priority":1,"site":"s","gateway":"gw","device":"b1","dty":"0003","unit":"u","room":"12","resident":"r1","resident_name":"Karin","event_id":"s/gw/e1","source_time":"2026-12-03T03:04:05.000000006+01:00","raised_at":"2026-12-03T03:04:05.000000006+01:00","state":"raised","accepted_by":"natt1","accepted_at":"2026-12-03T03:05:05.000000006+01:00","presence_at":"2026-12-03T03:05:05.000000006+01:00","resolved_by":"natt1","resolved_at":"2026-12-03T03:05:05.000000006+01:00","outcome":"real_need","note":"n","repeats":3,"last_repeat_at":"2026-12-03T03:05:05.000000006+01:00","restored_at":"2026-12-03T03:05:05.000000006+01:00","pos":{"lat":59.3,"lon":18.1},"track":[{"lat":59.2,"lon":18},{"lat":59.3,"lon":18.1}],"tier":2,"deliveries":[{"user":"natt1","phone":"app:x","at":"2026-12-03T03:05:05.000000006+01:00","tier":0,"channel":"app"}],"reminders":4,"updated_at":"2026-12-03T03:05:05.000000006+01:00","history":[{"seq":1,"alarm":"A1","action":"raise","at":"2026-12-03T03:04:05.000000006+01:00","by":"rule:call"}],"crd":"gsm:+4670","cha":"1","group":{"key":"k","by":{"site":"s"},"count":2,"members":[{"alarm":"T1","rule":"r","since":"2026-12-03T03:04:05.000000006+01:00"}]},"group_id":"G1","history_omitted":5}`,
}

// extraCases are an alarm with no seldom set field (no extra) and one
// with every one of them set (an extra), by the names of oldJSON.
func extraCases() map[string]*Alarm {
	at := time.Date(2026, 12, 3, 3, 4, 5, 6, time.FixedZone("CET", 3600))
	later := at.Add(time.Minute)
	pos := &event.Position{Lat: 59.3, Lon: 18.1}
	track := []event.Position{{Lat: 59.2, Lon: 18}, *pos}
	g := &Group{Key: "k", By: map[string]string{"site": "s"}, Count: 2, Members: []Member{{Alarm: "T1", Rule: "r", Since: at}}}
	hist := []Transition{{Seq: 1, Alarm: "A1", Action: ActRaise, At: at, By: "rule:call"}}
	dl := []Delivery{{User: "natt1", Phone: "app:x", At: later, Channel: ChannelApp}}
	plain := &Alarm{ID: "A1", Kind: KindCall, Rule: "call", Priority: 1, Site: "s", Gateway: "gw", Device: "b1",
		DeviceType: event.PersonalTrigger, Unit: "u", Room: "12", Resident: "r1", EventID: "s/gw/e1",
		SourceTime: at, RaisedAt: at, State: Raised, Note: "n", Deliveries: dl, UpdatedAt: later}
	full := *plain
	full.SetResidentName("Karin")
	full.SetAcceptedBy("natt1")
	full.SetAcceptedAt(&later)
	full.SetPresenceAt(&later)
	full.SetResolvedBy("natt1")
	full.SetResolvedAt(&later)
	full.SetOutcome(OutcomeRealNeed)
	full.SetRepeats(3)
	full.SetLastRepeatAt(&later)
	full.SetRestoredAt(&later)
	full.SetPosition(pos)
	full.SetTrack(track)
	full.SetTier(2)
	full.SetReminders(4)
	full.SetHistory(hist)
	full.SetCallerID("gsm:+4670")
	full.SetCallback("1")
	full.SetGroup(g)
	full.SetGroupID("G1")
	full.SetHistoryOmitted(5)
	return map[string]*Alarm{"no extra": plain, "every extra": &full}
}

// An alarm without any seldom set field has no extra (issue 20: 384
// bytes an open alarm); one with them has it, and both give the JSON the
// old struct gave (oldJSON), byte for byte, and read back equal, the extra nil or
// not as before.
func TestExtraJSONUnchanged(t *testing.T) {
	if n := unsafe.Sizeof(Alarm{}); n > 384 {
		t.Errorf("an alarm is %d bytes, want at most 384", n)
	}
	for name, a := range extraCases() {
		if (a.x == nil) != (name == "no extra") {
			t.Errorf("%s: extra %v", name, a.x)
		}
		got, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		want := oldJSON[name]
		if string(got) != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		if byValue, _ := json.Marshal(*a); string(byValue) != want {
			t.Errorf("%s: an Alarm value marshals as %s", name, byValue)
		}
		var back Alarm
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if again, _ := json.Marshal(&back); string(again) != want {
			t.Errorf("%s: read back and written again:\n got %s\nwant %s", name, again, want)
		}
		if (back.x == nil) != (a.x == nil) {
			t.Errorf("%s: read back with extra %v, want nil %v", name, back.x, a.x == nil)
		}
	}
}

// A copy made before a change (Snapshot, Clone, or a shallow copy as the
// notifier's lanes take) never sees it: an extra is never changed in
// place. A field set back to its zero drops the extra.
func TestExtraCopyOnWrite(t *testing.T) {
	at := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	a := New("A1", at)
	a.Own()
	if err := Apply(a, Transition{Alarm: "A1", Action: ActNotify, At: at, By: "notify", Receiver: "natt", To: []string{"natt1"}}); err != nil {
		t.Fatal(err)
	}
	if a.x != nil {
		t.Fatalf("a raised and notified alarm has an extra: %+v", a.x)
	}
	a.SetCallerID("gsm:+4670")
	shallow, snap, clone := *a, a.Snapshot(), a.Clone()
	if err := Apply(a, Transition{Alarm: "A1", Action: ActRepeat, At: at.Add(time.Second), Pos: &event.Position{Lat: 1, Lon: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := Apply(a, Transition{Alarm: "A1", Action: ActAccept, At: at.Add(2 * time.Second), By: "natt1"}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Alarm{"shallow copy": &shallow, "snapshot": snap, "clone": clone} {
		if c.Repeats() != 0 || c.Position() != nil || c.AcceptedBy() != "" || c.CallerID() != "gsm:+4670" {
			t.Errorf("%s saw a later change: repeats %d pos %v accepted by %q caller %q", name, c.Repeats(), c.Position(), c.AcceptedBy(), c.CallerID())
		}
	}
	if a.Repeats() != 1 || a.Position() == nil || a.AcceptedBy() != "natt1" || a.CallerID() != "gsm:+4670" {
		t.Errorf("the alarm lost a change: repeats %d pos %v accepted by %q caller %q", a.Repeats(), a.Position(), a.AcceptedBy(), a.CallerID())
	}
	b := New("B1", at)
	b.SetGroupID("G1")
	b.SetGroupID("")
	if b.x != nil || !reflect.DeepEqual(b, New("B1", at)) {
		t.Errorf("a field set back to zero keeps an extra: %+v", b.x)
	}
	// A group is changed in place by its owner: a clone's is its own.
	g := New("G1", at)
	g.SetGroup(&Group{Key: "k", Count: 1})
	gc := g.Clone()
	g.Group().Count++
	if gc.Group().Count != 1 {
		t.Error("a clone shares its group with the owner")
	}
}
