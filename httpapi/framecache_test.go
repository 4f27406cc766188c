package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/alarm"
)

// The frame cache encodes a change once however many screens ask, keeps
// the last frameCacheSize changes and no more (its index does not grow),
// and encodes an evicted change again rather than serving a wrong frame.
func TestFrameCacheEncodesOnceAndStaysBounded(t *testing.T) {
	var c frameCache
	encodes := 0
	get := func(a *alarm.Alarm) string {
		b, err := c.frame(a, func() any { encodes++; return a })
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	first := &alarm.Alarm{ID: "A0", Kind: alarm.KindCall}
	f0 := get(first)
	for range 10 {
		if get(first) != f0 {
			t.Fatal("a cached frame changed")
		}
	}
	if encodes != 1 {
		t.Fatalf("%d encodings for one change asked 11 times", encodes)
	}
	for i := range frameCacheSize {
		get(&alarm.Alarm{ID: fmt.Sprint("B", i), Kind: alarm.KindCall})
	}
	if len(c.at) != frameCacheSize {
		t.Fatalf("index holds %d entries, want %d", len(c.at), frameCacheSize)
	}
	if _, ok := c.at[first]; ok {
		t.Fatal("the oldest change was not evicted")
	}
	n := encodes
	if get(first) != f0 || encodes != n+1 {
		t.Fatalf("an evicted change: %d new encodings, want 1 (and the same frame)", encodes-n)
	}
}

// A frame is exactly what json.Marshal gives, framed as an SSE alarm
// event, for plain alarms and for a class's view, and the pooled encoder
// leaves nothing of one frame in the next.
func TestEncodeFrameIsMarshalFramed(t *testing.T) {
	vs := []any{
		&alarm.Alarm{ID: "A1", Kind: alarm.KindCall, Note: "<b>&\u2028</b>", Site: "s"},
		alarmView{Alarm: &alarm.Alarm{ID: "A2", Kind: alarm.KindFall}, Where: &Where{}},
		&alarm.Alarm{ID: "A3", Kind: alarm.KindTechnical, Note: strings.Repeat("x", 3<<20)},
		&alarm.Alarm{ID: "A4"},
	}
	for _, v := range vs {
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeFrame(v)
		if err != nil {
			t.Fatal(err)
		}
		if want := "event: alarm\ndata: " + string(js) + "\n\n"; string(got) != want {
			t.Fatalf("frame %.200q, want %.200q", got, want)
		}
	}
	if _, err := encodeFrame(func() {}); err == nil {
		t.Fatal("an unencodable value gave no error")
	}
	if got, _ := encodeFrame(&alarm.Alarm{ID: "A5"}); !strings.HasPrefix(string(got), "event: alarm\ndata: {\"id\":\"A5\"") {
		t.Fatalf("after an error: %.100q", got)
	}
}
