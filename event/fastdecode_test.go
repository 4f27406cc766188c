package event

import (
	"reflect"
	"testing"
)

// The payloads gateways send take the fast path; the rest fall back to
// encoding/json, which still decides every refusal.
func TestDecodeFastTakesCommonShapes(t *testing.T) {
	for _, p := range []string{
		string(with()),
		string(with("battery", 80, "seq", 7)),
		`{"v":1,"id":"e1","device":"p1-3","dty":"0018","state":"motion","seq":12,"ts":"2026-11-23T10:00:00.123456789Z"}`,
		" {\n\t\"v\" : 1 , \"id\":\"a\",\"device\":\"d\",\"dty\":\"0014\",\"state\":\"open\",\"ts\":\"2026-10-25T02:30:00+02:00\" } \n",
	} {
		var ev Event
		if !decodeFast([]byte(p), &ev) {
			t.Errorf("fast path refused %s", p)
		}
	}
	for _, p := range []string{
		string(with("pos", map[string]any{"lat": 58.3, "lon": 11.9})), // nested
		`{"v":1,"ID":"e1"}`,         // another spelling of a key
		`{"v":1,"id":"a","id":"b"}`, // duplicate key
		`{"v":1,"id":"a\u0041"}`,    // escape
		`{"v":1,"id":"å"}`,          // non-ASCII
		`{"v":1.0}`, `{"v":1e0}`, `{"v":01}`, `{"v":null}`, `{"seq":-1}`,
		`{"v":1}x`, `{"v":1}{}`, `{"v":1,}`, `{"v":1`, `{"x":1}`, `[]`, ``,
	} {
		var ev Event
		if decodeFast([]byte(p), &ev) {
			t.Errorf("fast path took %s", p)
		}
	}
}

// Where the fast path answers, encoding/json gives the same event.
func FuzzDecodeFastMatchesJSON(f *testing.F) {
	for _, p := range []string{
		string(with()), string(with("battery", 80, "seq", 7)), string(with("ts", "2026-13-01T00:00:00Z")),
		`{"v":1,"id":"e1","device":"p1-3","dty":"0018","state":"motion","seq":12,"ts":"2026-11-23T10:00:00.123456789Z"}`,
		`{"v":-0,"battery":-5,"seq":18446744073709551615}`, `{}`, ` { } `, `{"ts":"2026-10-25T02:30:00.9-23:59"}`,
		`{"v":1,"id":"a","ts":"2026-10-25T02:30:00+24:00"}`, `{"stc":"0010","dty":"0003","state":"pressed"}`,
	} {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var fast Event
		if !decodeFast(p, &fast) {
			return
		}
		var slow Event
		if err := decodeJSON(p, &slow); err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, p)
		}
		if !fast.Time.Equal(slow.Time) || fast.Time.Format(timeCheck) != slow.Time.Format(timeCheck) {
			t.Fatalf("time differs: %v vs %v for %q", fast.Time, slow.Time, p)
		}
		fast.Time = slow.Time
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("events differ for %q:\nfast %+v\njson %+v", p, fast, slow)
		}
	})
}

const timeCheck = "2006-01-02T15:04:05.999999999Z07:00 MST"
