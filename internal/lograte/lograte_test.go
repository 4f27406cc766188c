package lograte

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var l Limiter
	t0 := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	if ok, a := l.Allow("bad", t0, nil); !ok || len(a) != 0 {
		t.Fatalf("first line: %v %v", ok, a)
	}
	for i := range 5 {
		if ok, _ := l.Allow("bad", t0.Add(time.Duration(i+1)*100*time.Millisecond), nil); ok {
			t.Fatalf("line %d within the second was allowed", i)
		}
	}
	if ok, _ := l.Allow("other", t0.Add(time.Millisecond), nil); !ok {
		t.Fatal("another reason was held back")
	}
	ok, a := l.Allow("bad", t0.Add(time.Second), []any{"k", "v"})
	if !ok || len(a) != 4 || a[2] != "not_logged" || a[3] != 5 {
		t.Fatalf("after a second: %v %v", ok, a)
	}
	// A clock stepped back does not silence a reason.
	if ok, _ := l.Allow("bad", t0.Add(-time.Hour), nil); !ok {
		t.Fatal("a clock stepped back held the line back")
	}
}
