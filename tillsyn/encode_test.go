package tillsyn

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// encodeCases are supervision records as the hub journals them (every
// outcome and cause Judge makes) and the ones AppendJSON leaves to
// encoding/json.
func encodeCases(t testing.TB) []Record {
	sthlm, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	planned := time.Date(2026, 10, 25, 2, 0, 0, 0, sthlm)
	at := planned.Add(1234567891 * time.Nanosecond)
	l := LookIn{Site: "solrosen", Unit: "avd-a", Resident: "r-7f3a", Night: "2026-10-24", Wall: "02:00", Planned: planned,
		Deadline: planned.Add(10 * time.Minute), Replaces: true, Note: "sommartid: görs vid första 02:00 / summer time"}
	ev := []Evidence{
		{Device: "bed-1", Role: RoleBed, Said: "occupied", LastSeen: at.Add(-time.Minute), Usable: true},
		{Device: "door-1", Role: RoleDoor, Said: "", Usable: false, Why: string(CauseNotFitted)},
	}
	var out []Record
	p := &Plan{Criteria: Criteria{InBed: true, DoorClosed: true, NoAlarmOpen: true, PresenceWithin: time.Hour, InBedFor: 10 * time.Minute},
		Action: Action{Kind: DoVisit}}
	snaps := []Snapshot{
		{At: at, Consent: false},
		{At: at, Consent: true},
		{At: at, Consent: true, Sensors: []Sensor{{Device: "bed-1", Role: RoleBed, Heard: true, LastSeen: at, Period: time.Hour, State: "occupied"}},
			InBedSince: at.Add(-time.Minute), OpenAlarms: []string{"A000012 bed_exit", "A000013 call"}},
		{At: at, Consent: true, Sensors: []Sensor{
			{Device: "bed-1", Role: RoleBed, Heard: true, LastSeen: at, Period: time.Hour, State: "occupied"},
			{Device: "pir-1", Role: RolePresence, Heard: true, LastSeen: at.Add(-3 * time.Hour), Period: time.Hour, State: "motion"},
			{Device: "door-1", Role: RoleDoor, Heard: false},
			{Device: "door-2", Role: RoleDoor, Heard: true, Period: 0, State: "closed"},
		}, InBedSince: at.Add(-time.Hour), LastMotion: at.Add(-time.Minute)},
	}
	for _, s := range snaps {
		for _, now := range []time.Time{at, l.Deadline, l.Deadline.Add(2 * time.Minute)} {
			s.At = now
			if rec, final := Judge(l, p, s, now); final {
				out = append(out, rec)
			}
		}
	}
	ok := Record{LookIn: l, At: at, Result: Result{Outcome: AllRight, Evidence: ev[:1]}}
	ok.LookIn.Unit, ok.LookIn.Replaces, ok.LookIn.Note = "", false, ""
	alarmed := ok
	alarmed.Outcome, alarmed.Reasons, alarmed.LedTo, alarmed.Alarm = NotAllRight, []string{`inte i sängen / "not" in \ bed`}, "alarm", "A000042"
	alarmed.Evidence = ev
	visit := alarmed
	visit.VisitBy, visit.LedTo, visit.Alarm = at.Add(30*time.Minute).UTC(), "visit", ""
	empty := ok
	empty.Reasons, empty.Evidence = []string{}, []Evidence{}
	null := ok
	null.Evidence = nil
	out = append(out, ok, alarmed, visit, empty, null)
	// Left to encoding/json: strings it escapes, times it formats its own
	// way or refuses.
	for _, s := range []string{"<b>", "a&b", "tab\there", "nl\n", "bad\xffutf8", "sep\u2028", "ctl\x01"} {
		r := alarmed
		r.Reasons = []string{"ok", s}
		out = append(out, r)
		r = ok
		r.Evidence = []Evidence{{Device: s, Role: RoleBed}}
		out = append(out, r)
	}
	odd := ok
	odd.At = time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 3601))
	far := ok
	far.Planned = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	zero := ok
	zero.At, zero.Planned, zero.Deadline = time.Time{}, time.Time{}, time.Time{}
	out = append(out, odd, far, zero)
	return out
}

// The journal's supervision records are json.Marshal's bytes, whichever
// way they were made, and the common ones are made by hand.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	hand := 0
	for i, r := range encodeCases(t) {
		want, werr := json.Marshal(&r)
		got, err := EncodeJSON([]byte("prefix"), &r)
		if werr != nil {
			if err == nil {
				t.Errorf("case %d: json.Marshal fails (%v), EncodeJSON wrote %s", i, werr, got)
			}
			continue
		}
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("case %d:\n got %s\nwant prefix%s", i, got, want)
		}
		if b, ok := AppendJSON([]byte("x"), &r); ok {
			hand++
			if !bytes.Equal(b[1:], want) {
				t.Errorf("case %d: AppendJSON %s", i, b)
			}
		} else if string(b) != "x" {
			t.Errorf("case %d: AppendJSON refused but left %q", i, b)
		}
	}
	if hand < 10 {
		t.Errorf("only %d records encoded by hand: the journal's own records must be", hand)
	}
}

