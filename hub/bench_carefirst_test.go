package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/feed"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/store"
)

// carefirstYAML is stormYAML(silent) with presses more call buttons, each
// pressed once (a raise each, as in vaka-load storm).
func carefirstYAML(silent, presses int) string {
	var y strings.Builder
	y.WriteString(stormYAML(silent))
	for i := range presses {
		fmt.Fprintf(&y, "          - {id: cb%d, type: personal_trigger, unit: u, room: c%d}\n", i, i)
	}
	return y.String()
}

// BenchmarkStormPress reproduces issue 20's storm in process: 50,000
// supervised door sensors whose deadlines all expire in one Tick (each a
// device_silent raise, grouped by the notifier, fed to a staff stream that
// a reader drains), while a call button is pressed every 2 ms on another
// goroutine through the real entry point (Hub.HandleEvent, as the broker
// hook calls it). Reported: the presses' latency from their scheduled time
// to HandleEvent's return (press-p50/p99/max-ms: the wait for the
// processor and the hub's lock included, the part of the storm's "written
// → raised" that is the hub's; handle-p99-ms is HandleEvent alone, from
// the moment the press's goroutine ran), and the Tick's wall time
// (tick-ms). os-wait-ms is how long the kernel kept the process's threads
// off a CPU during the Tick (a busy machine's share, summed over threads).
// Run it with -cpu 1,2: with one processor the press's goroutine competes
// with the Tick loop, the notifier, the stream reader and the collector.
//
//	go test -run '^$' -bench BenchmarkStormPress -benchtime 3x -cpu 1,2 ./hub/
func BenchmarkStormPress(b *testing.B) {
	const (
		silent  = 50000
		buttons = 4096
		every   = 2 * time.Millisecond
	)
	cfg := loadConfig(b, carefirstYAML(silent, buttons))
	tree, err := cfg.RouteTree()
	if err != nil {
		b.Fatal(err)
	}
	// With more than one processor the Tick loop pauses between slices
	// (techPause); the sub-benchmarks compare that with runtime.Gosched.
	for _, pause := range []time.Duration{techPause, 0} {
		name := fmt.Sprintf("yield=sleep%dus", pause.Microseconds())
		if pause == 0 {
			name = "yield=gosched"
		}
		b.Run(name, func(b *testing.B) {
			defer func(p time.Duration) { techPause = p }(techPause)
			techPause = pause
			stormPress(b, cfg, tree, silent, buttons, every)
		})
	}
}

// stormPress is one BenchmarkStormPress run: b.N storms.
func stormPress(b *testing.B, cfg *Config, tree *notify.Tree, silent, buttons int, every time.Duration) {
	var lats, inHub []time.Duration
	var tick, waited, forget time.Duration
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		j, replay, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		c := newClock(dayTime)
		d := notify.New(notify.Options{Tree: tree, Now: c.Now})
		h, err := New(Options{Config: cfg, Journal: j, Replay: replay, Now: c.Now, Observers: []Observer{d}})
		if err != nil {
			b.Fatal(err)
		}
		h.SetRouter(d)
		d.Start(h, nil)
		q, cancel := h.Feed()
		readerDone, stopReader := make(chan struct{}), make(chan struct{})
		go readFeed(q, stopReader, readerDone)
		c.Add(40 * time.Second)
		h.HandleHeartbeat("s", "gw", nil)
		c.Add(21 * time.Second)
		payloads := make([][]byte, buttons)
		for i := range payloads {
			payloads[i] = fmt.Appendf(nil, `{"v":1,"id":"cf-%d","device":"cb%d","dty":"0003","state":"pressed","ts":%q}`,
				i, i, c.Now().UTC().Format(time.RFC3339Nano))
		}
		tickDone := make(chan struct{})
		var pressed, handled []time.Duration
		var wg sync.WaitGroup
		wg.Add(1)
		b.StartTimer()
		start, wait0 := time.Now(), osWait()
		go func() {
			defer wg.Done()
			for i := 0; i < buttons; i++ {
				at := start.Add(time.Duration(i+1) * every)
				select {
				case <-tickDone:
					return
				case <-time.After(time.Until(at)):
				}
				woke := time.Now()
				if r := h.HandleEvent("s", "gw", payloads[i]); r.Code != event.ReplyOK {
					b.Errorf("press %d: %+v", i, r)
					return
				}
				pressed = append(pressed, time.Since(at))
				handled = append(handled, time.Since(woke))
			}
		}()
		h.Tick()
		tick += time.Since(start)
		waited += osWait() - wait0
		close(tickDone)
		wg.Wait()
		b.StopTimer()
		lats = append(lats, pressed...)
		inHub = append(inHub, handled...)
		t0 := time.Now()
		h.forget(c.Now())
		forget += time.Since(t0)
		if n := countRule(h, "device_silent"); n != silent {
			b.Fatalf("%d device_silent raised, want %d", n, silent)
		}
		close(stopReader)
		<-readerDone
		cancel()
		d.Close()
		j.Close()
		b.StartTimer()
	}
	b.StopTimer()
	if len(lats) == 0 {
		b.Fatal("no press during the storm")
	}
	slices.Sort(lats)
	slices.Sort(inHub)
	ms := func(l []time.Duration, p float64) float64 {
		return float64(l[min(len(l)-1, int(p*float64(len(l))))]) / 1e6
	}
	b.ReportMetric(ms(lats, 0.5), "press-p50-ms")
	b.ReportMetric(ms(lats, 0.99), "press-p99-ms")
	b.ReportMetric(ms(lats, 1), "press-max-ms")
	b.ReportMetric(ms(inHub, 0.99), "handle-p99-ms")
	b.ReportMetric(float64(len(lats))/float64(b.N), "presses/op")
	b.ReportMetric(float64(tick)/1e6/float64(b.N), "tick-ms")
	b.ReportMetric(float64(waited)/1e6/float64(b.N), "os-wait-ms")
	b.ReportMetric(float64(forget)/1e3/float64(b.N), "forget-us")
}

// osWait is how long this process's threads have been runnable but kept
// off a CPU by the kernel (the second field of each thread's
// /proc/PID/task/TID/schedstat): on a shared machine, press latency that
// is the machine's, not the hub's. Zero where /proc is missing.
func osWait() time.Duration {
	files, _ := filepath.Glob("/proc/self/task/*/schedstat")
	var total time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if fs := strings.Fields(string(b)); len(fs) >= 2 {
			if n, err := strconv.ParseInt(fs[1], 10, 64); err == nil {
				total += time.Duration(n)
			}
		}
	}
	return total
}

// countRule counts the hub's alarms (open or not, group members too) of
// a rule.
func countRule(h *Hub, rule string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, a := range h.alarms {
		if a.Rule == rule {
			n++
		}
	}
	return n
}

// readFeed drains a staff-stream queue as the stream's writer does, until
// stop is closed.
func readFeed(q *feed.Queue, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	buf := make([]feed.Frame, 0, 64)
	for {
		select {
		case <-q.Ready():
		case <-stop:
			return
		}
		var cut bool
		buf, cut = q.Next(buf[:0], 64)
		if cut {
			return
		}
	}
}
