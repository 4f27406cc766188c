package service_test

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/scaipgen"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

// BenchmarkSCAIPAlarm measures a SCAIP alarm from the SIP MESSAGE sent
// (UDP, Digest on: every message carries a fresh qop=auth response the hub
// checks, the unit reusing its nonce with a growing nonce count as RFC 2617
// allows) to the alarm on a staff stream, one at a time and open loop at
// 100 and 1,000 messages/s, each message a call from one of 4,000
// registered units. Reports p50/p99/max from the moment the MESSAGE was
// written; hub-p99 from then to the hub's handling (the alarm's own time:
// what is left is the staff stream); lag-p99, how late the generator wrote
// the message after its scheduled time (its own lateness, reported apart so
// a slow generator shows: latency from the schedule is sched-p99); and the
// process CPU per message (hub and this generator share the process: an
// upper bound for the hub); gcs and gc-pause-max, the collector's cycles
// and longest stop-the-world pause during the run.
// rate100-malformed1000 sends 1,000 authenticated but malformed requests/s
// (each answered snu 7) beside the alarms: compare its p99 with rate100's.
// One iteration is one message: run it with -benchtime Nx.
func BenchmarkSCAIPAlarm(b *testing.B) {
	for _, bc := range []struct {
		name        string
		rate, noise int // rate 0: one at a time; noise: malformed messages/s beside
	}{{"oneatatime", 0, 0}, {"rate100", 100, 0}, {"rate1000", 1000, 0}, {"rate100-malformed1000", 100, 1000}} {
		b.Run(bc.name, func(b *testing.B) { benchSCAIP(b, bc.rate, bc.noise) })
	}
}

const benchUnits = 4000

func benchSCAIPYAML(b *testing.B, dataDir string) []byte {
	var units strings.Builder
	for i := range benchUnits {
		fmt.Fprintf(&units, "    - {cid: \"%d\", account: %s, site: hem, device: b-%d}\n", 100000+i, scaipUser, i)
	}
	return []byte(fmt.Sprintf(`data_dir: %s
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
users:
  - {username: %s, name: Natt Ett, role: staff, password_hash: %q}
sites:
  - id: hem
    night: {start: "22:00", end: "06:30"}
    supervision: {personal_trigger: 0s}
scaip:
  enabled: true
  udp: 127.0.0.1:0
  accounts:
    - {username: %s, ha1: %s}
  units:
%s`, dataDir, staffUser, testenv.Hash(b, staffPass), scaipUser, hub.HA1(scaipUser, "vaka", scaipPass), units.String()))
}

