package notify_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/freeport"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/scaip"
)

// centreLine is one JSON line the third-party centre prints.
type centreLine struct {
	Ev    string `json:"ev"`
	Body  string `json:"body"`
	Proto string `json:"proto"`
	Ref   string `json:"ref"`
	Snu   int    `json:"snu"`
	Msg   string `json:"msg"`
}

// peerCentre runs scaipsip/testdata/scaip-centre.js (npm "sip", a SIP
// stack that is not Vaka's) as the alarm receiving centre, and returns
// its lines as they come and its sip: URI.
func peerCentre(t *testing.T, transport string, answers map[string][]int) (<-chan centreLine, string) {
	t.Helper()
	return peerCentreWith(t, transport, answers, nil)
}

// peerCentreWith is peerCentre with more of the script's settings
// (cert and key for TLS, nonceScope, delays).
func peerCentreWith(t *testing.T, transport string, answers map[string][]int, more map[string]any) (<-chan centreLine, string) {
	t.Helper()
	mod, err := filepath.Abs("../.cache/npm-sip/node_modules/sip/sip.js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mod); err != nil {
		t.Fatalf("npm sip not installed at %s: run `make test-deps` (or scripts/test-deps.sh)", mod)
	}
	node := testenv.LookPath(t, "node")
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"sip": mod, "transport": transport, "address": "127.0.0.2", "port": port,
		"user": "vaka", "password": "hemligt", "realm": "larm", "answers": answers, "timeoutMs": 30000}
	for k, v := range more {
		m[k] = v
	}
	if p, ok := more["port"].(int); ok {
		port = p // the same port again: a centre restarting
	}
	cfg, _ := json.Marshal(m)
	cmd := exec.Command(node, "../scaipsip/testdata/scaip-centre.js", string(cfg))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan centreLine, 256)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l centreLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				lines <- l
			}
		}
	}()
	if l := next(t, lines, "ready", 10*time.Second); l.Ev != "ready" {
		t.Fatalf("centre did not start: %+v", l)
	}
	addr := net.JoinHostPort("127.0.0.2", strconv.Itoa(port))
	if transport == "tcp" || transport == "tls" {
		// npm sip listens asynchronously after "ready": wait until it accepts.
		waitFor(t, 5*time.Second, "centre listening on "+addr, func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	if transport == "tls" {
		return lines, "sips:larm@" + addr
	}
	return lines, "sip:larm@" + addr
}

// next returns the next line of kind ev within d (the others are logged).
func next(t *testing.T, lines <-chan centreLine, ev string, d time.Duration) centreLine {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("centre exited waiting for %s", ev)
			}
			if l.Ev == ev {
				return l
			}
			if l.Ev == "error" || l.Ev == "timeout" {
				t.Logf("centre: %+v", l)
			}
		case <-deadline:
			t.Fatalf("no %s from the centre within %v", ev, d)
		}
	}
}

// mrqOf parses what the centre received, strictly, as a receiver must.
func mrqOf(t *testing.T, l centreLine) *scaip.Request {
	t.Helper()
	r, err := scaip.Parse([]byte(l.Body))
	if err != nil {
		t.Fatalf("the centre got an <mrq> the standard refuses: %v\n%s", err, l.Body)
	}
	if r.Ref == "" || r.Cid != "4711" || r.Dty == "" {
		t.Errorf("mandatory tags: %+v", r)
	}
	return r
}

// waitFor polls cond for up to d (real time: real SIP below).
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within %v", what, d)
}

func (h *fakeHub) centreDelivered() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.a.Deliveries {
		if d.Channel == alarm.ChannelSCAIP {
			return true
		}
	}
	return false
}

