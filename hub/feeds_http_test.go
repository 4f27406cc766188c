package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/store"
)

// buttonsYAML is a site with n call buttons, each its own device.
func buttonsYAML(n int, extraHTTP string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0%s}
users:
  - {username: natt1, role: staff, password_hash: "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    supervision: {personal_trigger: 0s}
    units:
      - {id: u}
    gateways:
      - id: gw
        devices:
`, extraHTTP)
	for i := range n {
		fmt.Fprintf(&b, "          - {id: btn-%05d, type: personal_trigger, unit: u, room: r%d}\n", i, i)
	}
	return b.String()
}

// smallSendBuffer makes each accepted connection's send buffer small, so
// a client that does not read holds up the server's writes within a few
// KiB and the backlog stays in the hub's queue.
type smallSendBuffer struct{ net.Listener }

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// feedServer is the real hub (journal, notifier, one-frame raise) behind
// the real HTTP API on loopback, with staff login natt1/pw.
func feedServer(t *testing.T, n int, extraHTTP string) (*Hub, *prometheus.Registry, string) {
	t.Helper()
	j, replay, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, buttonsYAML(n, extraHTTP))
	tree, err := cfg.RouteTree()
	if err != nil {
		t.Fatal(err)
	}
	d := notify.New(notify.Options{Tree: tree, Pusher: &pushLog{}})
	reg := prometheus.NewRegistry()
	h, err := New(Options{Config: cfg, Journal: j, Replay: replay, Observers: []Observer{d}, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	h.SetRouter(d)
	d.Start(h, nil)
	api := httpapi.New(httpapi.Options{Alarms: h, StreamKeepAlive: time.Hour,
		Auth: httpapi.NewAuth([]httpapi.User{{Username: "natt1", Role: "staff", PasswordHash: testenv.Hash(t, "pw")}}, time.Hour, nil)})
	srv := httptest.NewUnstartedServer(api)
	srv.Listener = smallSendBuffer{srv.Listener}
	srv.Start()
	t.Cleanup(func() { srv.Close(); d.Close(); j.Close() })
	return h, reg, srv.URL
}

// openSlowStream opens /api/v1/stream with a small receive buffer and
// returns its body once the hello has arrived.
func openSlowStream(t *testing.T, ctx context.Context, url string) *bufio.Reader {
	t.Helper()
	dial := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c := &http.Client{Transport: &http.Transport{DialContext: dial.DialContext}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/stream", nil)
	req.SetBasicAuth("natt1", "pw")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	r := bufio.NewReaderSize(resp.Body, 4096)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no hello: %v", err)
		}
		if line == "event: hello\n" {
			return r
		}
	}
}

// An all-alarm storm against a screen that reads slowly: 6,000 call
// buttons pressed (each its own care alarm, journaled, notified) while
// the screen reads nothing, so it falls more than the old 4,096-alarm
// bound behind, then reads in small pieces. Over real HTTP from the real
// hub, it gets every care alarm once, in raise order, each as one frame
// that carries its raise and its notify step; it is never cut.
func TestIntegrationSlowStreamGetsEveryCareAlarmUncut(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real hub and HTTP stream over loopback")
	}
	const n = 6000
	h, reg, url := feedServer(t, n, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := openSlowStream(t, ctx, url)

	start := time.Now()
	for i := range n {
		if rep := h.HandleEvent("s", "gw", evPayload(fmt.Sprint("e", i), fmt.Sprintf("btn-%05d", i), "0003", "pressed", "", time.Now())); rep.Code != 0 {
			t.Fatalf("event %d: %+v", i, rep)
		}
	}
	h.mu.RLock()
	behind := 0
	for _, q := range h.fs.feeds {
		c, _ := q.Len()
		behind = max(behind, c)
	}
	h.mu.RUnlock()
	if behind <= 4096 {
		t.Fatalf("the screen was only %d care alarms behind: not slow enough to test anything", behind)
	}
	t.Logf("%d alarms raised in %v; the screen %d behind", n, time.Since(start).Round(time.Millisecond), behind)
	if g := gaugeValue(t, reg, "vaka_stream_care_backlog_max"); g <= 4096 {
		t.Errorf("vaka_stream_care_backlog_max = %v with the screen %d behind", g, behind)
	}

	var ids []string
	var event string
	for len(ids) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended (%v) after %d of %d alarms", err, len(ids), n)
		}
		line = strings.TrimSuffix(line, "\n")
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || event != "alarm" {
			continue
		}
		var a alarm.Alarm
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			t.Fatal(err)
		}
		if a.Kind != alarm.KindCall {
			t.Fatalf("frame %d: a %s alarm", len(ids), a.Kind)
		}
		if hs := a.History(); len(hs) != 2 || hs[0].Action != alarm.ActRaise || hs[1].Action != alarm.ActNotify {
			t.Fatalf("frame %d (%s): history %+v, want its raise and notify in one frame", len(ids), a.ID, hs)
		}
		ids = append(ids, a.ID)
		if len(ids)%100 == 0 {
			time.Sleep(time.Millisecond) // a slow phone
		}
	}
	for i, id := range ids {
		if want := fmt.Sprintf("A%06d", i+1); id != want {
			t.Fatalf("frame %d is %s, want %s: lost, doubled or out of order", i, id, want)
		}
	}
	for name, want := range map[string]float64{
		"vaka_stream_subscribers_cut_total": 0,
		"vaka_stream_feed_cut_total":        0,
		"vaka_stream_feed_stalled_total":    0,
		"vaka_stream_care_frames_total":     n,
	} {
		if got := gather(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// A screen that reads nothing at all is cut once its connection has taken
// nothing for the stall timeout (here the shortest allowed, 5 s): counted,
// its stream ended by the hub, and the screen reading beside it loses
// nothing. The presses all come at once (about a second), so no later
// push can find the stall: the writer's own write deadline must (the push
// side is TestStalledSubscriberCutAfterNoProgress in feed/).
func TestIntegrationStalledStreamCutAfterStallTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real hub and HTTP stream over loopback, 5 s stall timeout")
	}
	const n = 3000
	h, reg, url := feedServer(t, n, ", stream_stall_timeout: 5s")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stalled := openSlowStream(t, ctx, url)
	live := openSlowStream(t, ctx, url)

	var mu sync.Mutex
	got := 0
	liveDone := make(chan error, 1)
	go func() {
		for {
			line, err := live.ReadString('\n')
			if err != nil {
				liveDone <- err
				return
			}
			if line == "event: alarm\n" {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}
	}()
	begin := time.Now()
	for i := range n {
		if rep := h.HandleEvent("s", "gw", evPayload(fmt.Sprint("e", i), fmt.Sprintf("btn-%05d", i), "0003", "pressed", "", time.Now())); rep.Code != 0 {
			t.Fatalf("event %d: %+v", i, rep)
		}
	}
	if d := time.Since(begin); gather(t, reg, "vaka_stream_feed_stalled_total") != 0 && d < 5*time.Second {
		t.Fatalf("cut within %v, before the stall timeout", d)
	}
	// The writer's deadline passes 5 s after its last write began (polled
	// a bounded while for a slow machine).
	for deadline := time.Now().Add(20 * time.Second); gather(t, reg, "vaka_stream_feed_stalled_total") == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := gather(t, reg, "vaka_stream_feed_stalled_total"); got != 1 {
		t.Fatalf("vaka_stream_feed_stalled_total = %v, want 1 (the screen that reads nothing)", got)
	}
	if got := gather(t, reg, "vaka_stream_subscribers_cut_total"); got != 1 {
		t.Errorf("vaka_stream_subscribers_cut_total = %v, want 1", got)
	}
	// The stalled stream ends (its write deadline passes too): reading it
	// now yields what was buffered, then the end, not an endless stream.
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := stalled.ReadString('\n'); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("the cut stream never ended")
	}
	// The reading screen gets every alarm.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		g := got
		mu.Unlock()
		if g == n {
			break
		}
		select {
		case err := <-liveDone:
			t.Fatalf("live stream ended (%v) after %d of %d", err, g, n)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("live screen got %d of %d alarms", g, n)
		}
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
