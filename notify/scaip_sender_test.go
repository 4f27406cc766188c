package notify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/internal/freeport"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/scaip"
)

// centreConf is a scaip receiver towards to with the centre's account.
func centreConf(t testing.TB, to, tp string) *notify.SCAIP {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "larm.pw")
	if err := os.WriteFile(pw, []byte("hemligt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &notify.SCAIP{To: to, Transport: tp, Username: "vaka", PasswordFile: pw, CID: "4711"}
}

func me(ref string) []byte {
	r := scaip.Request{Ref: ref, Cid: "4711", Dty: "0003", Stc: "0010"}
	return r.Marshal()
}

// The dispatcher's sender keeps one user agent and the centre's nonce per
// centre: four hand-overs to the third-party centre cost one 401. Three
// of them overlap, and the centre answers them in reverse order (the
// first after 1.5 s, the third after 0.5 s): each send gets the <mrs> with
// its own ref, none is lost as "another exchange's answer".
func TestSIPSenderKeepsNonceAndRoutesByRef(t *testing.T) {
	for _, tp := range []string{"udp", "tcp"} {
		t.Run(tp, func(t *testing.T) {
			t.Parallel()
			lines, to := peerCentreWith(t, tp, map[string][]int{"ME": {0}},
				map[string]any{"delays": map[string][]int{"ME": {20, 1500, 1000, 500}}})
			x := notify.NewSIPSender()
			defer x.Close()
			c := centreConf(t, to, tp)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if r, err := x.Exchange(ctx, c, me("R0")); err != nil || r.Ref != "R0" || r.SNU != scaip.OK {
				t.Fatalf("first hand-over: %+v %v", r, err)
			}
			var wg sync.WaitGroup
			got := make([]string, 3)
			for i := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ref := fmt.Sprintf("R%d", i+1)
					r, err := x.Exchange(ctx, c, me(ref))
					if err != nil {
						got[i] = ref + ": " + err.Error()
						return
					}
					got[i] = ref + "→" + r.Ref + fmt.Sprintf(" snu %d", r.SNU)
				}()
				time.Sleep(150 * time.Millisecond) // in order on the wire: npm sip counts nc strictly
			}
			wg.Wait()
			if s := strings.Join(got, ", "); s != "R1→R1 snu 0, R2→R2 snu 0, R3→R3 snu 0" {
				t.Errorf("answers %s", s)
			}
			st := x.Stats()
			if st.Sent != 4 || st.Challenges != 1 || st.Unmatched != 0 {
				t.Errorf("sender stats %+v, want 4 sent, 1 challenge, 0 unmatched", st)
			}
			n := 0
			for len(lines) > 0 {
				if l := <-lines; l.Ev == "challenge" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("the centre challenged %d times, want once", n)
			}
		})
	}
}

// A centre that keeps its nonce per call (npm sip's own examples) refuses
// a nonce reused on a new call with 403: the sender forgets it, takes a
// fresh challenge and the message still goes through, every time.
func TestSIPSenderNoncePerCallCentre(t *testing.T) {
	_, to := peerCentreWith(t, "udp", map[string][]int{"ME": {0}}, map[string]any{"nonceScope": "call"})
	x := notify.NewSIPSender()
	defer x.Close()
	c := centreConf(t, to, "udp")
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := x.Exchange(ctx, c, me(fmt.Sprintf("C%d", i)))
		cancel()
		if err != nil || r.SNU != scaip.OK {
			t.Fatalf("hand-over %d: %+v %v", i, r, err)
		}
	}
	if st := x.Stats(); st.Challenges != 3 {
		t.Errorf("challenges %d, want one per message from this centre", st.Challenges)
	}
}

// testCA is a self-signed CA and a server certificate it signed for
// 127.0.0.2, as PEM files.
type testCA struct {
	caFile          string
	certPEM, keyPEM string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	f := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &testCA{caFile: f}
	skey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	st := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "larmcentral"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.2")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	sder, err := x509.CreateCertificate(rand.Reader, st, ca, &skey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(skey)
	c.certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sder}))
	c.keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return c
}