// Vaka's sender against a third-party centre over real SIP with Digest,
// UDP and TCP: snu 0 at once (then a repeat goes as IN with the same
// ref); snu 4 then 0 (the same request resent after the 5 s resend);
// never an <mrs> (staff accept meanwhile: RE with the same ref).
func TestSCAIPSenderAgainstThirdPartyCentre(t *testing.T) {
	for _, tp := range []string{"udp", "tcp"} {
		t.Run(tp+"/snu0-then-IN", func(t *testing.T) {
			t.Parallel()
			lines, to := peerCentre(t, tp, map[string][]int{"ME": {0}, "IN": {0}})
			d, h := startPeer(t, to, tp)
			me := mrqOf(t, next(t, lines, "mrq", 10*time.Second))
			if me.Mty != scaip.Message || me.Ref != notify.HandoverRef("A000001", 0, "larm") || me.Stc != "0010" || me.Dty != "0003" || me.Pri != 9 {
				t.Errorf("ME %+v", me)
			}
			if l := next(t, lines, "mrs", 10*time.Second); l.Snu != 0 {
				t.Errorf("centre's answer %+v", l)
			}
			waitFor(t, 10*time.Second, "delivered to the centre", h.centreDelivered)
			h.act(alarm.Transition{Alarm: "A000001", Action: alarm.ActRepeat, At: time.Now(), By: "rule:call_button",
				Pos: &event.Position{Lat: 65.584819, Lon: 22.156702}})
			in := mrqOf(t, next(t, lines, "mrq", 10*time.Second))
			if in.Mty != scaip.Info || in.Ref != me.Ref || in.Lge == nil || in.Lge.Geo != "65.584819,22.156702" {
				t.Errorf("IN %+v", in)
			}
			next(t, lines, "mrs", 10*time.Second)
			if n := d.SCAIPFailed.Load(); n != 0 {
				t.Errorf("failed sends %d", n)
			}
		})
		t.Run(tp+"/snu4-then-0", func(t *testing.T) {
			t.Parallel()
			lines, to := peerCentre(t, tp, map[string][]int{"ME": {4, 0}})
			_, h := startPeer(t, to, tp)
			first := next(t, lines, "mrq", 10*time.Second)
			t0 := time.Now()
			mrqOf(t, first)
			second := next(t, lines, "mrq", 15*time.Second)
			if gap := time.Since(t0); gap < 4*time.Second {
				t.Errorf("resent after %v, want the configured 5 s", gap)
			}
			if second.Body != first.Body {
				t.Errorf("resend is not the same request:\n%s\n%s", first.Body, second.Body)
			}
			waitFor(t, 10*time.Second, "delivered to the centre", h.centreDelivered)
			if got := strings.Join(h.handovers(), " "); !strings.HasPrefix(got, "handover:0:larm:snu 4@") || !strings.Contains(got, " delivered:0:scaip:larm:snu 0@") {
				t.Errorf("hand-over %s", got)
			}
		})
		t.Run(tp+"/never-then-RE", func(t *testing.T) {
			t.Parallel()
			lines, to := peerCentre(t, tp, map[string][]int{"RE": {0}})
			_, h := startPeer(t, to, tp)
			me := mrqOf(t, next(t, lines, "mrq", 10*time.Second))
			h.act(alarm.Transition{Alarm: "A000001", Action: alarm.ActAccept, At: time.Now(), By: "lead"})
			var re *scaip.Request
			for range 4 { // the ME may be resent meanwhile; bounded
				if r := mrqOf(t, next(t, lines, "mrq", 10*time.Second)); r.Mty == scaip.Reset {
					re = r
					break
				}
			}
			if re == nil || re.Ref != me.Ref || re.Cid != "4711" {
				t.Fatalf("RE %+v, want ref %s", re, me.Ref)
			}
			waitFor(t, 5*time.Second, "RE journaled", func() bool {
				return strings.Contains(strings.Join(h.handovers(), " "), "RE: accept by staff")
			})
		})
	}
}

func startPeer(t *testing.T, to, tp string) (*notify.Dispatcher, *fakeHub) {
	t.Helper()
	y := centreYAML(t, to, tp, "        resend: 5s\n        timeout: 4s")
	d := notify.New(notify.Options{Tree: tree(t, y), Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	h := &fakeHub{d: d}
	d.Start(h, nil)
	t.Cleanup(func() { d.Close() })
	raise(h, time.Now())
	return d, h
}
