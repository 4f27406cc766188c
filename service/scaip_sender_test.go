package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/freeport"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/scaipsip"
	"github.com/vaka-care/vaka/service"
)

// The whole hub hands an alarm to an alarm receiving centre played by a
// third-party SIP stack (npm "sip", scaipsip/testdata/scaip-centre.js):
// a SCAIP unit's call raises the alarm, the route's first tier is the
// centre, it answers snu 0, the hand-over is journaled as a delivery
// with channel scaip, and the staff card in a real Chromium says
// "Hos larmcentralen sedan HH:MM".
// centreNode runs the third-party centre on UDP and returns the bodies it
// receives and its host:port.
func centreNode(t *testing.T, answers map[string][]int) (<-chan string, string) {
	t.Helper()
	node := testenv.LookPath(t, "node")
	peer := newSCAIPPeer(t, nil, nil)
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	cfgJS, _ := json.Marshal(map[string]any{"sip": peer.sipModule, "transport": "udp", "address": "127.0.0.2", "port": port,
		"user": "vaka", "password": "centre-pw", "realm": "larm", "answers": answers, "timeoutMs": 60000})
	cmd := exec.Command(node, "../scaipsip/testdata/scaip-centre.js", string(cfgJS))
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	mrqs := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l struct{ Ev, Body string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Ev == "mrq" {
				mrqs <- l.Body
			}
		}
	}()
	return mrqs, net.JoinHostPort("127.0.0.2", strconv.Itoa(port))
}

// startCentreHub starts the hub with one SCAIP unit and a route whose
// first tier is the centre at centreAddr, then staff.
func startCentreHub(t *testing.T, dataDir, centreAddr string) *service.Hub {
	t.Helper()
	certFile, keyFile, _, _ := selfSigned(t)
	pw := filepath.Join(t.TempDir(), "centre.pw")
	if err := os.WriteFile(pw, []byte("centre-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := string(scaipHubYAML(t, dataDir, certFile, keyFile)) + fmt.Sprintf(`routing:
  receivers:
    - name: larm
      scaip: {to: "sip:larm@%s", transport: udp, username: vaka, password_file: %s, cid: "70012345", resend: 5s}
    - name: natt
      users: [%s]
  route:
    receiver: larm
    escalate: [natt]
`, centreAddr, pw, staffUser)
	var cfg hub.Config
	if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unitCall(t *testing.T, s *service.Hub, ref string) {
	t.Helper()
	res, err := scaipsip.Send(context.Background(), scaipsip.SendOptions{Transport: "udp", Addr: s.SCAIPAddr("udp"),
		Username: scaipUser, Password: scaipPass, Body: []byte("<mrq><ref>" + ref + "</ref><cid>4711</cid><dty>0003</dty><stc>0010</stc></mrq>"), Timeout: 5 * time.Second})
	if err != nil || res.Mrs == nil || res.Mrs.SNU != 0 {
		t.Fatalf("unit's call: %+v %v", res, err)
	}
}

func nextMrq(t *testing.T, mrqs <-chan string, d time.Duration) string {
	t.Helper()
	select {
	case b := <-mrqs:
		return b
	case <-time.After(d):
		t.Fatalf("the centre got no <mrq> within %v", d)
		return ""
	}
}

// The hub is restarted while the centre holds the alarm (snu 4): the new
// hub reads the hand-over back from the journal and resends the same
// request at once, the hold still on the alarm (that the deadline is kept
// is asserted under synctest in notify/scaip_test.go).
func TestIntegrationSCAIPHandoverSurvivesRestart(t *testing.T) {
	mrqs, centreAddr := centreNode(t, map[string][]int{"ME": {4}})
	dataDir := t.TempDir()
	s := startCentreHub(t, dataDir, centreAddr)
	unitCall(t, s, "R1")
	first := nextMrq(t, mrqs, 10*time.Second)
	held := func(s *service.Hub) *alarm.Alarm {
		for _, a := range s.Hub.Alarms() {
			for _, h := range a.History() {
				if a.Device == "larm-4711" && h.Action == alarm.ActHandover && h.Note == "snu 4" {
					return a
				}
			}
		}
		return nil
	}
	var a *alarm.Alarm
	for range 500 { // bounded: 10 s
		if a = held(s); a != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a == nil {
		t.Fatal("the centre's hold is not on the alarm")
	}
	s.Close()
	for len(mrqs) > 0 { // resends before the close
		<-mrqs
	}
	restarted := time.Now()
	s2 := startCentreHub(t, dataDir, centreAddr)
	t.Cleanup(func() { s2.Close() })
	again := nextMrq(t, mrqs, 4*time.Second) // at once, not after a resend interval
	if again != first {
		t.Errorf("after the restart the centre got another request:\n%s\n%s", first, again)
	}
	t.Logf("resent %v after the restart", time.Since(restarted))
	b := held(s2)
	if b == nil || b.ID != a.ID || !b.Open() || b.Tier() != 0 {
		t.Fatalf("after restart: %+v", b)
	}
}

func TestIntegrationSCAIPHandoverToCentreBrowser(t *testing.T) {
	chrome := testenv.LookPath(t, "chromium")
	mrqs, centreAddr := centreNode(t, map[string][]int{"ME": {0}, "PI": {0}})
	s := startCentreHub(t, t.TempDir(), centreAddr)
	t.Cleanup(func() { s.Close() })
	// The unit's call (Vaka's own peer; the unit is not what is tested here).
	unitCall(t, s, "H1")
	if body := nextMrq(t, mrqs, 10*time.Second); !strings.Contains(body, "<cid>70012345</cid>") || !strings.Contains(body, "<dty>0003</dty>") {
		t.Errorf("centre got %s", body)
	}
	var a *alarm.Alarm
	for range 500 { // bounded: 10 s
		for _, x := range s.Hub.Alarms() {
			for _, d := range x.Deliveries {
				if x.Device == "larm-4711" && d.Channel == alarm.ChannelSCAIP {
					a = x
				}
			}
		}
		if a != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a == nil {
		t.Fatal("no delivery to the centre on the alarm")
	}

	base := "http://" + s.HTTPAddr()
	ctx := phoneBrowser(t, chrome)
	login(t, ctx, base, staffUser, staffPass)
	if !waitJS(ctx, 10*time.Second, `[...document.querySelectorAll('.at-centre')].some((e) => /^Hos larmcentralen sedan \d\d[:.]\d\d$/.test(e.textContent))`) {
		txt, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("the card does not say the centre has it; screen:\n%s", txt)
	}
	screenshot(t, ctx, "scaip-handover-card.png")
}