// Vaka's sender over TLS to the third-party centre whose certificate a
// private CA signed: with that CA in ca_file the alarm is delivered; with
// another CA's the handshake is refused, nothing (not even RE) is sent,
// the hand-over is given up at once with the reason, the lead is alerted
// and the refusal is counted.
func TestSCAIPSenderTLSPrivateCA(t *testing.T) {
	centreCA := newTestCA(t, "Larmcentralens CA")
	t.Run("right-ca", func(t *testing.T) {
		t.Parallel()
		lines, to := peerCentreWith(t, "tls", map[string][]int{"ME": {0}}, map[string]any{"cert": centreCA.certPEM, "key": centreCA.keyPEM})
		d, h := startPeerYAML(t, to, "tls", "        ca_file: "+centreCA.caFile)
		if l := next(t, lines, "mrq", 10*time.Second); l.Proto != "TLS" {
			t.Errorf("the centre got the ME over %s", l.Proto)
		}
		waitFor(t, 10*time.Second, "delivered to the centre over TLS", h.centreDelivered)
		if n := d.SCAIPTLSRefused.Load(); n != 0 {
			t.Errorf("tls refused %d", n)
		}
	})
	t.Run("wrong-ca", func(t *testing.T) {
		t.Parallel()
		other := newTestCA(t, "Någon annans CA")
		lines, to := peerCentreWith(t, "tls", map[string][]int{"ME": {0}, "RE": {0}}, map[string]any{"cert": centreCA.certPEM, "key": centreCA.keyPEM})
		d, h := startPeerYAML(t, to, "tls", "        ca_file: "+other.caFile)
		waitFor(t, 10*time.Second, "the lead alerted", func() bool {
			return strings.Contains(strings.Join(h.steps(), " "), "escalate:1:lead")
		})
		if got := strings.Join(h.handovers(), " "); !strings.HasPrefix(got, "handover:0:larm:RE not sent: TLS refused (the centre's certificate is not signed by the configured CA)@") {
			t.Errorf("hand-over %s", got)
		}
		h.mu.Lock()
		note := ""
		for _, tr := range h.a.History() {
			if tr.Action == alarm.ActEscalate {
				note = tr.Note
			}
		}
		h.mu.Unlock()
		if !strings.Contains(note, "alarm centre larm: TLS refused") {
			t.Errorf("the lead's escalation says %q, want the TLS reason", note)
		}
		if d.SCAIPTLSRefused.Load() != 1 || d.SCAIPAborted.Load() != 1 {
			t.Errorf("tls refused %d, aborted %d; want 1 and 1", d.SCAIPTLSRefused.Load(), d.SCAIPAborted.Load())
		}
		time.Sleep(300 * time.Millisecond) // an RE would have reached the centre by now
		for len(lines) > 0 {
			if l := <-lines; l.Ev == "mrq" {
				t.Errorf("the centre got a request over an untrusted line: %s", l.Body)
			}
		}
	})
}

