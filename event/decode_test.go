package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// secret stands for personal data a payload may carry by mistake: a name
// and a personal identity number. It must never reach an error message.
const secret = "Sven Secretsson 19270101-9999"

// valid is a complete call-button event; tests change one field at a time.
func valid() map[string]any {
	return map[string]any{
		"v": 1, "id": "e-1", "device": "knapp-12", "dty": "0003", "stc": "0010",
		"state": "pressed", "ts": "2026-11-23T03:00:00+01:00",
		"resident": "r-17", "unit": "u1", "room": "12",
	}
}

// with returns valid() with field k set to v (or removed when v is del).
var del = struct{}{}

func with(kv ...any) []byte {
	m := valid()
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == del {
			delete(m, k)
			continue
		}
		m[k] = kv[i+1]
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeValid(t *testing.T) {
	ev, err := Decode("site-a", "gw-1", with())
	if err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
	want := Event{V: 1, ID: "e-1", Site: "site-a", Gateway: "gw-1", Device: "knapp-12",
		Type: PersonalTrigger, Status: ManualAlarm, State: StatePressed,
		Resident: "r-17", Unit: "u1", Room: "12"}
	wantTime := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	if !ev.Time.Equal(wantTime) {
		t.Errorf("time %v, want %v", ev.Time, wantTime)
	}
	ev.Time = time.Time{}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", ev, want)
	}
	if ev.Key() != "site-a/gw-1/e-1" {
		t.Errorf("key %q", ev.Key())
	}
	// Optional position and battery, and site/gateway that match the topic.
	ev, err = Decode("site-a", "gw-1", with("pos", map[string]any{"lat": 58.3, "lon": 11.9, "acc": 12}, "battery", 0,
		"site", "site-a", "gateway", "gw-1", "dty", "0051", "state", del, "stc", del))
	if err != nil {
		t.Fatalf("tracker event refused: %v", err)
	}
	if ev.Position == nil || ev.Position.Lat != 58.3 || ev.Position.Lon != 11.9 || ev.Position.Accuracy != 12 {
		t.Errorf("position %+v", ev.Position)
	}
	if ev.Battery == nil || *ev.Battery != 0 {
		t.Errorf("battery 0 lost: %v", ev.Battery)
	}
}

func TestDecodeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		code    ReplyCode
		field   string
		label   string
	}{
		// Mandatory fields: SCAIP 7 and the field's name.
		{"missing v", with("v", del), ReplyMandatoryMissed, "v", "missing_field"},
		{"v zero", with("v", 0), ReplyMandatoryMissed, "v", "missing_field"},
		{"missing id", with("id", del), ReplyMandatoryMissed, "id", "missing_field"},
		{"empty id", with("id", ""), ReplyMandatoryMissed, "id", "missing_field"},
		{"missing device", with("device", del), ReplyMandatoryMissed, "device", "missing_field"},
		{"missing dty", with("dty", del), ReplyMandatoryMissed, "dty", "missing_field"},
		{"missing ts", with("ts", del), ReplyMandatoryMissed, "ts", "missing_field"},
		{"null object", []byte(`null`), ReplyMandatoryMissed, "v", "missing_field"},
		{"empty object", []byte(`{}`), ReplyMandatoryMissed, "v", "missing_field"},

		// Wrong JSON types: SCAIP 3 and the field.
		{"v as string", with("v", "1"), ReplyWrongData, "v", "wrong_data"},
		{"v as float", with("v", 1.5), ReplyWrongData, "v", "wrong_data"},
		{"id as number", with("id", 17), ReplyWrongData, "id", "wrong_data"},
		{"device as bool", with("device", true), ReplyWrongData, "device", "wrong_data"},
		{"dty as number", with("dty", 3), ReplyWrongData, "dty", "wrong_data"},
		{"battery as string", with("battery", "80"), ReplyWrongData, "battery", "wrong_data"},
		{"battery as float", with("battery", 80.5), ReplyWrongData, "battery", "wrong_data"},
		{"pos as string", with("pos", "58,11"), ReplyWrongData, "pos", "wrong_data"},
		{"pos.lat as string", with("pos", map[string]any{"lat": "58", "lon": 11}), ReplyWrongData, "pos.lat", "wrong_data"},
		{"seq negative", with("seq", -1), ReplyWrongData, "seq", "wrong_data"},
		{"ts as number", with("ts", 1700000000), ReplyWrongData, "", "wrong_data"},
		{"ts not RFC 3339", with("ts", "23/11/2026 03:00"), ReplyWrongData, "", "wrong_data"},
		{"array", []byte(`[1,2]`), ReplyWrongData, "", "wrong_data"},

		// Wrong values.
		{"v 2", with("v", 2), ReplyWrongData, "v", "wrong_data"},
		{"id too long", with("id", strings.Repeat("x", 65)), ReplyWrongData, "id", "wrong_data"},
		{"device with slash", with("device", "a/b"), ReplyWrongData, "device", "wrong_data"},
		{"device with space", with("device", "knapp 12"), ReplyWrongData, "device", "wrong_data"},
		{"device too long", with("device", strings.Repeat("d", 65)), ReplyWrongData, "device", "wrong_data"},
		{"unknown dty", with("dty", "9999"), ReplyWrongData, "dty", "wrong_data"},
		{"dty by name is not SCAIP", with("dty", "door_sensor"), ReplyWrongData, "dty", "wrong_data"},
		{"unknown stc", with("stc", "0001"), ReplyWrongData, "stc", "wrong_data"},
		{"unknown state", with("state", "ajar"), ReplyWrongData, "state", "wrong_data"},
		{"resident is a name", with("resident", "Anna Svensson"), ReplyWrongData, "resident", "wrong_data"},
		{"unit with slash", with("unit", "u/1"), ReplyWrongData, "unit", "wrong_data"},
		{"room with space", with("room", "rum 12"), ReplyWrongData, "room", "wrong_data"},
		{"lat > 90", with("pos", map[string]any{"lat": 90.0001, "lon": 0}), ReplyWrongData, "pos.lat", "wrong_data"},
		{"lat < -90", with("pos", map[string]any{"lat": -91, "lon": 0}), ReplyWrongData, "pos.lat", "wrong_data"},
		{"lon > 180", with("pos", map[string]any{"lat": 0, "lon": 180.5}), ReplyWrongData, "pos.lon", "wrong_data"},
		{"lon < -180", with("pos", map[string]any{"lat": 0, "lon": -181}), ReplyWrongData, "pos.lon", "wrong_data"},
		{"negative accuracy", with("pos", map[string]any{"lat": 0, "lon": 0, "acc": -1}), ReplyWrongData, "pos.acc", "wrong_data"},
		{"lat out of float range", []byte(strings.Replace(string(with("pos", map[string]any{"lat": 1, "lon": 0})), `"lat":1`, `"lat":1e400`, 1)), ReplyWrongData, "pos.lat", "wrong_data"},
		{"battery > 100", with("battery", 101), ReplyWrongData, "battery", "wrong_data"},
		{"battery < 0", with("battery", -1), ReplyWrongData, "battery", "wrong_data"},
		{"unknown field", with("name", "x"), ReplyWrongData, "", "wrong_data"},
		{"unknown field in pos", with("pos", map[string]any{"lat": 0, "lon": 0, "alt": 3}), ReplyWrongData, "", "wrong_data"},

		// Topic is the truth for site and gateway.
		{"other site", with("site", "site-b"), ReplyWrongData, "site", "wrong_data"},
		{"other gateway", with("gateway", "gw-2"), ReplyWrongData, "gateway", "wrong_data"},

		// Not JSON at all.
		{"empty", []byte(``), ReplyInvalidFormat, "", "invalid_format"},
		{"whitespace", []byte(" \n\t"), ReplyInvalidFormat, "", "invalid_format"},
		{"not json", []byte(`hello`), ReplyInvalidFormat, "", "invalid_format"},
		{"truncated", with()[:40], ReplyInvalidFormat, "", "invalid_format"},
		{"trailing garbage", append(with(), []byte(` x`)...), ReplyInvalidFormat, "", "invalid_format"},
		{"two objects", append(with(), with()...), ReplyInvalidFormat, "", "invalid_format"},

		// Size.
		{"over 8 KiB", append(with(), make([]byte, MaxPayload)...), ReplyTooLong, "", "too_long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Decode("site-a", "gw-1", tc.payload)
			if err == nil {
				t.Fatalf("accepted: %+v", ev)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v, want *DecodeError", err, err)
			}
			if de.Code != tc.code || de.Field != tc.field {
				t.Errorf("code %d field %q, want %d %q (%v)", de.Code, de.Field, tc.code, tc.field, err)
			}
			if de.Label() != tc.label {
				t.Errorf("label %q, want %q", de.Label(), tc.label)
			}
			if !strings.HasPrefix(err.Error(), "event: ") {
				t.Errorf("error lacks the package prefix: %q", err)
			}
			if tc.field != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.field)) {
				t.Errorf("error does not name field %q: %q", tc.field, err)
			}
			if !reflect.DeepEqual(ev, Event{}) {
				t.Errorf("a refused payload returned a partly filled event: %+v", ev)
			}
		})
	}
}