// A judged record, made by hand, reads back as itself.
func TestAppendJSONRoundTrip(t *testing.T) {
	for i, r := range encodeCases(t)[:12] {
		b, ok := AppendJSON(nil, &r)
		if !ok {
			continue
		}
		var back Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("case %d: %v: %s", i, err, b)
		}
		again, _ := AppendJSON(nil, &back)
		if !bytes.Equal(again, b) {
			t.Errorf("case %d: read back differs:\n%s\n%s", i, b, again)
		}
	}
}

// FuzzAppendJSON: for any strings and times, what AppendJSON writes is
// what json.Marshal writes, and what it refuses EncodeJSON still encodes.
func FuzzAppendJSON(f *testing.F) {
	f.Add("solrosen", "avd-a", "r-1", "02:00", "inte i sängen / not in bed", "bed-1", "occupied", int64(1793926800123456789), int32(3600), true)
	f.Add("<", "", "\xff", "\u2028", "\"\\", "", "", int64(-62135596800), int32(0), false)
	f.Add("a", "b", "c", "d", "e", "f", "g", int64(253402300800), int32(-3601), true)
	f.Fuzz(func(t *testing.T, site, unit, res, wall, reason, dev, said string, sec int64, off int32, usable bool) {
		tm := time.Unix(sec, sec%1e9).In(time.FixedZone("z", int(off)))
		r := Record{LookIn: LookIn{Site: site, Unit: unit, Resident: res, Night: wall, Wall: wall, Planned: tm, Deadline: tm.Add(time.Minute),
			Replaces: usable, Note: said}, At: tm,
			Result: Result{Outcome: Outcome(said), Cause: Cause(unit), Reasons: []string{reason, wall},
				Evidence: []Evidence{{Device: dev, Role: Role(site), Said: said, LastSeen: tm, Usable: usable, Why: reason}}},
			LedTo: reason, VisitBy: tm, Alarm: dev}
		if usable {
			r.Reasons, r.Evidence, r.VisitBy = nil, nil, time.Time{}
		}
		want, werr := json.Marshal(&r)
		got, ok := AppendJSON([]byte("p"), &r)
		if !ok {
			if string(got) != "p" {
				t.Fatalf("refused but wrote %q", got)
			}
			enc, err := EncodeJSON(nil, &r)
			if (err == nil) != (werr == nil) || err == nil && !bytes.Equal(enc, want) {
				t.Fatalf("EncodeJSON %s, %v; json.Marshal %s, %v", enc, err, want, werr)
			}
			return
		}
		if werr != nil {
			t.Fatalf("json.Marshal fails (%v), AppendJSON wrote %s", werr, got)
		}
		if !bytes.Equal(got[1:], want) {
			t.Fatalf("\n got %s\nwant %s", got[1:], want)
		}
	})
}

// Judging into a shared evidence array gives Judge's records, and a
// record's evidence stays its own as the array grows.
func TestJudgeAppendSameAsJudge(t *testing.T) {
	var (
		buf   []Evidence
		recs  []Record
		wants []Record
	)
	for _, r := range encodeCases(t)[:12] {
		p := &Plan{Criteria: Criteria{InBed: true, DoorClosed: true}, Action: Action{Kind: DoAlarm}}
		s := Snapshot{At: r.At, Consent: r.Outcome != CannotTell, Sensors: []Sensor{
			{Device: "bed-1", Role: RoleBed, Heard: true, LastSeen: r.At, Period: time.Hour, State: "occupied"},
			{Device: "door-1", Role: RoleDoor, Heard: true, LastSeen: r.At, Period: time.Hour, State: "closed"}}}
		for _, now := range []time.Time{r.LookIn.Planned, r.LookIn.Deadline, r.LookIn.Deadline.Add(time.Hour)} {
			want, wf := Judge(r.LookIn, p, s, now)
			var got Record
			var gf bool
			got, gf, buf = JudgeAppend(r.LookIn, p, s, now, buf)
			if gf != wf {
				t.Fatalf("final %v, Judge %v", gf, wf)
			}
			if gf {
				recs, wants = append(recs, got), append(wants, want)
			}
		}
	}
	if len(recs) == 0 {
		t.Fatal("nothing final")
	}
	for i := range recs {
		a, _ := json.Marshal(recs[i])
		b, _ := json.Marshal(wants[i])
		if !bytes.Equal(a, b) {
			t.Errorf("record %d:\n got %s\nwant %s", i, a, b)
		}
		if cap(recs[i].Evidence) != len(recs[i].Evidence) {
			t.Errorf("record %d: evidence not capped (len %d cap %d)", i, len(recs[i].Evidence), cap(recs[i].Evidence))
		}
	}
}