func startPeerYAML(t *testing.T, to, tp, extra string) (*notify.Dispatcher, *fakeHub) {
	t.Helper()
	y := centreYAML(t, to, tp, "        resend: 5s\n        timeout: 4s\n"+extra)
	d := notify.New(notify.Options{Tree: tree(t, y), Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	h := &fakeHub{d: d}
	d.Start(h, nil)
	t.Cleanup(func() { d.Close() })
	raise(h, time.Now())
	return d, h
}

// The TLS settings are checked where they are written: only for tls,
// a readable PEM CA, cert and key together.
func TestSCAIPTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	junk := filepath.Join(dir, "junk.pem")
	_ = os.WriteFile(pw, []byte("x"), 0o600)
	_ = os.WriteFile(junk, []byte("not a certificate"), 0o600)
	y := fmt.Sprintf(`
routing:
  receivers:
    - name: a
      scaip:
        to: sip:larm@centre.example
        username: vaka
        password_file: %[1]s
        cid: "1"
        ca_file: %[2]s
    - name: b
      scaip:
        to: sips:larm@centre.example
        username: vaka
        password_file: %[1]s
        cid: "1"
        ca_file: %[2]s
    - name: c
      scaip:
        to: sips:larm@centre.example
        username: vaka
        password_file: %[1]s
        cid: "1"
        cert_file: %[2]s
  route:
    receiver: a
`, pw, junk)
	var f file
	err := config.Decode("hub.yaml", []byte(y), &f)
	if err == nil {
		_, err = f.Routing.Compile(users, time.UTC)
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"hub.yaml:10: field routing.receivers.0.scaip.ca_file: only with transport tls",
		"hub.yaml:17: field routing.receivers.1.scaip.ca_file: notify: scaip ca_file " + junk + ": no PEM certificate",
		"hub.yaml:24: field routing.receivers.2.scaip.cert_file: set cert_file and key_file together",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}

// tlsRefusingCentre fails every exchange as a TLS handshake with an
// unknown CA does, and counts the tries.
type tlsRefusingCentre struct{ tries atomic.Int64 }

func (c *tlsRefusingCentre) Exchange(context.Context, *notify.SCAIP, []byte) (*scaip.Response, error) {
	c.tries.Add(1)
	return nil, fmt.Errorf("scaipsip: MESSAGE: TLS handshake error: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}})
}

// Under synctest: a TLS refusal is not resent; the next tier is alerted
// at once, the one try is all the centre gets (no RE), and a restart
// reading that history goes on to the next tier, not back to the centre.
func TestSCAIPTLSRefusalMovesOnAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &tlsRefusingCentre{}
		tr := tree(t, centreYAML(t, "sips:larm@127.0.0.2", "tls", ""))
		time.Sleep(time.Until(time.Date(2026, 1, 15, 1, 0, 0, 0, time.UTC)))
		d := notify.New(notify.Options{Tree: tr, SCAIP: c})
		h := &fakeHub{d: d}
		d.Start(h, nil)
		raise(h, time.Now())
		time.Sleep(time.Minute)
		synctest.Wait()
		d.Close()
		if got, want := firstSteps(h, 2), "notify:0:scaip:larm@0s escalate:1:lead@0s"; got != want {
			t.Errorf("steps %s, want %s", got, want)
		}
		if n := c.tries.Load(); n != 1 || d.SCAIPTLSRefused.Load() != 1 {
			t.Errorf("%d tries, %d counted; want the one ME and 1", n, d.SCAIPTLSRefused.Load())
		}
		// A restart: the history says the centre was given up.
		d2 := notify.New(notify.Options{Tree: tr, SCAIP: c})
		h.mu.Lock()
		h.d = d2
		h.mu.Unlock()
		d2.Start(h, []*alarm.Alarm{h.a})
		time.Sleep(time.Minute)
		synctest.Wait()
		d2.Close()
		if n := c.tries.Load(); n != 1 {
			t.Errorf("after a restart the centre was tried again: %d tries", n)
		}
	})
}

// The centre restarts (the process ends, a new one listens on the same
// port with new nonces) under a kept TCP sender: the line's failure drops
// the sender, the next exchange makes a new connection, is challenged and
// goes through. Bounded: at most 3 exchanges after the restart.
func TestSIPSenderCentreRestartTCP(t *testing.T) {
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	lines, to := peerCentreWith(t, "tcp", map[string][]int{"ME": {0}}, map[string]any{"port": port, "timeoutMs": 1500})
	x := notify.NewSIPSender()
	defer x.Close()
	c := centreConf(t, to, "tcp")
	exchange := func(ref string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		r, err := x.Exchange(ctx, c, me(ref))
		if err == nil && (r.Ref != ref || r.SNU != scaip.OK) {
			err = fmt.Errorf("answer %+v", r)
		}
		return err
	}
	if err := exchange("S1"); err != nil {
		t.Fatal(err)
	}
	next(t, lines, "timeout", 5*time.Second) // the first centre is gone
	for range lines {                        // until its stdout closes
	}
	peerCentreWith(t, "tcp", map[string][]int{"ME": {0}}, map[string]any{"port": port})
	var errs []string
	for i := range 3 {
		err := exchange(fmt.Sprintf("S%d", i+2))
		if err == nil {
			break
		}
		errs = append(errs, err.Error())
		if i == 2 {
			t.Fatalf("no hand-over after the centre restarted: %v", errs)
		}
	}
	// The same sender (no failure seen) was challenged again by the new
	// centre; a dropped one starts its count afresh.
	if st := x.Stats(); (len(errs) == 0 && st.Challenges != 2) || st.Challenges < 1 {
		t.Errorf("stats %+v after %d failures", st, len(errs))
	}
	t.Logf("exchanges that failed on the old line: %d %v", len(errs), errs)
}

