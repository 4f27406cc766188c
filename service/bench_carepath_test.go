package service_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

// carePathButtons bounds BenchmarkCareAlarmPath: one registered call
// button per raise (-benchtime at most this many x).
const carePathButtons = 1 << 16

// carePathWindow is how many alarms may be raised and not yet read on the
// stream: well below the feed's care lane (4,096), so the run measures
// cost, never a cut.
const carePathWindow = 512

// BenchmarkCareAlarmPath is the all-alarm ramp's hub path in process:
// every event a call-button press on its own button, so each raises its
// own care alarm that is decoded, evaluated, journaled with its first
// notify step, observed (the replay log, the notifier, device last-seen)
// and sent on one staff screen's stream, as `vaka hub` wires it
// (service.Start). The event enters where the broker's hook hands it over
// (Hub.HandleEvent: MQTT itself is not measured) and the run ends when the
// stream has shown every alarm. cpu-µs/alarm is the whole process's CPU
// (hub, notifier, HTTP stream writer and this stream reader) per alarm:
// less noisy than wall time on a shared machine. Run it as
//
//	go test ./service/ -run '^$' -bench BenchmarkCareAlarmPath -benchtime 20000x -count 5
func BenchmarkCareAlarmPath(b *testing.B) {
	if b.N > carePathButtons {
		b.Skipf("at most %d raises (-benchtime %dx)", carePathButtons, carePathButtons)
	}
	dir := b.TempDir()
	var y strings.Builder
	// The buttons in a CSV inventory (sites[].devices_file), as a region's
	// config keeps them: 65,536 of them inline would pass the YAML's 4 MB
	// limit, and `go test -bench .` (make bench) grows b.N that far.
	fmt.Fprintf(&y, `data_dir: %s
mqtt:
  tcp: 127.0.0.1:0
http:
  address: 127.0.0.1:0
users:
  - {username: natt1, name: Natt Ett, role: staff, password_hash: %q}
sites:
  - id: solrosen
    night: {start: "00:00", end: "00:00"}
    units: [{id: avd-1, name: Avdelning 1}]
    devices_file: inventory.csv
    gateways:
      - id: gw1
        password_hash: %q
        heartbeat: 10m
`, dir, testenv.Hash(b, "natt1-secret"), testenv.Hash(b, gwPass))
	inv := bytes.NewBufferString("gateway,id,type,resident,unit,room\n")
	for i := range b.N {
		fmt.Fprintf(inv, "gw1,b%d,personal_trigger,r-%d,avd-1,%d\n", i, i, i%1000)
	}
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(y.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.csv"), inv.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	var cfg hub.Config
	if err := config.Load(path, &cfg); err != nil {
		b.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })

	var seen atomic.Int64
	done := make(chan struct{})
	stop := openCountingStream(b, "http://"+s.HTTPAddr(), &seen, done)
	b.Cleanup(stop)

	ts := time.Now().UTC().Format(time.RFC3339)
	payloads := make([][]byte, b.N)
	for i := range payloads {
		payloads[i] = fmt.Appendf(nil, `{"v":1,"id":"p-%d","device":"b%d","dty":"0003","stc":"0010","state":"pressed","ts":%q}`, i, i, ts)
	}
	b.ReportAllocs()
	cpu0, gc0 := cpuTime(), gcCPU()
	b.ResetTimer()
	for i := range b.N {
		// At most carePathWindow alarms not yet on the stream, as a
		// screen keeping up with a steady rate would: a burst of all of
		// them at once would be the feed's limit, not this path's cost.
		for int64(i)-seen.Load() >= carePathWindow {
			time.Sleep(20 * time.Microsecond)
		}
		if r := s.Hub.HandleEvent("solrosen", "gw1", payloads[i]); r.Code != event.ReplyOK {
			b.Fatalf("event %d: reply %+v", i, r)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for seen.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("stream showed %d of %d alarms within 30 s", seen.Load(), b.N)
		}
		select {
		case <-done:
			b.Fatalf("stream ended after %d of %d alarms", seen.Load(), b.N)
		case <-time.After(200 * time.Microsecond):
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/alarm")
	gc := gcCPU().sub(gc0)
	b.ReportMetric(100*gc.gc/(gc.gc+gc.user+gc.scav), "gc-%")
	b.ReportMetric(gc.cycles*1000/float64(b.N), "gc-cycles/1k-alarms")
}

// gcCPUTime is the runtime's estimate of CPU spent in the GC, in Go code
// and in returning memory (runtime/metrics /cpu/classes), and the GC
// cycles completed: gc-% is the GC's share of the process's busy CPU,
// comparable between runs (the classes are estimates, and are compared
// only with each other; on a busy machine they count time the OS took
// away from a GC worker too); gc-cycles/1k-alarms does not depend on the
// machine's load.
type gcCPUTime struct{ gc, user, scav, cycles float64 }

func (a gcCPUTime) sub(b gcCPUTime) gcCPUTime {
	return gcCPUTime{a.gc - b.gc, a.user - b.user, a.scav - b.scav, a.cycles - b.cycles}
}

func gcCPU() gcCPUTime {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/user:cpu-seconds"},
		{Name: "/cpu/classes/scavenge/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return gcCPUTime{s[0].Value.Float64(), s[1].Value.Float64(), s[2].Value.Float64(), float64(s[3].Value.Uint64())}
}

// openCountingStream opens natt1's staff stream and counts alarm frames
// (event: alarm) into seen; done closes when the stream ends.
func openCountingStream(b *testing.B, base string, seen *atomic.Int64, done chan struct{}) func() {
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/stream", nil)
	req.SetBasicAuth("natt1", "natt1-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("stream: %s", resp.Status)
	}
	ready := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReaderSize(resp.Body, 64<<10)
		hello := false
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if !bytes.HasPrefix(line, []byte("event: ")) {
				continue
			}
			switch ev := bytes.TrimSpace(line[7:]); {
			case !hello && string(ev) == "hello":
				hello = true
				close(ready)
			case string(ev) == "alarm":
				seen.Add(1)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		b.Fatal("stream: no hello within 5 s")
	}
	return func() { resp.Body.Close() }
}