func TestDecodeAtSizeLimit(t *testing.T) {
	b := with()
	pad := MaxPayload - len(b)
	exact := append(append([]byte{}, b[:len(b)-1]...), []byte(strings.Repeat(" ", pad)+"}")...)
	if len(exact) != MaxPayload {
		t.Fatalf("test payload is %d bytes", len(exact))
	}
	if _, err := Decode("site-a", "gw-1", exact); err != nil {
		t.Errorf("payload of exactly %d bytes refused: %v", MaxPayload, err)
	}
	_, err := Decode("site-a", "gw-1", append(exact, ' '))
	var de *DecodeError
	if !errors.As(err, &de) || de.Code != ReplyTooLong {
		t.Errorf("payload of %d bytes: %v, want code 1", MaxPayload+1, err)
	}
}

// Error messages are logged and sent back to the gateway: they name the
// field and never echo what the payload carried in it.
func TestDecodeNeverEchoesPayloadValues(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"long id", with("id", secret+secret+secret)},
		{"device", with("device", secret)},
		{"dty", with("dty", secret)},
		{"stc", with("stc", secret)},
		{"state", with("state", secret)},
		{"resident", with("resident", secret)},
		{"unit", with("unit", secret)},
		{"room", with("room", secret)},
		{"ts", with("ts", secret)},
		{"site", with("site", secret)},
		{"gateway", with("gateway", secret)},
		{"v as string", with("v", secret)},
		{"battery as string", with("battery", secret)},
		{"pos as string", with("pos", secret)},
		{"lat as string", with("pos", map[string]any{"lat": secret, "lon": 1})},
		{"unknown field value", with("note", secret)},
		{"seq as string", with("seq", secret)},
		{"syntax error after secret", []byte(`{"v":1,"id":"` + secret + `" "device"`)},
		{"bare secret", []byte(secret)},
		{"trailing secret", append(with(), []byte(" "+secret)...)},
		{"too long", append(with("id", secret), []byte(strings.Repeat(" "+secret, MaxPayload/len(secret)+1))...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode("site-a", "gw-1", tc.payload)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, part := range []string{"Sven", "Secretsson", "19270101", "9999"} {
				if strings.Contains(msg, part) {
					t.Errorf("error %q leaks %q from the payload", msg, part)
				}
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	bat := 42
	for _, e := range []Event{
		{V: 1, ID: "e1", Device: "knapp-12", Type: PersonalTrigger, Status: ManualAlarm, State: StatePressed,
			Time: time.Date(2026, 3, 29, 1, 59, 59, 123456789, time.UTC)},
		{ID: "e2", Device: "gps.1", Type: Tracker, Resident: "r-1", Unit: "u", Room: "r",
			Time:     time.Date(2026, 10, 25, 2, 30, 0, 0, time.FixedZone("CEST", 2*3600)),
			Position: &Position{Lat: -33.9, Lon: 151.2, Accuracy: 4.5}, Battery: &bat, Seq: 1 << 40},
		{V: 1, ID: strings.Repeat("i", 64), Device: strings.Repeat("d", 64), Type: DoorSensor, State: StateOpen,
			Time: time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC), Position: &Position{Lat: 90, Lon: -180}},
	} {
		e := e
		e.Site, e.Gateway = "site-a", "gw-1"
		b, err := Encode(&e)
		if err != nil {
			t.Fatalf("encode %+v: %v", e, err)
		}
		if e.V != Version {
			t.Errorf("Encode left V at %d", e.V)
		}
		got, err := Decode("site-a", "gw-1", b)
		if err != nil {
			t.Fatalf("decode of encoded %s: %v", b, err)
		}
		if !got.Time.Equal(e.Time) {
			t.Errorf("time %v, want %v", got.Time, e.Time)
		}
		got.Time = e.Time
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
		// The encoded form carries site and gateway; another topic refuses it.
		if _, err := Decode("site-b", "gw-1", b); err == nil {
			t.Error("encoded event accepted on another site's topic")
		}
	}
}

func TestTopics(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{EventTopic("s", "g"), "vaka/v1/s/g/event"},
		{StatusTopic("s", "g"), "vaka/v1/s/g/status"},
		{HeartbeatTopic("s", "g"), "vaka/v1/s/g/heartbeat"},
		{ReplyTopic("s", "g"), "vaka/v1/s/g/reply"},
		{GatewayPrefix("s", "g"), "vaka/v1/s/g/"},
	} {
		if tc.got != tc.want {
			t.Errorf("topic %q, want %q", tc.got, tc.want)
		}
	}
	long := strings.Repeat("x", 65)
	for _, tc := range []struct {
		topic string
		want  Topic
		ok    bool
	}{
		{"vaka/v1/site-a/gw-1/event", Topic{"site-a", "gw-1", "event"}, true},
		{"vaka/v1/site-a/gw-1/status", Topic{"site-a", "gw-1", "status"}, true},
		{"vaka/v1/s.1/G_2/heartbeat", Topic{"s.1", "G_2", "heartbeat"}, true},
		{"vaka/v1/s/g/anything", Topic{"s", "g", "anything"}, true}, // leaf is the caller's to judge
		{EventTopic("a", "b"), Topic{"a", "b", "event"}, true},
		{"vaka/v2/s/g/event", Topic{}, false},
		{"vaka/v1/s/g", Topic{}, false},
		{"vaka/v1/s/g/event/extra", Topic{}, false},
		{"vaka/v1//g/event", Topic{}, false},
		{"vaka/v1/s//event", Topic{}, false},
		{"vaka/v1/s+/g/event", Topic{}, false},
		{"vaka/v1/#/g/event", Topic{}, false},
		{"vaka/v1/s p/g/event", Topic{}, false},
		{"vaka/v1/" + long + "/g/event", Topic{}, false},
		{"/vaka/v1/s/g/event", Topic{}, false},
		{"vaka/v1", Topic{}, false},
		{"", Topic{}, false},
		{"$SYS/broker/load", Topic{}, false},
	} {
		got, ok := ParseTopic(tc.topic)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v, %v", tc.topic, got, ok, tc.want, tc.ok)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, s := range []string{"a", "Z", "0", "site-a", "gw_1", "r.17", strings.Repeat("x", 64), "A-b_c.9"} {
		if err := ValidName(s); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", strings.Repeat("x", 65), "a b", "a/b", "a+b", "a#b", "å", "ä", "a\x00", "a\n", "Anna Svensson", "a:b", "..\\x", "$SYS"} {
		if err := ValidName(s); err == nil {
			t.Errorf("ValidName(%q) = nil, want an error", s)
		}
	}
}