// Under synctest: a centre whose TLS is refused raises
// alarm_centre_unreachable at once, not after two missed heartbeats. Its
// first heartbeat (at 1m) is refused: the alarm is up at 1m, not at 2m,
// and raised once however many refusals follow. A hand-over refused by
// TLS raises it at once too (at 0s, before any heartbeat).
func TestSCAIPTLSRefusalRaisesCentreAlarmAtOnce(t *testing.T) {
	for _, withAlarm := range []bool{false, true} {
		t.Run(fmt.Sprintf("handover=%v", withAlarm), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &tlsRefusingCentre{}
				tr := tree(t, centreYAML(t, "sips:larm@127.0.0.2", "tls", "        heartbeat: 1m"))
				time.Sleep(time.Until(time.Date(2026, 1, 15, 1, 0, 0, 0, time.UTC)))
				d := notify.New(notify.Options{Tree: tr, SCAIP: c})
				ch := &centreHub{fakeHub: &fakeHub{d: d}, start: time.Now()}
				d.Start(ch, nil)
				if withAlarm {
					raise(ch.fakeHub, time.Now())
				}
				time.Sleep(3*time.Minute + 30*time.Second)
				synctest.Wait()
				d.Close()
				ch.mu.Lock()
				got := strings.Join(ch.events, " ")
				ch.mu.Unlock()
				want := "true:larm@1m0s"
				if withAlarm {
					want = "true:larm@0s"
				}
				if got != want {
					t.Errorf("centre alarm %q, want %q", got, want)
				}
				if n := c.tries.Load(); n < 3 {
					t.Errorf("%d tries: the heartbeats stopped after a refusal", n)
				}
			})
		})
	}
}

// A reload that removes a centre lets go of its sender (socket, nonce):
// a tree still naming it keeps the sender (no new challenge), a tree
// without it closes it, and one in use by an exchange is closed when the
// exchange ends, after its answer came. Against the third-party centre
// over UDP; bounded by the answer delay (1 s) and a 10 s context.
func TestSIPSenderDropsCentreRemovedByReload(t *testing.T) {
	lines, to := peerCentreWith(t, "udp", map[string][]int{"ME": {0}},
		map[string]any{"delays": map[string][]int{"ME": {0, 0, 1000}}})
	y := centreYAML(t, to, "udp", "")
	with := tree(t, y)
	// The same config without the centre's receiver.
	i, j := strings.Index(y, "    - name: larm"), strings.Index(y, "    - name: lead")
	without := tree(t, strings.Replace(y[:i]+y[j:], "receiver: larm", "receiver: lead", 1))
	if without.Receivers()["larm"] != nil {
		t.Fatal("the second tree still has the centre")
	}
	c := with.Receivers()["larm"].SCAIP
	x := notify.NewSIPSender()
	defer x.Close()
	d := notify.New(notify.Options{Tree: with, SCAIP: x})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := x.Exchange(ctx, c, me("K1")); err != nil || r.SNU != scaip.OK {
		t.Fatalf("first hand-over: %+v %v", r, err)
	}
	d.SetTree(tree(t, y)) // a reload that keeps the centre
	if n := x.Centres(); n != 1 {
		t.Fatalf("%d senders after a reload keeping the centre, want 1", n)
	}
	if r, err := x.Exchange(ctx, c, me("K2")); err != nil || r.SNU != scaip.OK {
		t.Fatalf("second hand-over: %+v %v", r, err)
	}
	if st := x.Stats(); st.Challenges != 1 {
		t.Errorf("%d challenges: the kept sender lost its nonce", st.Challenges)
	}
	// The third answer takes 1 s: the reload comes while it is awaited.
	done := make(chan error, 1)
	go func() {
		r, err := x.Exchange(ctx, c, me("K3"))
		if err == nil && r.SNU != scaip.OK {
			err = fmt.Errorf("snu %d", r.SNU)
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	d.SetTree(without)
	if n := x.Centres(); n != 1 {
		t.Errorf("%d senders while an exchange is in flight, want 1 (closed only after)", n)
	}
	if err := <-done; err != nil {
		t.Fatalf("the exchange in flight during the reload: %v", err)
	}
	if n := x.Centres(); n != 0 {
		t.Errorf("%d senders after the reload removed the centre, want 0", n)
	}
	for len(lines) > 0 {
		<-lines
	}
}
