package hub

import (
	"fmt"
	"testing"

	"github.com/vaka-care/vaka/event"
)

// BenchmarkHandleEventAlarm: call-button presses, each with a fresh id, on
// one open alarm: every event is evaluated, journaled (a repeat) and fanned
// out: the alarm path's own cost, journal write included.
func BenchmarkHandleEventAlarm(b *testing.B) {
	c := newClock(dayTime)
	h, _ := openHub(b, b.TempDir(), c)
	const n = 1 << 17
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = fmt.Appendf(nil, `{"v":1,"id":"p-%d","device":"btn-a","dty":"0003","state":"pressed","ts":"2026-11-23T13:00:00Z"}`, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if r := h.HandleEvent("s", "gw", payloads[i%n]); r.Code != event.ReplyOK {
			b.Fatalf("reply %+v", r)
		}
		i++
	}
}
