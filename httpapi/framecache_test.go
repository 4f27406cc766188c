package httpapi

import (
	"fmt"
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
