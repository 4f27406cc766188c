package notify

import (
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// fixedRoster answers by site.
type fixedRoster map[string][]string

func (f fixedRoster) OnDuty(site, _ string, _ time.Time) []string { return f[site] }

func rosterTree(t *testing.T, r OnDuty) *Tree {
	t.Helper()
	c := Config{Receivers: []Receiver{{Name: "jour", Roster: RosterOnDuty, Users: []string{"reserv"}}, {Name: "chef", Users: []string{"chef1"}}},
		Route: &Route{Receiver: "jour", Escalate: []string{"chef"}}}
	tr, err := c.Compile([]string{"reserv", "chef1", "anna", "bo"}, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return tr.WithRoster(r)
}

// Alarms whose roster answer is the same share one resolved receiver and
// one plan (issue 20: memory per open alarm); a different answer, or
// nobody on duty (the fallback), gets a receiver of its own with the
// right users, and a later roster change is seen.
func TestPlansShareResolvedReceivers(t *testing.T) {
	ros := fixedRoster{"s1": {"anna"}, "s2": {"bo"}}
	tr := rosterTree(t, ros)
	at := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	plan := func(site string) *Plan {
		ps := tr.Match(map[string]string{"site": site, "unit": "u", "kind": "call"}, at)
		if len(ps) != 1 || len(ps[0].Tiers) != 2 {
			t.Fatalf("site %s: plans %+v", site, ps)
		}
		return NewTrack("A", ps[0], at).Plan
	}
	a, b, c := plan("s1"), plan("s1"), plan("s2")
	if a != b {
		t.Error("two alarms at s1 with the same staff on duty do not share a plan")
	}
	if a == c || a.Tiers[0] == c.Tiers[0] {
		t.Error("s1 and s2 (different staff) share a tier")
	}
	if got := a.Tiers[0].Users; len(got) != 1 || got[0] != "anna" {
		t.Errorf("s1 tier 0 users %v, want [anna]", got)
	}
	if got := c.Tiers[0].Users; len(got) != 1 || got[0] != "bo" {
		t.Errorf("s2 tier 0 users %v, want [bo]", got)
	}
	if a.Tiers[1] != c.Tiers[1] || a.Tiers[1] != tr.receivers["chef"] {
		t.Error("a receiver without roster is not the configured one")
	}
	none := plan("s3")
	if !none.Tiers[0].Fallback || none.Tiers[0].Users[0] != "reserv" || a.Tiers[0].Fallback {
		t.Errorf("nobody on duty: tier 0 %+v, want the fallback users", none.Tiers[0])
	}
	ros["s1"] = []string{"bo"} // the lead edits the roster
	if d := plan("s1"); d.Tiers[0].Users[0] != "bo" || a.Tiers[0].Users[0] != "anna" {
		t.Errorf("after the roster changed: new %v, kept plan %v", d.Tiers[0].Users, a.Tiers[0].Users)
	}
}

// A track's snapshot gives back every label the messages read, for an
// alarm with and without positions, and shares the labels alarms have
// in common.
func TestSnapshotKeepsLabels(t *testing.T) {
	p1, p2 := event.Position{Lat: 59.3, Lon: 18.1}, event.Position{Lat: 59.4, Lon: 18.2}
	call := &alarm.Alarm{ID: "A1", Kind: alarm.KindCall, Rule: "call", Priority: 1, Site: "s", Gateway: "gw", Device: "b1",
		DeviceType: event.PersonalTrigger, Status: "0100", Location: "07", Unit: "u", Room: "12"}
	call.SetCallerID("gsm:+4670")
	geo := &alarm.Alarm{ID: "A2", Kind: alarm.KindWander, Rule: "geo", Priority: 2, Site: "s", Device: "t1"}
	geo.SetPosition(&p2)
	geo.SetTrack([]event.Position{p1, p2})
	for _, a := range []*alarm.Alarm{call, geo} {
		s := snapshotOf(a)
		got := s.alarm(a.ID)
		want := &alarm.Alarm{ID: a.ID, Kind: a.Kind, Rule: a.Rule, Priority: a.Priority, Site: a.Site, Gateway: a.Gateway,
			Device: a.Device, DeviceType: a.DeviceType, Status: a.Status, Location: a.Location, Unit: a.Unit, Room: a.Room,
		}
		want.SetCallerID(a.CallerID())
		want.SetPosition(a.Position())
		if len(a.Track()) > 0 {
			want.SetTrack(a.Track()[:1])
		}
		if !alarmLabelsEqual(got, want) {
			t.Errorf("%s: snapshot gives %+v, want %+v", a.ID, got, want)
		}
	}
	b1 := &alarm.Alarm{ID: "B1", Kind: alarm.KindCall, Rule: "call", Site: "s", Device: "b1", Room: "1"}
	b2 := &alarm.Alarm{ID: "B2", Kind: alarm.KindCall, Rule: "call", Site: "s", Device: "b2", Room: "2"}
	s1, s2 := snapshotOf(b1), snapshotOf(b2)
	if s1.lab != s2.lab || s1.device == s2.device {
		t.Error("two alarms with the same labels do not share them, or share their device")
	}
	if s1.rare != nil || snapshotOf(call).rare == nil || snapshotOf(geo).rare == nil {
		t.Error("the rare labels are allocated for an alarm without them, or missing on one with them")
	}
}

func alarmLabelsEqual(a, b *alarm.Alarm) bool {
	if (a.Position() == nil) != (b.Position() == nil) || (a.Position() != nil && *a.Position() != *b.Position()) {
		return false
	}
	if len(a.Track()) != len(b.Track()) || (len(a.Track()) > 0 && a.Track()[0] != b.Track()[0]) {
		return false
	}
	return a.ID == b.ID && a.Kind == b.Kind && a.Rule == b.Rule && a.Priority == b.Priority && a.Site == b.Site &&
		a.Gateway == b.Gateway && a.Device == b.Device && a.DeviceType == b.DeviceType && a.Status == b.Status &&
		a.Location == b.Location && a.Unit == b.Unit && a.Room == b.Room && a.CallerID() == b.CallerID()
}
