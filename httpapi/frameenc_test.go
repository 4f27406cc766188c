package httpapi

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// encServer is a server whose views carry names, where and access, as
// `vaka hub` configures them.
func encServer() *server {
	return &server{o: Options{
		ResidentName: func(site, resident string) string {
			if resident == "r-none" {
				return ""
			}
			return "Karin \"Kajsa\" Andersson <åäö>"
		},
		Where: func(a *alarm.Alarm, personal bool) *Where {
			if a.Site == "nowhere" {
				return nil
			}
			w := &Where{SiteName: "Solrosen & Co", UnitName: "Avdelning 1", RoomName: a.Room,
				DeviceText: DeviceText(a.DeviceType, "på handleden", "on the wrist")}
			if a.Site == "empty-where" {
				return &Where{}
			}
			if personal {
				w.Address = "Storgatan 1\n123 45 Vällingby"
			}
			if a.Kind == alarm.KindWander {
				w.Geofence = &GeoCircle{Lat: 59.3293, Lon: 18.0686, RadiusM: 150}
				w.FloorPlan = &FloorPlan{URL: "/api/v1/floorplans/u1", South: 59.1, West: 18.0000001, North: 59.2, East: -0.0000005}
				w.MapTiles = "https://tile.example/{z}/{x}/{y}.png?a=1&b=2"
			}
			return w
		},
		Access: func(a *alarm.Alarm) *AccessInfo {
			switch a.Room {
			case "no-access":
				return nil
			case "empty-access":
				return &AccessInfo{}
			}
			return &AccessInfo{KeyBox: "Nyckelbox vid dörren", DoorCode: "1234#", Note: "Hund: \"Bamse\" <snäll>"}
		},
	}}
}

// ownedAlarm builds an alarm the way the hub does (owned, compact
// history) from a raise and the steps after it, and returns its stream
// snapshot.
func ownedAlarm(t testing.TB, a *alarm.Alarm, steps ...alarm.Transition) *alarm.Alarm {
	t.Helper()
	a.Own()
	a.AddHistory(alarm.Transition{Seq: 1, Alarm: a.ID, Action: alarm.ActRaise, At: a.RaisedAt, By: "rule:" + a.Rule,
		EventID: a.EventID, Rec: 1})
	for i, st := range steps {
		st.Alarm = a.ID
		if st.Seq == 0 {
			st.Seq = uint64(i + 2)
		}
		if st.Rec == 0 {
			st.Rec = int64(100 * (i + 2))
		}
		if err := alarm.Apply(a, st); err != nil {
			t.Fatalf("step %d %s: %v", i, st.Action, err)
		}
	}
	return a.Snapshot()
}