func TestDeviceTypes(t *testing.T) {
	for code, name := range deviceTypeNames {
		if !code.Known() || code.Name() != name {
			t.Errorf("%s: known %v name %q", code, code.Known(), code.Name())
		}
		for _, s := range []string{string(code), name} {
			got, err := ParseDeviceType(s)
			if err != nil || got != code {
				t.Errorf("ParseDeviceType(%q) = %q, %v; want %q", s, got, err, code)
			}
		}
	}
	if _, err := ParseDeviceType("dorr"); err == nil {
		t.Error("unknown type name parsed")
	}
	if DeviceType("9999").Known() || DeviceType("9999").Name() != "unknown" {
		t.Error("9999 is not a known device type")
	}
	if !PersonalTrigger.IsTrigger() || !FixedTrigger.IsTrigger() || FallDetector.IsTrigger() || DoorSensor.IsTrigger() {
		t.Error("IsTrigger wrong")
	}
	if !ManualAlarm.Known() || ManualAlarm.Name() != "manual_alarm" || StatusCode("0001").Known() || StatusCode("0001").Name() != "unknown" {
		t.Error("status code names wrong")
	}
}

// FuzzDecode: Decode never panics; whatever it accepts re-encodes and
// decodes to an equal event; whatever it refuses is a DecodeError with a
// SCAIP code.
func FuzzDecode(f *testing.F) {
	for _, b := range [][]byte{
		with(), with("pos", map[string]any{"lat": 58.3, "lon": 11.9, "acc": 12}, "battery", 80, "seq", 7),
		with("v", del), with("ts", "x"), with("site", "site-a"), with("site", "other"), with("battery", 101),
		[]byte(`{"v":1,"id":"a","device":"d","dty":"0014","state":"open","ts":"2026-10-25T02:30:00+02:00"}`),
		[]byte(`{"v":1,"id":"\u00e5\ud800","device":"d","dty":"0014","ts":"2026-10-25T02:30:00.999999999-23:59"}`),
		[]byte(``), []byte(`null`), []byte(`[]`), []byte(`{"v":1e400}`), []byte(`{"pos":{"lat":NaN}}`),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := Decode("site-a", "gw-1", payload)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a DecodeError: %v", err, err)
			}
			switch de.Code {
			case ReplyTooLong, ReplyInvalidFormat, ReplyWrongData, ReplyMandatoryMissed:
			default:
				t.Fatalf("reply code %d", de.Code)
			}
			return
		}
		if ev.Site != "site-a" || ev.Gateway != "gw-1" {
			t.Fatalf("accepted event names %q/%q, not the topic's", ev.Site, ev.Gateway)
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("accepted event does not validate: %v", err)
		}
		b, err := Encode(&ev)
		if err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		again, err := Decode("site-a", "gw-1", b)
		if err != nil {
			t.Fatalf("re-encoded event refused: %v\n%s", err, b)
		}
		if !again.Time.Equal(ev.Time) {
			t.Fatalf("time changed: %v vs %v", again.Time, ev.Time)
		}
		again.Time = ev.Time
		if !reflect.DeepEqual(again, ev) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name    string
		payload []byte
	}{
		{"call_button", with()},
		{"tracker", with("dty", "0051", "state", del, "stc", del, "pos", map[string]any{"lat": 58.3, "lon": 11.9, "acc": 12}, "battery", 80)},
		{"refused", with("dty", "9999")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.payload)))
			for b.Loop() {
				_, _ = Decode("site-a", "gw-1", bc.payload)
			}
		})
	}
}
