package hub

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/store"
)

// BenchmarkRaiseCallAlarm is a press on a new call button each time (a
// raise, not a repeat), alone and with the notifier as the hub's router:
// the difference is the cost of journaling the first notify step with the
// raise (one more write(2)), so that staff get one frame.
func BenchmarkRaiseCallAlarm(b *testing.B) {
	const buttons = 1 << 14
	var y strings.Builder
	y.WriteString(strings.Replace(stormYAML(0), "          - {id: btn-a, type: personal_trigger, resident: r-a, unit: u, room: \"12\"}\n", "", 1))
	for i := range buttons {
		fmt.Fprintf(&y, "          - {id: b%d, type: personal_trigger, unit: u, room: r%d}\n", i, i)
	}
	cfg := loadConfig(b, y.String())
	payloads := make([][]byte, buttons)
	for i := range payloads {
		payloads[i] = fmt.Appendf(nil, `{"v":1,"id":"p-%d","device":"b%d","dty":"0003","state":"pressed","ts":"2026-11-23T13:00:00Z"}`, i, i)
	}
	for _, routed := range []bool{false, true} {
		b.Run(map[bool]string{false: "alone", true: "with-notify-step"}[routed], func(b *testing.B) {
			if b.N > buttons {
				b.Skipf("at most %d raises (-benchtime %dx)", buttons, buttons)
			}
			j, replay, err := store.Open(b.TempDir(), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			var obs []Observer
			var d *notify.Dispatcher
			if routed {
				tree, err := cfg.RouteTree()
				if err != nil {
					b.Fatal(err)
				}
				d = notify.New(notify.Options{Tree: tree})
				obs = append(obs, d)
			}
			c := newClock(dayTime)
			h, err := New(Options{Config: cfg, Journal: j, Replay: replay, Now: c.Now, Observers: obs})
			if err != nil {
				b.Fatal(err)
			}
			if d != nil {
				h.SetRouter(d)
				d.Start(h, nil)
				defer d.Close()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if r := h.HandleEvent("s", "gw", payloads[i]); r.Code != event.ReplyOK {
					b.Fatalf("reply %+v", r)
				}
			}
		})
	}
}