func encTestAlarms(t testing.TB) map[string]*alarm.Alarm {
	stockholm, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 2, 14, 7, 123456789, time.UTC)
	later := at.Add(90 * time.Second).In(stockholm)
	odd := time.Date(2026, 3, 29, 2, 30, 0, 5, time.FixedZone("", -(3*3600+30*60+15)))
	care := func(id string) *alarm.Alarm {
		a := alarm.New(id, at)
		a.Kind, a.Rule, a.Priority, a.Site, a.Gateway = alarm.KindCall, "call_button", 1, "solrosen", "gw-001"
		a.Device, a.DeviceType, a.Unit, a.Room, a.Resident = "btn-17", event.PersonalTrigger, "avd-1", "12", "r-17"
		a.EventID, a.SourceTime = "solrosen/gw-001/p-17", at.Add(-40*time.Millisecond)
		return a
	}
	as := map[string]*alarm.Alarm{}
	as["care raised and notified"] = ownedAlarm(t, care("A1"),
		alarm.Transition{Action: alarm.ActNotify, At: at, By: "notify", Receiver: "staff", To: []string{"natt1", "natt2"}})
	as["care plain (not owned)"] = func() *alarm.Alarm {
		a := care("A1p")
		a.SetHistory([]alarm.Transition{{Seq: 9, Alarm: "A1p", Action: alarm.ActRaise, At: at, By: "rule:call_button", EventID: a.EventID}})
		return a
	}()
	as["care accepted, presence, resolved, non-UTC"] = ownedAlarm(t, care("A2"),
		alarm.Transition{Action: alarm.ActNotify, At: at, By: "notify", Receiver: "staff", To: []string{"natt1"}},
		alarm.Transition{Action: alarm.ActDelivered, At: later, By: "natt1", Phone: "app:s1", Channel: alarm.ChannelApp},
		alarm.Transition{Action: alarm.ActDelivered, At: odd, By: "natt2", Phone: "webhook:larmcentral", Tier: 1},
		alarm.Transition{Action: alarm.ActAccept, At: later, By: "natt1"},
		alarm.Transition{Action: alarm.ActTakeOver, At: later.Add(time.Second), By: "natt2"},
		alarm.Transition{Action: alarm.ActPresence, At: odd, By: "natt2"},
		alarm.Transition{Action: alarm.ActResolve, At: odd.Add(time.Minute), By: "natt2", Outcome: alarm.OutcomeRealNeed,
			Note: "Föll i badrummet.\nHjälpte upp; \"ingen skada\" <ok> & klart\u2028slut\t\x01\x7f"})
	long := make([]alarm.Transition, 0, 40)
	for i := range 30 {
		long = append(long, alarm.Transition{Action: alarm.ActRepeat, At: at.Add(time.Duration(i) * time.Second), EventID: fmt.Sprint("ev-", i)})
	}
	long = append(long, alarm.Transition{Action: alarm.ActReminder, At: later, By: "notify", Receiver: "staff", To: []string{"natt1"}},
		alarm.Transition{Action: alarm.ActEscalate, At: later, By: "notify", Tier: 2, Receiver: "chef", To: []string{"chef1", "webhook"}})
	as["long history with history_omitted"] = ownedAlarm(t, care("A3"), long...)
	tech := alarm.New("T1", at)
	tech.Kind, tech.Rule, tech.Priority, tech.Site, tech.Gateway, tech.Device = alarm.KindTechnical, "device_silent", 3, "solrosen", "gw-001", "btn-9"
	tech.Note = "ingen kontakt sedan 02:00"
	as["technical"] = ownedAlarm(t, tech)
	g := alarm.New("G1", at)
	g.Kind, g.Rule, g.Priority, g.Site, g.Gateway = alarm.KindTechnical, alarm.RuleGroup, 3, "solrosen", "gw-001"
	restored := later
	g.SetGroup(&alarm.Group{Key: "root/tech{gateway=gw-001,site=solrosen}", By: map[string]string{"site": "solrosen", "gateway": "gw-001", "z<": "&"},
		Count: 3, Members: []alarm.Member{
			{Alarm: "T1", Rule: "device_silent", Device: "btn-9", Gateway: "gw-001", Since: at},
			{Alarm: "T2", Rule: "gateway_offline", Since: odd, Restored: &restored},
		}})
	as["group"] = ownedAlarm(t, g)
	empty := alarm.New("G2", at)
	empty.Kind, empty.Site = alarm.KindTechnical, "nowhere"
	empty.SetGroup(&alarm.Group{Key: "k", Members: []alarm.Member{}})
	as["group without members, no where"] = empty
	nilMembers := alarm.New("G3", at)
	nilMembers.Kind, nilMembers.Site = alarm.KindTechnical, "empty-where"
	nilMembers.SetGroup(&alarm.Group{Key: "k"})
	as["group with nil members, empty where"] = nilMembers
	sc := care("S1")
	sc.Rule, sc.DeviceType, sc.Status, sc.Location = "scaip", "0003", "0010", "0001"
	sc.Room = "no-access"
	sc.SetCallerID("gsm:+46701112233")
	sc.SetCallback("1")
	as["SCAIP with crd"] = ownedAlarm(t, sc,
		alarm.Transition{Action: alarm.ActHandover, At: at, By: "notify", Receiver: "larmcentral", Channel: alarm.ChannelSCAIP, Note: "snu 4", Tier: 1})
	w := care("W1")
	w.Kind, w.Rule, w.DeviceType, w.Room = alarm.KindWander, "geofence", event.Tracker, "empty-access"
	lk := odd
	as["wander with positions and track"] = ownedAlarm(t, w,
		alarm.Transition{Action: alarm.ActRepeat, At: at, Pos: &event.Position{Lat: 59.329312, Lon: 18.068581, Accuracy: 12.5}},
		alarm.Transition{Action: alarm.ActRepeat, At: later, Pos: &event.Position{Lat: -0.0000001, Lon: 1e21, Invalid: true}},
		alarm.Transition{Action: alarm.ActRestore, At: later, Pos: &event.Position{Lat: 5e-324, Lon: -1.7976931348623157e308, LastKnown: &lk}},
		alarm.Transition{Action: alarm.ActRepeat, At: later, Pos: &event.Position{Lat: 100, Lon: 0.000001, Accuracy: 123456789012345678901234.0}})
	named := care("N1")
	named.Resident = "r-none" // no name configured
	named.SetResidentName("set by someone")
	as["resident without a configured name"] = named
	bare := &alarm.Alarm{}
	as["zero alarm"] = bare
	str := care("E1")
	str.Note = "\xff\xfe bad utf-8 \xc3\x28 and \u2029 and 🚑 and \x00\x1f\\"
	str.ID, str.Device, str.Unit = "id\"with\\quotes", "dev<script>", "avd&1"
	as["strings needing escapes"] = ownedAlarm(t, str)
	return as
}

