package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/service"
)

// `vaka scaip send` against the demo's own hub config (receiver on, one
// simulated unit's account): snu 0 over UDP and TCP, the <mrs> printed;
// an unregistered cid prints snu 3 and exits 1; a wrong password exits 1
// without an <mrs>. `vaka scaip ha1` prints the hash the config wants.
func TestSCAIPSendAgainstDemoHub(t *testing.T) {
	cfg, _, err := demoConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", demoWorld())
	if err != nil {
		t.Fatal(err)
	}
	pw, err := addDemoSCAIP(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startService(t, cfg)
	send := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"scaip", "send", "--user", demoSCAIPAccount, "--timeout", "5s"}, args...),
			strings.NewReader(""), &out, &errOut)
		return out.String() + errOut.String(), code
	}
	for _, tr := range []string{"udp", "tcp"} {
		out, code := send("--to", s.SCAIPAddr(tr), "--transport", tr, "--password", pw, "--cid", demoSCAIPCid, "--dty", "0003", "--stc", "0102", "--ref", "T"+tr)
		if code != 0 || !strings.Contains(out, "<mrs><ref>T"+tr+"</ref><snu>0</snu><mre>0</mre></mrs>") {
			t.Fatalf("%s: exit %d: %s", tr, code, out)
		}
	}
	out, code := send("--to", s.SCAIPAddr("udp"), "--password", pw, "--cid", "1", "--dty", "0003", "--ref", "U1")
	if code != 1 || !strings.Contains(out, "<snu>3</snu>") {
		t.Fatalf("unregistered: exit %d: %s", code, out)
	}
	out, code = send("--to", s.SCAIPAddr("udp"), "--password", "wrong", "--cid", demoSCAIPCid, "--dty", "0003")
	if code != 1 || strings.Contains(out, "<mrs><ref>") || !strings.Contains(out, "SIP 403") {
		t.Fatalf("wrong password: exit %d: %s", code, out)
	}
	var ha1 bytes.Buffer
	if code := run([]string{"scaip", "ha1", "--user", "u"}, strings.NewReader("pw\n"), &ha1, &ha1); code != 0 ||
		strings.TrimSpace(ha1.String()) != hub.HA1("u", "vaka", "pw") {
		t.Fatalf("ha1: %d %q", code, ha1.String())
	}
}

// The demo's simulated unit heartbeats the hub as soon as it starts.
func TestDemoSCAIPUnitHeartbeats(t *testing.T) {
	cfg, _, err := demoConfig(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", demoWorld())
	if err != nil {
		t.Fatal(err)
	}
	pw, err := addDemoSCAIP(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startService(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runDemoSCAIPUnit(ctx, s.SCAIPAddr("udp"), pw, slog.New(slog.DiscardHandler)); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, d := range s.Hub.Health().Devices {
			if d.Device == demoSCAIPDevice && !d.LastSeen.IsZero() {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo's SCAIP unit was not heard within 5 s")
		}
	}
}

func startService(t *testing.T, cfg *hub.Config) *service.Hub {
	t.Helper()
	s, err := service.Start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
