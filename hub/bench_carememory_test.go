package hub

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/store"
)

// BenchmarkOpenCareAlarmMemory opens N care alarms (a call-button press on
// N buttons, each its own alarm, VAKA_MEM_ALARMS as for
// BenchmarkOpenAlarmMemory) in a hub whose notifier routes them, as
// service.Start wires it, and reports the heap both keep per open alarm:
// the hub's alarm with its raise and notify steps, and the notifier's
// escalation track with its copy of the alarm's labels. It then restarts
// both as service.Start does (the hub rebuilt from the journal, the
// notifier resuming each open alarm's escalation) and reports the same
// after the restart, less what a hub and notifier cost with no alarm.
//
//	go test ./hub/ -run '^$' -bench BenchmarkOpenCareAlarmMemory -benchtime 1x
func BenchmarkOpenCareAlarmMemory(b *testing.B) {
	n := memAlarms(b)
	// The buttons in a CSV inventory (sites[].devices_file), as a region's
	// config keeps them: 250,000 inline would pass the YAML's 4 MB limit.
	y := strings.Replace(stormYAML(0), "          - {id: btn-a, type: personal_trigger, resident: r-a, unit: u, room: \"12\"}\n", "", 1)
	y = strings.Replace(y, "    gateways:\n", "    devices_file: inventory.csv\n    gateways:\n", 1)
	inv := bytes.NewBufferString("gateway,id,type,resident,unit,room\n")
	for i := range n {
		fmt.Fprintf(inv, "gw,b%d,personal_trigger,r%d,u,r%d\n", i, i, i%400)
	}
	cdir := b.TempDir()
	if err := os.WriteFile(filepath.Join(cdir, "hub.yaml"), []byte(y), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cdir, "inventory.csv"), inv.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := new(Config)
	if err := config.Load(filepath.Join(cdir, "hub.yaml"), cfg); err != nil {
		b.Fatal(err)
	}
	tree, err := cfg.RouteTree()
	if err != nil {
		b.Fatal(err)
	}
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = fmt.Appendf(nil, `{"v":1,"id":"p-%d","device":"b%d","dty":"0003","state":"pressed","ts":"2026-11-23T13:00:00Z"}`, i, i)
	}
	var perAlarm, restarted float64
	for range b.N {
		dir := b.TempDir()
		j, _, err := store.Open(dir, store.Options{})
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
		h, d = nil, nil
		restarted = restartedCare(b, cfg, tree, dir, n)
	}
	b.ReportMetric(perAlarm, "B/open-alarm")
	b.ReportMetric(restarted, "B/open-alarm-restarted")
	b.ReportMetric(float64(n), "alarms")
}

// restartedCare rebuilds the hub from the journal in dir and resumes the
// notifier's escalations, as service.Start does, and returns the heap
// per open alarm beyond what the same hub and notifier hold with no
// alarm (an empty journal).
func restartedCare(b *testing.B, cfg *Config, tree *notify.Tree, dir string, n int) float64 {
	start := func(dir string) (*Hub, *notify.Dispatcher, *store.Journal) {
		rb := NewRebuilder(nil)
		j, err := store.OpenEach(dir, store.Options{}, rb.Add)
		if err != nil {
			b.Fatal(err)
		}
		// The alarms were raised at dayTime by the hub's clock: on the
		// same clock for both, none is overdue, so no escalation step is
		// taken that the live figure did not have.
		c := newClock(dayTime)
		d := notify.New(notify.Options{Tree: tree, Now: c.Now})
		h, err := New(Options{Config: cfg, Journal: j, Rebuilt: rb, Now: c.Now, Observers: []Observer{d}})
		if err != nil {
			b.Fatal(err)
		}
		h.SetRouter(d)
		var open []*alarm.Alarm
		for _, a := range h.Alarms() {
			if a.Open() {
				open = append(open, a)
			}
		}
		d.Start(h, open)
		return h, d, j
	}
	settle := func(d *notify.Dispatcher) {
		deadline := time.Now().Add(30 * time.Second)
		for care, tech := d.QueueLen(); care+tech > 0; care, tech = d.QueueLen() {
			if time.Now().After(deadline) {
				b.Fatal("notifier queue not drained within 30 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
	}
	base := liveHeap()
	h0, d0, j0 := start(b.TempDir())
	settle(d0)
	empty := liveHeap() - base
	runtime.KeepAlive(h0)
	d0.Close()
	j0.Close()
	h0, d0 = nil, nil

	base = liveHeap()
	h, d, j := start(dir)
	settle(d)
	if got := h.openCount(); got != n {
		b.Fatalf("after restart %d alarms open, want %d", got, n)
	}
	per := (float64(liveHeap()) - float64(base) - float64(empty)) / float64(n)
	if p := os.Getenv("VAKA_MEM_PROFILE"); p != "" {
		writeHeapProfile(b, p+".care-restarted")
	}
	runtime.KeepAlive(h)
	d.Close()
	j.Close()
	return per
}