// The hand-written encoder writes exactly what json.Marshal writes for
// every class's view of realistic alarms, reading a snapshot's compact
// history directly, and falls back to nothing for them.
func TestFrameEncoderMatchesMarshal(t *testing.T) {
	s := encServer()
	before := FrameFallbacks()
	for name, a := range encTestAlarms(t) {
		for c := range viewClasses {
			want, err := s.marshalView(a, c)
			if err != nil {
				t.Fatalf("%s class %d: json.Marshal: %v", name, c, err)
			}
			got, ok := s.appendView(nil, a, c)
			if !ok {
				t.Errorf("%s class %d: not handled", name, c)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s class %d:\n got %s\nwant %s", name, c, got, want)
			}
			fr, err := s.alarmFrame(a, c)
			if err != nil || string(fr) != "event: alarm\ndata: "+string(want)+"\n\n" {
				t.Errorf("%s class %d: frame %q, %v", name, c, fr, err)
			}
		}
	}
	if n := FrameFallbacks() - before; n != 0 {
		t.Errorf("%d frames fell back to json.Marshal", n)
	}
}

// The table covers what it claims: the compact history is read (history
// steps listed, older ones counted), names and the caller id follow the
// name rule, access goes only to its class.
func TestFrameEncoderTableCoversTheViews(t *testing.T) {
	s := encServer()
	as := encTestAlarms(t)
	frame := func(name string, c int) string {
		b, ok := s.appendView(nil, as[name], c)
		if !ok {
			t.Fatalf("%s: not handled", name)
		}
		return string(b)
	}
	long := frame("long history with history_omitted", 0)
	if n := as["long history with history_omitted"].HistoryOmitted(); n == 0 || !strings.Contains(long, fmt.Sprintf(`"history_omitted":%d`, n)) {
		t.Errorf("long history: omitted %d, frame %s", n, long)
	}
	if got := strings.Count(long, `"seq":`); got != alarm.MemHistory {
		t.Errorf("long history lists %d steps, want %d", got, alarm.MemHistory)
	}
	if as["care raised and notified"].History() != nil {
		t.Error("the snapshot expanded its history")
	}
	if f := frame("care raised and notified", 0); !strings.Contains(f, `"to":["natt1","natt2"]`) || strings.Contains(f, "Karin") {
		t.Errorf("class 0: %s", f)
	}
	if f := frame("care raised and notified", viewNamed); !strings.Contains(f, `"resident_name":"Karin \"Kajsa\" Andersson \u003cåäö\u003e"`) {
		t.Errorf("named class: %s", f)
	}
	if f := frame("SCAIP with crd", 0); strings.Contains(f, "+4670") || !strings.Contains(f, `"cha":"1"`) {
		t.Errorf("SCAIP, class 0: %s", f)
	}
	if f := frame("SCAIP with crd", viewNamed); !strings.Contains(f, `"crd":"gsm:+46701112233"`) {
		t.Errorf("SCAIP, named: %s", f)
	}
	if f := frame("care accepted, presence, resolved, non-UTC", viewAccess); !strings.Contains(f, `"door_code":"1234#"`) {
		t.Errorf("access class: %s", f)
	}
	if f := frame("care accepted, presence, resolved, non-UTC", viewNamed); strings.Contains(f, "1234#") {
		t.Errorf("door code to a class without access: %s", f)
	}
}

