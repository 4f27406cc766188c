package alarm

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/vaka-care/vaka/event"
)

// oldAlarm is alarm.Alarm's field list before the seldom set fields moved
// behind the extra (issue 20), kept here to prove the JSON did not change.
type oldAlarm struct {
	ID             string             `json:"id"`
	Kind           Kind               `json:"kind"`
	Rule           string             `json:"rule"`
	Priority       Priority           `json:"priority"`
	Site           string             `json:"site"`
	Gateway        string             `json:"gateway,omitempty"`
	Device         string             `json:"device,omitempty"`
	DeviceType     event.DeviceType   `json:"dty,omitempty"`
	Status         event.StatusCode   `json:"stc,omitempty"`
	Location       event.LocationCode `json:"lco,omitempty"`
	Unit           string             `json:"unit,omitempty"`
	Room           string             `json:"room,omitempty"`
	Resident       string             `json:"resident,omitempty"`
	ResidentName   string             `json:"resident_name,omitempty"`
	EventID        string             `json:"event_id,omitempty"`
	SourceTime     time.Time          `json:"source_time"`
	RaisedAt       time.Time          `json:"raised_at"`
	State          State              `json:"state"`
	AcceptedBy     string             `json:"accepted_by,omitempty"`
	AcceptedAt     *time.Time         `json:"accepted_at,omitempty"`
	PresenceAt     *time.Time         `json:"presence_at,omitempty"`
	ResolvedBy     string             `json:"resolved_by,omitempty"`
	ResolvedAt     *time.Time         `json:"resolved_at,omitempty"`
	Outcome        Outcome            `json:"outcome,omitempty"`
	Note           string             `json:"note,omitempty"`
	Repeats        int                `json:"repeats"`
	LastRepeatAt   *time.Time         `json:"last_repeat_at,omitempty"`
	RestoredAt     *time.Time         `json:"restored_at,omitempty"`
	Position       *event.Position    `json:"pos,omitempty"`
	Track          []event.Position   `json:"track,omitempty"`
	Tier           int                `json:"tier,omitempty"`
	Deliveries     []Delivery         `json:"deliveries,omitempty"`
	Reminders      int                `json:"reminders,omitempty"`
	UpdatedAt      time.Time          `json:"updated_at"`
	History        []Transition       `json:"history,omitempty"`
	CallerID       string             `json:"crd,omitempty"`
	Callback       string             `json:"cha,omitempty"`
	Group          *Group             `json:"group,omitempty"`
	GroupID        string             `json:"group_id,omitempty"`
	HistoryOmitted int                `json:"history_omitted,omitempty"`
}

// extraCases are an alarm with no seldom set field (no extra) and one
// with every one of them set (an extra), with the old struct of each.
func extraCases() map[string]struct {
	a   *Alarm
	old oldAlarm
} {
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
	o := oldAlarm{ID: "A1", Kind: KindCall, Rule: "call", Priority: 1, Site: "s", Gateway: "gw", Device: "b1",
		DeviceType: event.PersonalTrigger, Unit: "u", Room: "12", Resident: "r1", EventID: "s/gw/e1",
		SourceTime: at, RaisedAt: at, State: Raised, Note: "n", Deliveries: dl, UpdatedAt: later}
	of := o
	of.ResidentName, of.AcceptedBy, of.AcceptedAt, of.PresenceAt, of.ResolvedBy, of.ResolvedAt = "Karin", "natt1", &later, &later, "natt1", &later
	of.Outcome, of.Repeats, of.LastRepeatAt, of.RestoredAt, of.Position, of.Track = OutcomeRealNeed, 3, &later, &later, pos, track
	of.Tier, of.Reminders, of.History, of.CallerID, of.Callback, of.Group, of.GroupID, of.HistoryOmitted = 2, 4, hist, "gsm:+4670", "1", g, "G1", 5
	return map[string]struct {
		a   *Alarm
		old oldAlarm
	}{"no extra": {plain, o}, "every extra": {&full, of}}
}

// An alarm without any seldom set field has no extra (issue 20: 384
// bytes an open alarm); one with them has it, and both give the JSON the
// old struct gave, byte for byte, and read back equal, the extra nil or
// not as before.
func TestExtraJSONUnchanged(t *testing.T) {
	if n := unsafe.Sizeof(Alarm{}); n > 384 {
		t.Errorf("an alarm is %d bytes, want at most 384", n)
	}
	for name, c := range extraCases() {
		if (c.a.x == nil) != (name == "no extra") {
			t.Errorf("%s: extra %v", name, c.a.x)
		}
		got, err := json.Marshal(c.a)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(&c.old)
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		if byValue, _ := json.Marshal(*c.a); string(byValue) != string(want) {
			t.Errorf("%s: an Alarm value marshals as %s", name, byValue)
		}
		var back Alarm
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if again, _ := json.Marshal(&back); string(again) != string(want) {
			t.Errorf("%s: read back and written again:\n got %s\nwant %s", name, again, want)
		}
		if (back.x == nil) != (c.a.x == nil) {
			t.Errorf("%s: read back with extra %v, want nil %v", name, back.x, c.a.x == nil)
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
