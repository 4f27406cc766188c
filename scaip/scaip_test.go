package scaip

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vaka-care/vaka/event"
)

// The smallest exchanges of the implementation guide (SIS-TR 91102), as
// summarised in shared/scaip.md.
func TestParseGuideExamples(t *testing.T) {
	r, err := Parse([]byte(`<mrq><ref>1242</ref><cid>678</cid><dty>27</dty><stc>16</stc></mrq>`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != "1242" || r.Cid != "678" || r.Dty != "0027" || r.Stc != "0016" || r.Mty != Message || r.Ver != "01.00" {
		t.Fatalf("parsed %+v", r)
	}
	resp := NewResponse(r.Ref, OK)
	if got := string(resp.Marshal()); got != `<mrs><ref>1242</ref><snu>0</snu><mre>0</mre></mrs>` {
		t.Fatalf("response %s", got)
	}
	hb, err := Parse([]byte(`<mrq><ref>9</ref><mty>PI</mty><cid>678</cid><dty>0003</dty></mrq>`))
	if err != nil || hb.Class() != ClassHeartbeat {
		t.Fatalf("heartbeat: %v %+v", err, hb)
	}
}

func TestParseFull(t *testing.T) {
	body := `<?xml version="1.0" encoding="UTF-8"?>
<!-- a unit's alarm -->
<mrq xmlns="urn:x">
  <ref>A1b2</ref><ver>01.00</ver><sco>1</sco><cha>1</cha><mty>ME</mty><hbo>1</hbo>
  <cid>4670123456</cid><dty>0005</dty><did>pendant 1</did><dco>12</dco><dte>Hallen åäö</dte>
  <crd>gsm:+46701234567</crd><stc>0009</stc><stt>Fall</stt><pri>8</pri>
  <lco>35</lco><lva>x</lva><lte>Hem</lte>
  <lge><geo>59.3293,18.0686</geo><tim>2026-12-03T10:00:00+01:00</tim>
  <gga>$GPGGA,090000.00,5919.758,N,01804.116,E,1,08,0.9,20.0,M,25.0,M,,*54</gga></lge>
  <ico>1</ico><ite>info</ite>
</mrq>`
	r, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.Dco != "0012" || r.Lco != "035" || r.Ico != "0001" || r.Pri != 8 || !r.CallbackRequested() || !r.AcceptsInterval() {
		t.Fatalf("parsed %+v", r)
	}
	if r.Dte != "Hallen åäö" || r.Lge == nil || r.Lge.Geo == "" || r.Lge.GGA == "" {
		t.Fatalf("texts %+v %+v", r, r.Lge)
	}
	now := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	ev := r.Event(Target{Site: "s1", Device: "d1", Type: event.PersonalTrigger, Resident: "r1"}, now)
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	if ev.Type != event.FallDetector || ev.Status != event.AutomaticAlarm || ev.State != event.StateFall {
		t.Fatalf("event %+v", ev)
	}
	if ev.Position == nil || ev.Position.Lat != 59.3293 || ev.Position.LastKnown == nil {
		t.Fatalf("position %+v", ev.Position)
	}
	if n, ok := MediumNumber(r.Crd); !ok || n != "+46701234567" {
		t.Fatalf("callback %q %v", n, ok)
	}
}

func TestParseRefusals(t *testing.T) {
	long := "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><stt>" + strings.Repeat("a", MaxBody) + "</stt></mrq>"
	cases := []struct {
		name, body string
		snu        SNU
		tag        string
	}{
		{"oversized", long, TooLong, ""},
		{"empty", "  ", InvalidFormat, ""},
		{"truncated", "<mrq><ref>1</ref><cid>1</cid><dty>3", InvalidFormat, ""},
		{"wrongly nested", "<mrq><ref>1</ref><cid><dty>3</dty></cid></mrq>", InvalidFormat, "cid"},
		{"crossed tags", "<mrq><ref>1</cid></ref></mrq>", InvalidFormat, ""},
		{"not utf-8", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><dte>\xff\xfe</dte></mrq>", InvalidFormat, ""},
		{"latin-1 declared", `<?xml version="1.0" encoding="ISO-8859-1"?><mrq><ref>1</ref><cid>1</cid><dty>3</dty></mrq>`, InvalidFormat, ""},
		{"unknown tag", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><foo>1</foo></mrq>", InvalidFormat, "foo"},
		{"duplicate tag", "<mrq><ref>1</ref><cid>1</cid><cid>2</cid><dty>3</dty></mrq>", InvalidFormat, "cid"},
		{"wrong root", "<mrs><ref>1</ref></mrs>", InvalidFormat, ""},
		{"two roots", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty></mrq><mrq></mrq>", InvalidFormat, ""},
		{"attribute", `<mrq><ref x="1">1</ref><cid>1</cid><dty>3</dty></mrq>`, InvalidFormat, "ref"},
		{"doctype", `<!DOCTYPE x [<!ENTITY a "b">]><mrq><ref>1</ref></mrq>`, InvalidFormat, ""},
		{"text in root", "<mrq>hello<ref>1</ref><cid>1</cid><dty>3</dty></mrq>", InvalidFormat, "mrq"},
		{"ref missing", "<mrq><cid>1</cid><dty>3</dty></mrq>", RefMissing, "ref"},
		{"cid missing", "<mrq><ref>1</ref><dty>3</dty></mrq>", MandatoryMiss, "cid"},
		{"dty missing", "<mrq><ref>1</ref><cid>1</cid></mrq>", MandatoryMiss, "dty"},
		{"ref too long", "<mrq><ref>12345678901234567</ref><cid>1</cid><dty>3</dty></mrq>", WrongData, "ref"},
		{"ref charset", "<mrq><ref>12-3</ref><cid>1</cid><dty>3</dty></mrq>", WrongData, "ref"},
		{"cid letters", "<mrq><ref>1</ref><cid>12a</cid><dty>3</dty></mrq>", WrongData, "cid"},
		{"cid too long", "<mrq><ref>1</ref><cid>" + strings.Repeat("1", 33) + "</cid><dty>3</dty></mrq>", WrongData, "cid"},
		{"dty five digits", "<mrq><ref>1</ref><cid>1</cid><dty>12345</dty></mrq>", WrongData, "dty"},
		{"did not ascii", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><did>å</did></mrq>", WrongData, "did"},
		{"did too long", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><did>12345678901234567</did></mrq>", WrongData, "did"},
		{"dte too long", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><dte>" + strings.Repeat("å", 33) + "</dte></mrq>", WrongData, "dte"},
		{"mty", "<mrq><ref>1</ref><mty>XX</mty><cid>1</cid><dty>3</dty></mrq>", WrongData, "mty"},
		{"pri", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><pri>10</pri></mrq>", WrongData, "pri"},
		{"ver", "<mrq><ref>1</ref><ver>1.0</ver><cid>1</cid><dty>3</dty></mrq>", WrongData, "ver"},
		{"crd medium", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><crd>59.3,18.0</crd></mrq>", WrongData, "crd"},
		{"geo range", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><lge><geo>99,18</geo></lge></mrq>", WrongData, "geo"},
		{"gga checksum", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><lge><gga>$GPGGA,090000.00,5919.758,N,01804.116,E,1,08,0.9,20.0,M,25.0,M,,*55</gga></lge></mrq>", WrongData, "gga"},
		{"tim without offset", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><lge><tim>2026-12-03T10:00:00</tim></lge></mrq>", WrongData, "tim"},
		{"lge unknown", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><lge><alt>1</alt></lge></mrq>", InvalidFormat, "lge"},
		{"lge empty", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><lge></lge></mrq>", WrongData, "lge"},
		{"split", "<mrq><ref>1</ref><cid>1</cid><dty>3</dty><ame>2</ame></mrq>", TooLong, "ame"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.body))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.SNU != c.snu || e.Tag != c.tag {
				t.Fatalf("snu %d tag %q (%v), want snu %d tag %q", e.SNU, e.Tag, e, c.snu, c.tag)
			}
			// Reasons never quote the message.
			if strings.Contains(e.Error(), "å") || strings.Contains(e.Error(), "59.3") || strings.Contains(e.Error(), "aaaa") {
				t.Fatalf("reason quotes content: %v", e)
			}
		})
	}
}

func TestRefusalKeepsRef(t *testing.T) {
	_, err := Parse([]byte("<mrq><ref>77</ref><dty>3</dty></mrq>"))
	var e *Error
	if !errors.As(err, &e) || e.Ref != "77" || e.SNU != MandatoryMiss {
		t.Fatalf("%#v", err)
	}
}

func TestClassAndEvent(t *testing.T) {
	now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	tg := Target{Site: "s", Device: "d", Type: event.PersonalTrigger}
	cases := []struct {
		body   string
		class  Class
		status event.StatusCode
		state  event.State
		typ    event.DeviceType
	}{
		{"<mrq><ref>1</ref><cid>1</cid><dty>3</dty></mrq>", ClassAlarm, event.ManualAlarm, event.StatePressed, event.PersonalTrigger},
		{"<mrq><ref>1</ref><cid>1</cid><dty>27</dty><stc>9</stc></mrq>", ClassAlarm, event.ManualAlarm, event.StatePressed, event.PersonalTrigger},
		{"<mrq><ref>1</ref><cid>1</cid><dty>14</dty><stc>0777</stc></mrq>", ClassAlarm, event.ManualAlarm, event.StatePressed, event.DoorSensor},
		{"<mrq><ref>1</ref><cid>1</cid><dty>3</dty><stc>16</stc></mrq>", ClassTechnical, event.BatteryLow, "", event.PersonalTrigger},
		{"<mrq><ref>1</ref><cid>1</cid><dty>3</dty><stc>0088</stc></mrq>", ClassPresence, event.Presence, "", event.PersonalTrigger},
		{"<mrq><ref>1</ref><cid>1</cid><dty>3</dty><stc>0087</stc></mrq>", ClassPresence, event.PlannedPresence, "", event.PersonalTrigger},
		{"<mrq><ref>1</ref><cid>1</cid><dty>3</dty><stc>0111</stc></mrq>", ClassCheckout, event.InterventionDone, "", event.PersonalTrigger},
		{"<mrq><ref>1</ref><cid>1</cid><dty>3</dty><stc>0102</stc></mrq>", ClassTest, event.TestTransmission, "", event.PersonalTrigger},
		{"<mrq><ref>1</ref><cid>1</cid><dty>3</dty><stc>0103</stc></mrq>", ClassTest, event.TestPeriodic, "", event.PersonalTrigger},
		{"<mrq><ref>1</ref><cid>1</cid><dty>32</dty><stc>0004</stc></mrq>", ClassAccepted, event.AlarmAccepted, "", event.PersonalTrigger},
		{"<mrq><ref>1</ref><mty>PI</mty><cid>1</cid><dty>3</dty></mrq>", ClassHeartbeat, "", "", event.PersonalTrigger},
		{"<mrq><ref>1</ref><mty>RE</mty><cid>1</cid><dty>3</dty></mrq>", ClassReset, "", "", event.PersonalTrigger},
		{"<mrq><ref>1</ref><mty>IN</mty><cid>1</cid><dty>3</dty></mrq>", ClassInfo, "", "", event.PersonalTrigger},
	}
	for _, c := range cases {
		r, err := Parse([]byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		if r.Class() != c.class {
			t.Errorf("%s: class %s, want %s", c.body, r.Class(), c.class)
		}
		ev := r.Event(tg, now)
		if ev.Status != c.status || ev.State != c.state || ev.Type != c.typ {
			t.Errorf("%s: event %s %s %s, want %s %s %s", c.body, ev.Type, ev.Status, ev.State, c.typ, c.status, c.state)
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("%s: %v", c.body, err)
		}
	}
}

func TestEventIDStableAndDistinct(t *testing.T) {
	a, _ := Parse([]byte("<mrq><ref>5</ref><cid>1</cid><dty>3</dty></mrq>"))
	b, _ := Parse([]byte("<mrq>\n <ref>5</ref> <cid>1</cid><dty>0003</dty></mrq>"))
	c, _ := Parse([]byte("<mrq><ref>5</ref><cid>2</cid><dty>3</dty></mrq>"))
	if a.EventID() != b.EventID() {
		t.Fatal("the same message, formatted differently, must keep its id")
	}
	if a.EventID() == c.EventID() || len(a.EventID()) > 64 {
		t.Fatalf("ids %s %s", a.EventID(), c.EventID())
	}
	if a.Identity() == c.Identity() {
		t.Fatal("identity must tell units apart")
	}
}

func TestGGA(t *testing.T) {
	f, err := parseGGA("$GPGGA,090000.00,5919.758,S,01804.116,W,0,00,,,M,,,,")
	if err != nil || f.Valid || f.Lat > -59 || f.Lon > -18 {
		t.Fatalf("%+v %v", f, err)
	}
	if _, err := parseGGA("$GPGGA,,,,,,0,,,,,,,,"); err != nil {
		t.Fatalf("no fix said so: %v", err)
	}
	if _, err := parseGGA("$GPGGA,,,,,,1,,,,,,,,"); err == nil {
		t.Fatal("a valid fix without position must be refused")
	}
}

func TestResponseRoundTripAndLiberal(t *testing.T) {
	resp := Response{Ref: "abc", SNU: Busy, Ste: "busy\nretry åäö <later>", Mre: 0, Hbi: 15, Cve: "01.00"}
	out := resp.Marshal()
	if bytes.ContainsAny(out, "\n") || !utf8.Valid(out) || !bytes.Contains(out, []byte("<ste>busy?retry ?????? &lt;later&gt;</ste>")) {
		t.Fatalf("strict writer: %s", out)
	}
	got, err := ParseResponse(out)
	if err != nil || got.Ref != "abc" || got.SNU != Busy || got.Hbi != 15 || got.Mre != 0 || got.Cve != "01.00" {
		t.Fatalf("%+v %v", got, err)
	}
	// A proxy's own root element and an unknown tag: accepted.
	got, err = ParseResponse([]byte(`<?xml version="1.0"?><scaipResponse><ref>9</ref><snu>4</snu><x>1</x></scaipResponse>`))
	if err != nil || got.SNU != Hold || got.Mre != -1 {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []string{"<mrs><snu>0</snu></mrs>", "<mrs><ref>1</ref></mrs>", "<mrs><ref>1</ref><snu>x</snu></mrs>", "<mrs><ref>1</ref>", "\xff"} {
		if _, err := ParseResponse([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRequestMarshalRoundTrip(t *testing.T) {
	r := &Request{Ref: "R1", Mty: Info, Cid: "123", Dty: "0003", Did: "a&b", Crd: "gsm:+4670", Stc: "0010", Pri: 5,
		Lge: &Position{Geo: "59.1,18.2"}}
	back, err := Parse(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if back.Did != "a&b" || back.Mty != Info || back.Pri != 5 || back.Lge.Geo != "59.1,18.2" {
		t.Fatalf("%+v", back)
	}
}

// FuzzParse keeps the <mrq> parser from ever panicking, and checks that an
// accepted request is well-formed in Vaka's terms (its event validates,
// it writes back to the same request) and a refusal carries a real snu.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<mrq><ref>1242</ref><cid>678</cid><dty>27</dty><stc>16</stc></mrq>`,
		`<mrq><ref>9</ref><mty>PI</mty><hbo>1</hbo><cid>678</cid><dty>0003</dty></mrq>`,
		`<?xml version="1.0"?><mrq><ref>A</ref><cid>1</cid><dty>5</dty><crd>gsm:+4670</crd><lge><geo>59,18</geo><tim>2026-01-01T00:00:00Z</tim><gga>$GPGGA,090000.00,5919.758,N,01804.116,E,1,08,0.9,20.0,M,25.0,M,,*54</gga></lge></mrq>`,
		`<mrq><ref>1</ref><cid><dty>3</dty></cid></mrq>`,
		"<mrq><ref>1</ref><dte>\xff</dte></mrq>",
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Parse(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.SNU.Label() == "undefined" || e.SNU == OK {
				t.Fatalf("refusal without a usable snu: %v", err)
			}
			return
		}
		if r.Ref == "" || r.Cid == "" || r.Dty == "" {
			t.Fatalf("accepted without mandatory tags: %+v", r)
		}
		ev := r.Event(Target{Site: "s", Device: "d", Type: event.PersonalTrigger}, now)
		if err := ev.Validate(); err != nil {
			t.Fatalf("accepted request made an invalid event: %v", err)
		}
		back, err := Parse(r.Marshal())
		if err != nil {
			t.Fatalf("own writer made an unparsable request: %v", err)
		}
		if back.EventID() != r.EventID() {
			t.Fatal("event id changed through a round trip")
		}
	})
}

// FuzzParseResponse keeps the liberal <mrs> reader from panicking.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`<mrs><ref>1</ref><snu>0</snu><mre>0</mre><hbi>15</hbi></mrs>`))
	f.Add([]byte(`<x><ref>1</ref><snu>4</snu></x>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseResponse(body)
		if err == nil && (r.Ref == "" || r.SNU < 0 || r.SNU > 99) {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzParseFastAgrees: whatever the plain-form reader accepts, the full
// encoding/xml parser accepts as the same request, so the fast path can
// never accept what strict parsing would refuse, nor read it differently.
func FuzzParseFastAgrees(f *testing.F) {
	for _, s := range []string{
		`<mrq><ref>1242</ref><cid>678</cid><dty>27</dty><stc>16</stc></mrq>`,
		"\n<mrq>\n\t<ref>9</ref> <mty>PI</mty><hbo>1</hbo><cid>678</cid><dty>0003</dty>\n</mrq>\n",
		`<mrq><ref>A</ref><cid>1</cid><dty>5</dty><crd>gsm:+4670</crd><dte> a b </dte><pri>7</pri></mrq>`,
		`<mrq><ref>1</ref><cid>2</cid><dty>3</dty><dte></dte></mrq>`,
		`<mrq><ref>1</ref><cid>2</cid><dty>3</dty><dte>a&amp;b</dte></mrq>`,
		`<mrq><ref>1</ref><ref>2</ref><cid>2</cid><dty>3</dty></mrq>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := parseFast(body)
		if !ok {
			return
		}
		full, err := parseFull(body)
		if err != nil {
			t.Fatalf("the fast path accepted what the full parser refuses (%v): %q", err, body)
		}
		if !reflect.DeepEqual(fast, full) {
			t.Fatalf("the fast path read %+v, the full parser %+v: %q", fast, full, body)
		}
	})
}

// The plain form takes the fast path, and a request with anything more
// (a declaration, an entity, <lge>) still parses through the full one.
func TestParseFastPath(t *testing.T) {
	plain := []byte(`<mrq><ref>b1</ref><cid>100000</cid><dty>0003</dty></mrq>`)
	if _, ok := parseFast(plain); !ok {
		t.Fatal("the plain form did not take the fast path")
	}
	for _, s := range []string{
		`<?xml version="1.0"?><mrq><ref>b1</ref><cid>1</cid><dty>3</dty></mrq>`,
		`<mrq><ref>b1</ref><cid>1</cid><dty>3</dty><dte>a&amp;b</dte></mrq>`,
		`<mrq><ref>b1</ref><cid>1</cid><dty>3</dty><lge><geo>59,18</geo></lge></mrq>`,
	} {
		if _, ok := parseFast([]byte(s)); ok {
			t.Errorf("fast path took %s", s)
		}
		if _, err := Parse([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if r, _ := Parse([]byte(`<mrq><ref>b1</ref><cid>1</cid><dty>3</dty><dte>a&amp;b</dte></mrq>`)); r == nil || r.Dte != "a&b" {
		t.Errorf("entity: %+v", r)
	}
}

// BenchmarkParse: one plain-form request through Parse (the fast path)
// and through the full encoding/xml parser, side by side.
func BenchmarkParse(b *testing.B) {
	body := []byte(`<mrq><ref>b12345</ref><cid>100123</cid><dty>0003</dty></mrq>`)
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseFull(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The request's XML is what EventID hashes: it must stay byte for byte
// what it was (a resend after an upgrade keeps its event id, so it is
// still answered from the journal). Every field, escaping included.
func TestRequestMarshalBytes(t *testing.T) {
	r := Request{Ref: "R1", Ver: "01.00", Sco: "1", Cha: "1", Mty: Info, Hbo: "1", Cid: "678", Dty: "0003", Did: "d<1>",
		Dco: "0001", Dte: `a&b'"`, Crd: "gsm:+4670", Stc: "0010", Stt: "ö", Pri: 7, Lco: "035", Lva: "v", Lte: "t",
		Lge: &Position{Geo: "59.1,18.2", Tim: "2026-01-01T00:00:00Z", GGA: "g"}, Ico: "0001", Ite: "i"}
	want := `<mrq><ref>R1</ref><ver>01.00</ver><sco>1</sco><cha>1</cha><mty>IN</mty><hbo>1</hbo><cid>678</cid>` +
		`<dty>0003</dty><did>d&lt;1&gt;</did><dco>0001</dco><dte>a&amp;b&apos;&quot;</dte><crd>gsm:+4670</crd>` +
		`<stc>0010</stc><stt>ö</stt><pri>7</pri><lco>035</lco><lva>v</lva><lte>t</lte>` +
		`<lge><geo>59.1,18.2</geo><tim>2026-01-01T00:00:00Z</tim><gga>g</gga></lge><ico>0001</ico><ite>i</ite></mrq>`
	if got := string(r.Marshal()); got != want {
		t.Errorf("Marshal\n got %s\nwant %s", got, want)
	}
	min := Request{Ref: "1", Cid: "2", Dty: "0003"}
	if got := string(min.Marshal()); got != `<mrq><ref>1</ref><cid>2</cid><dty>0003</dty></mrq>` {
		t.Errorf("Marshal %s", got)
	}
}

// BenchmarkEventID: the id every received request gets (its XML hashed).
func BenchmarkEventID(b *testing.B) {
	r := Request{Ref: "b12345", Mty: Message, Cid: "100123", Dty: "0003", Ver: "01.00"}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.EventID()
	}
}
