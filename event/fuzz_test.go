package event

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzEventDecode: the payload decoder never panics, never echoes payload
// content in its error, and whatever it accepts round-trips.
func FuzzEventDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":"a-1","device":"knapp-12","dty":"0003","stc":"0010","state":"pressed","ts":"2026-11-23T03:00:00Z"}`,
		`{"v":1,"id":"a-2","device":"gps","dty":"0051","ts":"2026-11-23T03:00:00Z","pos":{"lat":58.3,"lon":11.9,"acc":12},"battery":80}`,
		`{"v":1}`, `not json`, `{"v":1,"id":"x","device":"d","dty":"0014","ts":"2026-11-23T03:00:00Z","site":"other"}`,
		``, `[]`, `{"v":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := Decode("site-a", "gw-1", payload)
		if err != nil {
			msg := err.Error()
			if len(payload) >= 12 && strings.Contains(msg, string(payload)) {
				t.Fatalf("error echoes the payload: %q", msg)
			}
			return
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

func TestDecodeErrorsNameFieldsNotValues(t *testing.T) {
	const secret = "Karin Andersson 19340212-1234"
	for _, tc := range []struct {
		payload string
		code    ReplyCode
		field   string
	}{
		{`{"v":1,"id":"a","device":"d","dty":"0003","ts":"2026-11-23T03:00:00Z","state":"` + secret + `"}`, ReplyWrongData, "state"},
		{`{"v":1,"id":"a","dty":"0003","ts":"2026-11-23T03:00:00Z"}`, ReplyMandatoryMissed, "device"},
		{`{"v":1,"id":"a","device":"d","ts":"2026-11-23T03:00:00Z"}`, ReplyMandatoryMissed, "dty"},
		{`{"v":1,"id":"a","device":"d","dty":"0003"}`, ReplyMandatoryMissed, "ts"},
		{`{"v":1,"id":"a","device":"d","dty":"9999","ts":"2026-11-23T03:00:00Z"}`, ReplyWrongData, "dty"},
		{`{"v":1,"id":"a","device":"d","dty":"0003","ts":"2026-11-23T03:00:00Z","resident":"` + secret + `"}`, ReplyWrongData, "resident"},
		{`{"v":1,"id":"a","device":"d","dty":"0003","ts":"` + secret + `"}`, ReplyWrongData, ""},
		{`{"v":1,"id":"a","device":"d","dty":"0003","ts":"2026-11-23T03:00:00Z","battery":140}`, ReplyWrongData, "battery"},
		{`{"v":1,"id":"a","device":"d","dty":"0003","ts":"2026-11-23T03:00:00Z","pos":{"lat":95,"lon":1}}`, ReplyWrongData, "pos.lat"},
		{`{"v":1,"id":"a","device":"d","dty":"0003","ts":"2026-11-23T03:00:00Z","gateway":"gw-2"}`, ReplyWrongData, "gateway"},
		{`{"v":1,"id":"a","device":"d","dty":"0003","ts":"2026-11-23T03:00:00Z","name":"` + secret + `"}`, ReplyWrongData, ""},
		{`{"v":1,"id":"a"` + secret, ReplyInvalidFormat, ""},
		{`{"v":1,"id":"a","device":"d","dty":"0003","ts":"2026-11-23T03:00:00Z"} {}`, ReplyInvalidFormat, ""},
		{strings.Repeat(" ", MaxPayload+1), ReplyTooLong, ""},
	} {
		_, err := Decode("site-a", "gw-1", []byte(tc.payload))
		de, ok := err.(*DecodeError)
		if !ok {
			t.Errorf("%.60s…: error %v, want a DecodeError", tc.payload, err)
			continue
		}
		if de.Code != tc.code || de.Field != tc.field {
			t.Errorf("%.60s…: code %d field %q, want %d %q (%v)", tc.payload, de.Code, de.Field, tc.code, tc.field, err)
		}
		if strings.Contains(err.Error(), "Karin") || strings.Contains(err.Error(), "1934") {
			t.Errorf("error leaks payload content: %v", err)
		}
	}
}
