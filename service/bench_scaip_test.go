package service_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
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

// rawUnit is a minimal SIP UDP sender for the benchmark: it keeps one
// nonce and counts nc up, and answers the hub's <mrs> MESSAGEs with 200.
// It shares the process (and the 2 cores) with the hub, so it is kept
// cheap: what can be is worked out once, the rest appended into a buffer.
type rawUnit struct {
	conn   *net.UDPConn
	hub    *net.UDPAddr
	nonce  string
	nc     int
	mrs    int
	mu     sync.Mutex
	status chan string
	// Worked out once: the Request-URI, HA1, HA2, the local address.
	uri, ha1, ha2, local string
	buf, okBuf           []byte
}

func newRawUnit(b *testing.B, hubAddr string) *rawUnit {
	ha, err := net.ResolveUDPAddr("udp", hubAddr)
	if err != nil {
		b.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	u := &rawUnit{conn: c, hub: ha, status: make(chan string, 16), uri: "sip:scaip@" + ha.String(),
		ha1: hub.HA1(scaipUser, "vaka", scaipPass), local: c.LocalAddr().String()}
	u.ha2 = md5s("MESSAGE:" + u.uri)
	go u.read()
	// One unauthenticated request for the nonce.
	u.send(b, 0, "<mrq><ref>n0</ref><cid>100000</cid><dty>3</dty><stc>0102</stc></mrq>", false)
	select {
	case st := <-u.status:
		_, rest, _ := strings.Cut(st, `nonce="`)
		u.nonce, _, _ = strings.Cut(rest, `"`)
	case <-time.After(5 * time.Second):
		b.Fatal("no challenge from the hub")
	}
	return u
}

func (u *rawUnit) read() {
	buf := make([]byte, 65536)
	for {
		n, from, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg := buf[:n]
		switch {
		case bytes.HasPrefix(msg, []byte("SIP/2.0 401")):
			select {
			case u.status <- string(msg):
			default:
			}
		case bytes.HasPrefix(msg, []byte("MESSAGE ")):
			u.mu.Lock()
			u.mrs++
			u.mu.Unlock()
			out := append(u.okBuf[:0], "SIP/2.0 200 OK\r\n"...)
			for rest := msg; len(rest) > 0; {
				var line []byte
				line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
				if len(line) == 0 {
					break
				}
				for _, p := range okHeaders {
					if len(line) > len(p) && bytes.EqualFold(line[:len(p)], p) {
						out = append(append(out, line...), "\r\n"...)
					}
				}
			}
			u.okBuf = append(out, "Content-Length: 0\r\n\r\n"...)
			_, _ = u.conn.WriteToUDP(u.okBuf, from)
		}
	}
}

// okHeaders are the headers a 200 copies from its request.
var okHeaders = [][]byte{[]byte("via:"), []byte("from:"), []byte("to:"), []byte("call-id:"), []byte("cseq:")}

func md5s(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func (u *rawUnit) send(b *testing.B, i int, body string, sign bool) {
	now := time.Now().UnixNano()
	m := append(u.buf[:0], "MESSAGE "...)
	m = append(m, u.uri...)
	m = append(m, " SIP/2.0\r\nVia: SIP/2.0/UDP "...)
	m = append(m, u.local...)
	m = append(m, ";branch=z9hG4bK-b"...)
	m = strconv.AppendInt(m, now, 36)
	m = append(m, '-')
	m = strconv.AppendInt(m, int64(i), 10)
	m = append(m, ";rport\r\nFrom: <sip:"+scaipUser+"@127.0.0.1>;tag=t"...)
	m = strconv.AppendInt(m, int64(i), 10)
	m = append(m, "\r\nTo: <sip:scaip@127.0.0.1>\r\nCall-ID: bench-"...)
	m = strconv.AppendInt(m, now, 36)
	m = append(m, '-')
	m = strconv.AppendInt(m, int64(i), 10)
	m = append(m, "\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"...)
	if sign {
		u.nc++
		nc := fmt.Sprintf("%08x", u.nc)
		resp := md5s(u.ha1 + ":" + u.nonce + ":" + nc + ":c0ffee:auth:" + u.ha2)
		m = append(m, "Authorization: Digest username=\""+scaipUser+"\", realm=\"vaka\", nonce=\""...)
		m = append(m, u.nonce...)
		m = append(m, "\", uri=\""...)
		m = append(m, u.uri...)
		m = append(m, "\", response=\""...)
		m = append(m, resp...)
		m = append(m, "\", algorithm=MD5, qop=auth, nc="...)
		m = append(m, nc...)
		m = append(m, ", cnonce=\"c0ffee\"\r\n"...)
	}
	m = append(m, "Content-Type: application/scaip+xml\r\nContent-Length: "...)
	m = strconv.AppendInt(m, int64(len(body)), 10)
	m = append(m, "\r\n\r\n"...)
	m = append(m, body...)
	u.buf = m
	if _, err := u.conn.WriteToUDP(m, u.hub); err != nil {
		b.Error(err) // not Fatal: the flood calls this from its own goroutine
	}
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
	defer u.conn.Close()

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
		defer nu.conn.Close()
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
				nu.send(b, k, fmt.Sprintf("<mrq><ref>m%d</ref><cid>100000</cid></mrq>", k), true)
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
		u.send(b, i, body, true)
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
