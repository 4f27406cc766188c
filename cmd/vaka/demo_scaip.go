package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/scaip"
	"github.com/vaka-care/vaka/scaipsip"
)

// The demo's SCAIP alarm unit: a trygghetslarm in the second home that
// speaks SCAIP over SIP to the hub's receiver, as a certified unit a
// municipality already owns would.
const (
	demoSCAIPAccount = "demo-larm"
	demoSCAIPCid     = "4600002"
	demoSCAIPDevice  = "larm-hem-2"
)

// addDemoSCAIP turns the receiver on at addr (UDP and TCP) with one unit
// and returns the unit's password.
func addDemoSCAIP(cfg *hub.Config, addr string) (string, error) {
	var rnd [9]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(rnd[:])
	cfg.SCAIP = hub.SCAIPConfig{Enabled: true, UDP: addr, TCP: addr, Heartbeat: time.Minute,
		Accounts: []hub.SCAIPAccount{{Username: demoSCAIPAccount, HA1: hub.HA1(demoSCAIPAccount, hub.DefaultSCAIPRealm, pw)}},
		Units: []hub.SCAIPUnit{{Cid: demoSCAIPCid, Account: demoSCAIPAccount, Site: "hemtjanst-norr", Device: demoSCAIPDevice,
			Type: "personal_trigger", Resident: "r-5d02", Unit: "hem-2", Room: "hall"}}}
	if err := cfg.Validate(); err != nil {
		return "", fmt.Errorf("demo: built-in scaip config invalid: %w", err)
	}
	return pw, nil
}

// runDemoSCAIPUnit simulates the unit: a heartbeat (PI) every minute, an
// alarm with a callback number after a minute and then every 20 minutes.
func runDemoSCAIPUnit(ctx context.Context, addr, password string, log *slog.Logger) {
	s, err := scaipsip.NewSender("udp", "", addr, nil)
	if err != nil {
		log.Error("demo scaip unit not started", "err", err)
		return
	}
	defer s.Close()
	seq := 0
	send := func(r scaip.Request) {
		seq++
		r.Ref, r.Cid, r.Dty = "demo"+strconv.Itoa(seq), demoSCAIPCid, "0003"
		res, err := s.Send(ctx, scaipsip.SendOptions{Addr: addr, Username: demoSCAIPAccount, Password: password,
			Body: r.Marshal(), Timeout: 5 * time.Second})
		switch {
		case err != nil:
			log.Warn("demo scaip unit: no answer", "err", err)
		case res.Mrs.SNU != scaip.OK:
			log.Warn("demo scaip unit: refused", "snu", int(res.Mrs.SNU))
		}
	}
	send(scaip.Request{Mty: scaip.Heartbeat, Hbo: "1"})
	hb := time.NewTicker(time.Minute)
	defer hb.Stop()
	alarm := time.NewTimer(time.Minute)
	defer alarm.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			send(scaip.Request{Mty: scaip.Heartbeat, Hbo: "1"})
		case <-alarm.C:
			send(scaip.Request{Cha: "1", Crd: "gsm:+46700000002", Stc: "0010"})
			alarm.Reset(20 * time.Minute)
		}
	}
}
