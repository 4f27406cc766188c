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
func TestIntegrationSCAIPHandoverToCentreBrowser(t *testing.T) {
	chrome := testenv.LookPath(t, "chromium")
	node := testenv.LookPath(t, "node")
	certFile, keyFile, certPEM, keyPEM := selfSigned(t)
	peer := newSCAIPPeer(t, certPEM, keyPEM)

	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	centreAddr := net.JoinHostPort("127.0.0.2", strconv.Itoa(port))
	cfgJS, _ := json.Marshal(map[string]any{"sip": peer.sipModule, "transport": "udp", "address": "127.0.0.2", "port": port,
		"user": "vaka", "password": "centre-pw", "realm": "larm", "answers": map[string][]int{"ME": {0}, "PI": {0}}, "timeoutMs": 60000})
	cmd := exec.Command(node, "../scaipsip/testdata/scaip-centre.js", string(cfgJS))
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	mrqs := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l struct{ Ev, Body string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Ev == "mrq" {
				mrqs <- l.Body
			}
		}
	}()

	pw := filepath.Join(t.TempDir(), "centre.pw")
	if err := os.WriteFile(pw, []byte("centre-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := string(scaipHubYAML(t, t.TempDir(), certFile, keyFile)) + fmt.Sprintf(`routing:
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
	t.Cleanup(func() { s.Close() })

	// The unit's call (Vaka's own peer; the unit is not what is tested here).
	res, err := scaipsip.Send(context.Background(), scaipsip.SendOptions{Transport: "udp", Addr: s.SCAIPAddr("udp"),
		Username: scaipUser, Password: scaipPass, Body: []byte("<mrq><ref>H1</ref><cid>4711</cid><dty>0003</dty><stc>0010</stc></mrq>"), Timeout: 5 * time.Second})
	if err != nil || res.Mrs == nil || res.Mrs.SNU != 0 {
		t.Fatalf("unit's call: %+v %v", res, err)
	}
	select {
	case body := <-mrqs:
		if !strings.Contains(body, "<cid>70012345</cid>") || !strings.Contains(body, "<dty>0003</dty>") {
			t.Errorf("centre got %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the centre got no <mrq>")
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
