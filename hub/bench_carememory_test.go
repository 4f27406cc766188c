package hub

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/store"
)

// BenchmarkOpenCareAlarmMemory opens N care alarms (a call-button press on
// N buttons, each its own alarm, VAKA_MEM_ALARMS as for
// BenchmarkOpenAlarmMemory) in a hub whose notifier routes them, as
// service.Start wires it, and reports the heap both keep per open alarm:
// the hub's alarm with its raise and notify steps, and the notifier's
// escalation track with its copy of the alarm's labels.
//
//	go test ./hub/ -run '^$' -bench BenchmarkOpenCareAlarmMemory -benchtime 1x
func BenchmarkOpenCareAlarmMemory(b *testing.B) {
	n := memAlarms(b)
	var y strings.Builder
	y.WriteString(strings.Replace(stormYAML(0), "          - {id: btn-a, type: personal_trigger, resident: r-a, unit: u, room: \"12\"}\n", "", 1))
	for i := range n {
		fmt.Fprintf(&y, "          - {id: b%d, type: personal_trigger, resident: r%d, unit: u, room: r%d}\n", i, i, i%400)
	}
	cfg := loadConfig(b, y.String())
	tree, err := cfg.RouteTree()
	if err != nil {
		b.Fatal(err)
	}
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = fmt.Appendf(nil, `{"v":1,"id":"p-%d","device":"b%d","dty":"0003","state":"pressed","ts":"2026-11-23T13:00:00Z"}`, i, i)
	}
	var perAlarm float64
	for range b.N {
		j, _, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		d := notify.New(notify.Options{Tree: tree})
		c := newClock(dayTime)
		h, err := New(Options{Config: cfg, Journal: j, Now: c.Now, Observers: []Observer{d}})
		if err != nil {
			b.Fatal(err)
		}
		h.SetRouter(d)
		d.Start(h, nil)
		base := liveHeap()
		b.StartTimer()
		for i := range n {
			if r := h.HandleEvent("s", "gw", payloads[i]); r.Code != event.ReplyOK {
				b.Fatalf("reply %+v", r)
			}
		}
		// The notifier takes its queue in its own goroutine: until it is
		// empty, the heap holds queued snapshots that are not per alarm.
		deadline := time.Now().Add(30 * time.Second)
		for {
			if care, tech := d.QueueLen(); care == 0 && tech == 0 {
				time.Sleep(20 * time.Millisecond)
				if care, tech := d.QueueLen(); care == 0 && tech == 0 {
					break
				}
			}
			if time.Now().After(deadline) {
				b.Fatal("notifier queue not drained within 30 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		if got := h.openCount(); got != n {
			b.Fatalf("%d alarms open, want %d", got, n)
		}
		perAlarm = float64(liveHeap()-base) / float64(n)
		if p := os.Getenv("VAKA_MEM_PROFILE"); p != "" {
			writeHeapProfile(b, p+".care")
		}
		runtime.KeepAlive(h)
		d.Close()
		j.Close()
	}
	b.ReportMetric(perAlarm, "B/open-alarm")
	b.ReportMetric(float64(n), "alarms")
}
