package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// encodeCases are transitions as the hub journals them, and the ones the
// hand encoder leaves to encoding/json.
func encodeCases() []*alarm.Transition {
	sthlm, _ := time.LoadLocation("Europe/Stockholm")
	at := time.Date(2026, 10, 25, 2, 30, 0, 123456789, sthlm)
	acc := at.Add(time.Minute)
	raise := &alarm.Alarm{ID: "A000001", Kind: alarm.KindCall, Rule: "call", Priority: 1, Site: "solrosen", Gateway: "gw1",
		Device: "knapp-12", DeviceType: event.PersonalTrigger, Status: event.ManualAlarm, Location: "012", Unit: "avd-a",
		Room: "12", Resident: "r-7f3a", EventID: "solrosen/gw1/p-1", SourceTime: at.UTC(), RaisedAt: at, State: alarm.Raised,
		Note: `enheten är inte registrerad / "unregistered" \ device`, UpdatedAt: at}
	raise.SetCallerID("gsm:+46701234567")
	raise.SetCallback("1")
	full := *raise
	full.SetAcceptedBy("natt1")
	full.SetAcceptedAt(&acc)
	full.SetRepeats(3)
	full.SetTier(2)
	full.SetPresenceAt(&acc)
	full.SetResolvedBy("natt1")
	full.SetResolvedAt(&acc)
	full.SetOutcome(alarm.OutcomeRealNeed)
	full.SetLastRepeatAt(&acc)
	full.SetRestoredAt(&acc)
	full.SetReminders(1)
	full.SetGroupID("A000009")
	full.SetHistoryOmitted(4)
	full.SetResidentName("never stored")
	withPos := *raise
	withPos.SetPosition(&event.Position{Lat: 59.3, Lon: 18.07})
	withGroup := *raise
	withGroup.SetGroup(&alarm.Group{Key: "k", By: map[string]string{"site": "s"}, Members: []alarm.Member{}})
	subj := raise.Subject()
	return []*alarm.Transition{
		{Seq: 1, Alarm: "A000001", Action: alarm.ActRaise, At: at, By: "rule:call", EventID: "solrosen/gw1/p-1", Raise: raise},
		{Seq: 2, Alarm: "A000001", Action: alarm.ActNotify, At: at, By: "notify", Note: "raised", Subj: subj, Receiver: "natt",
			To: []string{"natt1", "natt2"}},
		{Seq: 3, Alarm: "A000001", Action: alarm.ActRaise, At: at.UTC(), Raise: &full},
		{Seq: 4, Alarm: "A000001", Action: alarm.ActDelivered, At: at, By: "natt1", Phone: "app:s1", Channel: alarm.ChannelApp, Tier: 1, Subj: subj},
		{Seq: 5, Alarm: "A000001", Action: alarm.ActTakeOver, At: at, By: "natt2", From: "natt1", Subj: &alarm.Subject{}},
		{Seq: 6, Alarm: "A000001", Action: alarm.ActResolve, At: at, By: "natt2", Outcome: alarm.OutcomeFalse, Note: "<b>&amp;</b>\n\ttab"},
		{Seq: 7, Alarm: "A\u2028", Action: alarm.ActAccept, At: at, By: "bad\xffutf8"},
		{Seq: 8, Alarm: "A1", Action: alarm.ActRaise, At: at, Raise: &withPos},
		{Seq: 9, Alarm: "A1", Action: alarm.ActRaise, At: at, Raise: &withGroup},
		{Seq: 10, Alarm: "A1", Action: alarm.ActRepeat, At: at, Pos: &event.Position{Lat: 1, Lon: 2}},
		{Seq: 11, Alarm: "A1", Action: alarm.ActAccept, At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 3601)), By: "x"},
		{Seq: 12, Alarm: "A1", Action: alarm.ActAccept, By: "zero time", To: []string{}},
	}
}

// The journal's bytes are json.Marshal's, whichever way they were made.
func TestAppendTransitionMatchesMarshal(t *testing.T) {
	hand := 0
	for i, tr := range encodeCases() {
		want, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeTransition([]byte("prefix"), tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("case %d:\n got %s\nwant prefix%s", i, got, want)
		}
		if _, ok := appendTransition(nil, tr); ok {
			hand++
		}
	}
	// The hub's common records go by hand, the odd ones by encoding/json.
	if hand != 6 {
		t.Errorf("%d cases encoded by hand, want 6", hand)
	}
}

// A year encoding/json refuses is refused by the journal too.
func TestEncodeTransitionRefusesWhatMarshalRefuses(t *testing.T) {
	tr := &alarm.Transition{Alarm: "A1", Action: alarm.ActAccept, At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := json.Marshal(tr); err == nil {
		t.Skip("this Go's encoding/json takes year 10000")
	}
	if _, err := encodeTransition(nil, tr); err == nil {
		t.Fatal("encoded a time json.Marshal refuses")
	}
}

// FuzzAppendTransition: whatever the strings and times, the hand encoder
// writes json.Marshal's bytes or leaves the record to it.
func FuzzAppendTransition(f *testing.F) {
	f.Add("A000001", "rule:call", "ingen signal på 1m5s", "natt1", "solrosen/gw1/p-1", int64(1795000000123456789), 3600, 1)
	f.Add("a\"b\\c", "<&>", "\u2028", "\xff", "", int64(0), 0, 0)
	f.Fuzz(func(t *testing.T, id, by, note, user, ev string, nanos int64, offset, tier int) {
		at := time.Unix(0, nanos).In(time.FixedZone("z", offset%86400))
		a := &alarm.Alarm{ID: id, Kind: alarm.Kind(by), Rule: note, Site: user, Device: ev, Note: note, RaisedAt: at,
			SourceTime: at, UpdatedAt: at, State: alarm.Raised, Priority: alarm.Priority(tier)}
		a.SetRepeats(tier)
		for _, tr := range []*alarm.Transition{
			{Seq: uint64(nanos), Alarm: id, Action: alarm.ActRaise, At: at, By: by, Note: note, EventID: ev, Raise: a},
			{Alarm: id, Action: alarm.Action(user), At: at, By: by, Tier: tier, To: []string{user, by}, Receiver: note, Subj: a.Subject()},
		} {
			want, werr := json.Marshal(tr)
			got, gerr := encodeTransition(nil, tr)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("json.Marshal error %v, journal %v", werr, gerr)
			}
			if werr == nil && !bytes.Equal(got, want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
		}
	})
}

// BenchmarkAppendTransition is a care alarm's raise and first notify as the
// journal encodes them (the record the hub writes per care alarm):
//
//	go test ./store/ -run '^$' -bench BenchmarkAppendTransition -benchmem
func BenchmarkAppendTransition(b *testing.B) {
	cs := encodeCases()[:2]
	var buf []byte
	for b.Loop() {
		buf = buf[:0]
		for _, tr := range cs {
			var ok bool
			if buf, ok = appendTransition(buf, tr); !ok {
				b.Fatal("not by hand")
			}
		}
	}
}