// What the encoder does not handle goes to json.Marshal, counted, with
// the same frame (or the same error) as before.
func TestFrameEncoderFallsBack(t *testing.T) {
	s := encServer()
	at := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	withRaise := &alarm.Alarm{ID: "R1", Kind: alarm.KindCall, RaisedAt: at}
	withRaise.SetHistory([]alarm.Transition{
		{Seq: 1, Alarm: "R1", Action: alarm.ActRaise, At: at, Raise: &alarm.Alarm{ID: "R1"}}})
	before := FrameFallbacks()
	fr, err := s.alarmFrame(withRaise, 0)
	want, _ := s.marshalView(withRaise, 0)
	if err != nil || string(fr) != "event: alarm\ndata: "+string(want)+"\n\n" {
		t.Fatalf("frame %q, %v; want %s", fr, err, want)
	}
	if !strings.Contains(string(fr), `"raise":{"id":"R1"`) {
		t.Fatalf("the raise is missing: %s", fr)
	}
	n1, i1 := &alarm.Alarm{ID: "N1"}, &alarm.Alarm{ID: "I1"}
	n1.SetPosition(&event.Position{Lat: math.NaN()})
	i1.SetTrack([]event.Position{{Lon: math.Inf(-1)}})
	for _, a := range []*alarm.Alarm{
		{ID: "Y1", RaisedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, n1, i1,
	} {
		if _, err := s.alarmFrame(a, 0); err == nil {
			t.Errorf("%s: no error, json.Marshal refuses it", a.ID)
		}
		if _, err := s.marshalView(a, 0); err == nil {
			t.Errorf("%s: json.Marshal took it", a.ID)
		}
	}
	if n := FrameFallbacks() - before; n != 4 {
		t.Errorf("%d fallbacks counted, want 4", n)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(FrameFallbackCollector())
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "vaka_stream_frame_fallbacks_total" {
		t.Fatalf("gathered %v, %v", mfs, err)
	}
	if got := mfs[0].GetMetric()[0].GetCounter().GetValue(); got != float64(FrameFallbacks()) || got < 4 {
		t.Errorf("vaka_stream_frame_fallbacks_total %v, want %d", got, FrameFallbacks())
	}
}

// FuzzFrameEncoder compares the hand-written encoder with json.Marshal on
// random alarms: strings, floats, times in random zones, history steps,
// positions and groups.
func FuzzFrameEncoder(f *testing.F) {
	f.Add("A1", "natt1", "<b>&\u2028", "gsm:+4670", int64(1764727200123456789), int32(3600), 59.3293, 18.0686, uint16(0xffff))
	f.Add("\xff", "", "\x00\x1f\"\\", "", int64(-62135596800000000), int32(-36000), 1e-7, 1e21, uint16(0))
	f.Add("x", "y", "z", "w", int64(0), int32(86399), math.Copysign(0, -1), 5e-324, uint16(0x5555))
	f.Fuzz(func(t *testing.T, id, by, note, crd string, ns int64, offset int32, lat, lon float64, flags uint16) {
		at := time.Unix(0, ns).In(time.FixedZone("z", int(offset)))
		bit := func(i uint) bool { return flags&(1<<i) != 0 }
		a := alarm.New(id, at)
		a.Kind, a.Rule, a.Site, a.Note = alarm.KindCall, by, note, note
		a.SetCallerID(crd)
		a.SetCallback(by)
		a.Resident, a.Room, a.Device = id, by, crd
		a.SourceTime = at.UTC()
		pos := &event.Position{Lat: lat, Lon: lon, Accuracy: lat * lon, Invalid: bit(0)}
		if bit(1) {
			pos.LastKnown = &at
		}
		if bit(2) {
			a.SetPosition(pos)
			a.SetTrack([]event.Position{*pos, {Lat: lon, Lon: lat}})
		}
		if bit(3) {
			a.SetGroup(&alarm.Group{Key: note, By: map[string]string{by: note, note: id}, Count: int(offset),
				Members: []alarm.Member{{Alarm: id, Rule: by, Since: at, Restored: &at}}})
		}
		if bit(4) {
			a.SetAcceptedAt(&at)
			a.SetAcceptedBy(by)
		}
		if bit(5) {
			a.Kind = alarm.KindWander // where with geofence and floor plan
		}
		if bit(6) {
			a.Site = "nowhere"
		}
		steps := []alarm.Transition{
			{Action: alarm.ActNotify, At: at, By: by, Receiver: note, To: []string{by, id}, Tier: int(offset)},
			{Action: alarm.ActRepeat, At: at, EventID: note, Pos: pos},
			{Action: alarm.ActDelivered, At: at, By: by, Phone: crd, Channel: note},
			{Action: alarm.ActAccept, At: at, By: by},
			{Action: alarm.ActResolve, At: at, By: by, Outcome: alarm.OutcomeFalse, Note: note},
		}
		n := int(flags>>8) % 12
		if bit(7) {
			// Owned: a snapshot's compact history.
			a.Own()
			a.AddHistory(alarm.Transition{Seq: 1, Alarm: id, Action: alarm.ActRaise, At: at, By: by, EventID: note, Rec: 1})
			for i := range n {
				st := steps[i%len(steps)]
				st.Alarm, st.Seq, st.Rec = id, uint64(i+2), int64(i+2)
				if st.Action == alarm.ActResolve && i < n-1 {
					continue
				}
				_ = alarm.Apply(a, st)
			}
			a = a.Snapshot()
		} else {
			for i := range n {
				st := steps[i%len(steps)]
				st.Alarm, st.Seq = id, uint64(i+1)
				a.SetHistory(append(a.History(), st))
			}
			a.SetHistoryOmitted(int(offset))
		}
		s := encServer()
		for c := range viewClasses {
			want, err := s.marshalView(a, c)
			got, ok := s.appendView(nil, a, c)
			if err != nil {
				if ok {
					t.Fatalf("class %d: json.Marshal refused (%v), the encoder wrote %s", c, err, got)
				}
				continue
			}
			if !ok {
				t.Fatalf("class %d: not handled; json.Marshal wrote %s", c, want)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("class %d:\n got %s\nwant %s", c, got, want)
			}
		}
	})
}

// BenchmarkFrameEncoder is one stream frame of a care alarm as the hub
// shows it (a snapshot: raise and notify in compact history), for a staff
// viewer (names, where, access): the hand-written encoder against what it
// replaced (the view, its history expanded, through json.Marshal).
//
//	go test ./httpapi -run '^$' -bench FrameEncoder -benchmem
func BenchmarkFrameEncoder(b *testing.B) {
	s := encServer()
	a := encTestAlarms(b)["care raised and notified"]
	c := viewNamed | viewAccess
	b.Run("encoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.alarmFrame(a, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeFrame(s.view(a.Clone(), c)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Frames carved from one arena block are independent: appending to one
// copies rather than writing into the next, and a large frame gets memory
// of its own.
func TestFrameArenaFramesIndependent(t *testing.T) {
	var fa frameArena
	a := fa.copy([]byte("event: alarm\ndata: {\"id\":\"A1\"}\n\n"))
	b := fa.copy([]byte("event: alarm\ndata: {\"id\":\"A2\"}\n\n"))
	_ = append(a, "XXXX"...)
	if string(b) != "event: alarm\ndata: {\"id\":\"A2\"}\n\n" {
		t.Fatalf("second frame changed: %q", b)
	}
	big := bytes.Repeat([]byte("x"), frameBlockMax+1)
	c := fa.copy(big)
	if string(c) != string(big) || cap(c) < len(big) {
		t.Fatal("large frame not copied whole")
	}
	for range 2 * frameBlock / 1000 { // across block boundaries
		f := fa.copy(bytes.Repeat([]byte("y"), 1000))
		if len(f) != 1000 || cap(f) != 1000 {
			t.Fatalf("frame len %d cap %d", len(f), cap(f))
		}
	}
}

// DeviceText without a placement gives the type's words (shared), with
// one the placement appended, and nil for an unknown type.
func TestDeviceTextShared(t *testing.T) {
	for typ, w := range DeviceWords {
		got := DeviceText(typ, "", "")
		if got == nil || *got != w {
			t.Fatalf("%s: %+v, want %+v", typ, got, w)
		}
		if p := DeviceText(typ, "på handleden", "on the wrist"); p.SV != w.SV+" på handleden" || p.EN != w.EN+" on the wrist" {
			t.Fatalf("%s with placement: %+v", typ, p)
		}
	}
	if DeviceText("9999", "", "") != nil {
		t.Fatal("unknown type without placement: want nil")
	}
}