// newRawUnit is the benchmark's alarm unit (internal/scaipgen): the
// test account, its Call-IDs and branches marked as the benchmark's
// ("bench-", "z9hG4bK-b").
func newRawUnit(b *testing.B, hubAddr string) *scaipgen.Unit {
	u, err := scaipgen.Dial(scaipgen.Config{Hub: hubAddr, Account: scaipUser, Realm: "vaka",
		HA1: hub.HA1(scaipUser, "vaka", scaipPass), Cid: "100000", BranchPrefix: "b", CallIDPrefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return u
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchSCAIP(b *testing.B, rate, noise int) {
	var cfg hub.Config
	if err := config.Decode("hub.yaml", benchSCAIPYAML(b, b.TempDir()), &cfg); err != nil {
		b.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st := testenv.OpenStream(b, "http://"+s.HTTPAddr(), staffUser, staffPass)
	u := newRawUnit(b, s.SCAIPAddr("udp"))
	defer u.Close()

	// Per device, the send times not yet seen on the stream (FIFO).
	var mu sync.Mutex
	type sendTimes struct{ due, sent time.Time }
	pending := map[string][]sendTimes{}
	var lat, hubLat, sched []time.Duration
	got := make(chan struct{}, 1<<16)
	go func() {
		// A message shows as a raise or a repeat of its device's alarm.
		// A frame carries the alarm's latest state (a raise and its notify
		// step are one frame), so count raises and repeats per alarm
		// rather than look at the frame's last step.
		shown := map[string]int{}
		for a := range st.C {
			n := a.Repeats() + 1
			if n <= shown[a.ID] {
				continue
			}
			now := time.Now()
			mu.Lock()
			for ; shown[a.ID] < n; shown[a.ID]++ {
				if q := pending[a.Device]; len(q) > 0 {
					lat = append(lat, now.Sub(q[0].sent))
					sched = append(sched, now.Sub(q[0].due))
					handled := a.RaisedAt
					if a.LastRepeatAt() != nil {
						handled = *a.LastRepeatAt()
					}
					hubLat = append(hubLat, handled.Sub(q[0].sent))
					pending[a.Device] = q[1:]
					got <- struct{}{}
				}
			}
			mu.Unlock()
		}
	}()
	n := b.N
	stopNoise := make(chan struct{})
	noiseDone := make(chan struct{})
	var noiseSent atomic.Int64 // the flood as written, not as planned
	if noise > 0 {
		nu := newRawUnit(b, s.SCAIPAddr("udp"))
		defer nu.Close()
		go func() {
			defer close(noiseDone)
			t0 := time.Now()
			for k := 0; ; k++ {
				select {
				case <-stopNoise:
					return
				default:
				}
				if d := time.Until(t0.Add(time.Duration(k) * time.Second / time.Duration(noise))); d > 0 {
					time.Sleep(d)
				}
				if err := nu.Send(k, fmt.Sprintf("<mrq><ref>m%d</ref><cid>100000</cid></mrq>", k), true); err != nil {
					b.Error(err) // not Fatal: the flood's own goroutine
				}
				noiseSent.Add(1)
			}
		}()
	} else {
		close(noiseDone)
	}
	defer func() { close(stopNoise); <-noiseDone }()
	devNames := make([]string, benchUnits)
	for i := range devNames {
		devNames[i] = fmt.Sprintf("b-%d", i)
	}
	// lag: when each message was written − its scheduled time.
	lag := make([]time.Duration, 0, n)
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	noise0 := noiseSent.Load()
	for i := range n {
		dev := i % benchUnits
		body := fmt.Sprintf("<mrq><ref>b%d</ref><cid>%d</cid><dty>0003</dty></mrq>", i, 100000+dev)
		due := time.Now()
		if rate > 0 {
			// Open loop: each message at its scheduled time, late or not.
			due = start.Add(time.Duration(i) * time.Second / time.Duration(rate))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		sent := time.Now()
		lag = append(lag, sent.Sub(due))
		mu.Lock()
		pending[devNames[dev]] = append(pending[devNames[dev]], sendTimes{due, sent})
		mu.Unlock()
		if err := u.Send(i, body, true); err != nil {
			b.Error(err)
		}
		if rate == 0 {
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				b.Fatalf("message %d: no alarm on the stream within 5 s", i)
			}
		}
	}
	if rate > 0 {
		deadline := time.After(10 * time.Second)
		for k := 0; k < n; k++ {
			select {
			case <-got:
			case <-deadline:
				b.Fatalf("%d of %d alarms reached the stream within 10 s", k, n)
			}
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	// The collector's share of the tail: its cycles and longest
	// stop-the-world pause during the run.
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	var pause uint64
	for k := ms0.NumGC; k < ms1.NumGC && k < ms0.NumGC+256; k++ {
		pause = max(pause, ms1.PauseNs[k%256]) // GC k+1 is at k%256
	}
	b.ReportMetric(float64(ms1.NumGC-ms0.NumGC), "gcs")
	b.ReportMetric(float64(pause)/1e3, "gc-pause-max-µs")
	if noise > 0 {
		b.ReportMetric(float64(noiseSent.Load()-noise0)/time.Since(start).Seconds(), "malformed/s")
	}
	mu.Lock()
	defer mu.Unlock()
	q := func(xs []time.Duration, p float64) float64 {
		slices.Sort(xs)
		return float64(xs[min(len(xs)-1, int(p*float64(len(xs))))].Microseconds())
	}
	b.ReportMetric(q(lat, 0.5), "p50-µs")
	b.ReportMetric(q(lat, 0.99), "p99-µs")
	b.ReportMetric(q(lat, 1), "max-µs")
	b.ReportMetric(q(hubLat, 0.99), "hub-p99-µs")
	b.ReportMetric(q(lag, 0.99), "lag-p99-µs")
	b.ReportMetric(q(sched, 0.99), "sched-p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
	b.ReportMetric(0, "ns/op")
}
