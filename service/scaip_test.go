package service_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/freeport"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/scaip"
	"github.com/vaka-care/vaka/service"
)

const (
	scaipUser = "enhet-4711"
	scaipPass = "enhet-secret-S9"
)

// scaipHubYAML: one home with a SCAIP alarm unit (cid 4711) on its own
// Digest account, and the receiver on UDP, TCP and TLS.
func scaipHubYAML(t *testing.T, dataDir, certFile, keyFile string) []byte {
	return []byte(fmt.Sprintf(`data_dir: %s
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
users:
  - {username: %s, name: Natt Ett, role: staff, password_hash: %q}
sites:
  - id: hem-syd
    night: {start: "22:00", end: "06:30"}
    residents:
      - {id: r-4711}
scaip:
  enabled: true
  udp: 127.0.0.1:0
  tcp: 127.0.0.1:0
  tls: {address: 127.0.0.1:0, cert_file: %s, key_file: %s}
  accounts:
    - {username: %s, ha1: %s}
  units:
    - {cid: "4711", account: %s, site: hem-syd, device: larm-4711, type: personal_trigger, resident: r-4711, room: "1"}
`, dataDir, staffUser, testenv.Hash(t, staffPass), certFile, keyFile, scaipUser, hub.HA1(scaipUser, "vaka", scaipPass), scaipUser))
}

// selfSigned writes a loopback certificate and key for SIP over TLS.
func selfSigned(t *testing.T) (certFile, keyFile string, certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, certPEM, keyPEM
}

type scaipPeer struct {
	certPEM, keyPEM []byte
	sipModule       string
	node            string
}

func newSCAIPPeer(t *testing.T, certPEM, keyPEM []byte) *scaipPeer {
	t.Helper()
	mod, err := filepath.Abs("../.cache/npm-sip/node_modules/sip/sip.js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mod); err != nil {
		t.Fatalf("npm sip not installed at %s: run `make test-deps` (or scripts/test-deps.sh)", mod)
	}
	return &scaipPeer{certPEM: certPEM, keyPEM: keyPEM, sipModule: mod, node: testenv.LookPath(t, "node")}
}

// unitLine is one JSON line the third-party unit prints.
type unitLine struct {
	Ev     string `json:"ev"`
	I      int    `json:"i"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	CT     string `json:"ct"`
	Auth   string `json:"auth"`
	Msg    string `json:"msg"`
}

// send runs the npm-sip unit once: it sends bodies over transport to the
// hub and returns what it printed. Bounded by timeout.
func (p *scaipPeer) send(t *testing.T, transport, hubAddr, user, pass string, expectMrs int, noAuth bool, bodies ...string) []unitLine {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	_, portS, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portS)
	cfg := map[string]any{"sip": p.sipModule, "transport": transport, "hub": hubAddr, "port": port,
		"user": user, "password": pass, "bodies": bodies, "expectMrs": expectMrs, "timeoutMs": 8000, "noAuth": noAuth,
		"cert": string(p.certPEM), "key": string(p.keyPEM)}
	js, _ := json.Marshal(cfg)
	cmd := exec.Command(p.node, "../scaipsip/testdata/scaip-unit.js", string(js))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var lines []unitLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l unitLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			lines = append(lines, l)
		}
	}
	if err != nil {
		t.Logf("unit (%s) exit: %v; stdout %s; stderr %s", transport, err, out, stderr.String())
	}
	return lines
}

func finals(lines []unitLine) []unitLine {
	var out []unitLine
	for _, l := range lines {
		if l.Ev == "final" {
			out = append(out, l)
		}
	}
	return out
}

func mrsOf(t *testing.T, lines []unitLine) []*scaip.Response {
	t.Helper()
	var out []*scaip.Response
	for _, l := range lines {
		if l.Ev != "mrs" {
			continue
		}
		if !strings.HasPrefix(l.CT, scaip.ContentType) {
			t.Errorf("<mrs> content type %q", l.CT)
		}
		// The receiver is strict in what it sends: exactly the
		// standard's tags, in order, and nothing else.
		if !strings.HasPrefix(l.Body, "<mrs><ref>") || !strings.HasSuffix(l.Body, "</mrs>") || strings.ContainsAny(l.Body, "\r\n") {
			t.Errorf("<mrs> not in the standard's shape: %q", l.Body)
		}
		r, err := scaip.ParseResponse([]byte(l.Body))
		if err != nil {
			t.Fatalf("<mrs> %q: %v", l.Body, err)
		}
		out = append(out, r)
	}
	return out
}

// A third-party SIP stack (npm "sip") plays the alarm unit against the
// real hub over UDP, TCP and TLS with Digest: the alarm reaches the staff
// stream with its callback number, the <mrs> comes back as its own MESSAGE
// with snu 0, mre 0 and the callback accepted (cre); no credentials or a wrong password are refused at
// the SIP layer; an unregistered cid gets snu 3; presence and check-out
// keys move the alarm.
func TestIntegrationSCAIPThirdPartyUnit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a third-party SIP unit under node against a whole hub")
	}
	certFile, keyFile, certPEM, keyPEM := selfSigned(t)
	var cfg hub.Config
	if err := config.Decode("hub.yaml", scaipHubYAML(t, t.TempDir(), certFile, keyFile), &cfg); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, &logBuf{}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := service.Start(&cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	<-st.Ready
	peer := newSCAIPPeer(t, certPEM, keyPEM)

	for i, tr := range []string{"udp", "tcp", "tls"} {
		t.Run(tr, func(t *testing.T) {
			ref := fmt.Sprintf("A%d", i)
			body := "<mrq><ref>" + ref + "</ref><cha>1</cha><cid>4711</cid><dty>0003</dty><crd>gsm:+46701112233</crd><stc>0010</stc></mrq>"
			start := time.Now()
			lines := peer.send(t, tr, s.SCAIPAddr(tr), scaipUser, scaipPass, 1, false, body)
			f := finals(lines)
			if len(f) != 1 || f[0].Status != 200 || f[0].Auth != "digest" {
				t.Fatalf("SIP answers %+v, want 200 after a Digest challenge (all: %+v)", f, lines)
			}
			mrs := mrsOf(t, lines)
			// cre 15: the callback (cha 1, a number in crd) is accepted and
			// the unit keeps auto-answer open for scaip.callback_answer's default.
			if len(mrs) != 1 || mrs[0].Ref != ref || mrs[0].SNU != scaip.OK || mrs[0].Mre != 0 || mrs[0].Cre != "15" {
				t.Fatalf("<mrs> %+v, want ref %s snu 0 mre 0 cre 15", mrs, ref)
			}
			a := st.Next(t, 2*time.Second, func(a *alarm.Alarm) bool {
				return a.Device == "larm-4711" && a.Kind == alarm.KindCall && strings.Contains(a.EventID, "/"+ref+".")
			})
			t.Logf("%s: MESSAGE → <mrs> and alarm on the stream: %v", tr, time.Since(start))
			if a.CallerID() != "gsm:+46701112233" || a.Callback() != "1" || a.Resident != "r-4711" {
				t.Fatalf("alarm %+v", a)
			}
			// Staff close it so the next transport raises a fresh alarm.
			for _, step := range []struct {
				action string
				body   any
			}{{"accept", map[string]string{}}, {"resolve", map[string]string{"outcome": "test"}}} {
				var got alarm.Alarm
				if code := testenv.DoJSON(t, "POST", base+"/api/v1/alarms/"+a.ID+"/"+step.action, staffUser, staffPass, step.body, &got); code != 200 {
					t.Fatalf("%s: %d", step.action, code)
				}
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		addr := s.SCAIPAddr("udp")
		lines := peer.send(t, "udp", addr, scaipUser, "wrong-password", 0, false, "<mrq><ref>W1</ref><cid>4711</cid><dty>3</dty></mrq>")
		if f := finals(lines); len(f) != 1 || f[0].Status != 403 || len(mrsOf(t, lines)) != 0 {
			t.Fatalf("wrong digest: %+v, want 403 and no <mrs>", lines)
		}
		lines = peer.send(t, "udp", addr, scaipUser, scaipPass, 0, true, "<mrq><ref>W2</ref><cid>4711</cid><dty>3</dty></mrq>")
		if f := finals(lines); len(f) != 1 || f[0].Status != 401 || len(mrsOf(t, lines)) != 0 {
			t.Fatalf("unauthenticated: %+v, want 401 and no <mrs>", lines)
		}
		lines = peer.send(t, "tcp", s.SCAIPAddr("tcp"), scaipUser, scaipPass, 1, false, "<mrq><ref>W3</ref><cid>999</cid><dty>3</dty></mrq>")
		if m := mrsOf(t, lines); len(m) != 1 || m[0].SNU != scaip.WrongData || m[0].Ref != "W3" {
			t.Fatalf("unknown unit: %+v, want snu 3", lines)
		}
		if v := testenv.Metric(t, base+"/metrics", `vaka_scaip_sip_requests_total{result="wrong_digest"}`); v != 1 {
			t.Errorf("wrong_digest counted %v", v)
		}
		if v := testenv.Metric(t, base+"/metrics", `vaka_scaip_messages_total{result="unknown_device"}`); v != 1 {
			t.Errorf("unknown_device counted %v", v)
		}
	})

	t.Run("presence keys", func(t *testing.T) {
		lines := peer.send(t, "tcp", s.SCAIPAddr("tcp"), scaipUser, scaipPass, 3, false,
			"<mrq><ref>K1</ref><cid>4711</cid><dty>3</dty></mrq>",
			"<mrq><ref>K2</ref><cid>4711</cid><dty>3</dty><stc>0088</stc></mrq>",
			"<mrq><ref>K3</ref><cid>4711</cid><dty>3</dty><stc>0111</stc></mrq>")
		m := mrsOf(t, lines)
		if len(m) != 3 {
			t.Fatalf("<mrs> %+v", lines)
		}
		for _, r := range m {
			if r.SNU != scaip.OK {
				t.Fatalf("<mrs> %+v", r)
			}
		}
		a := st.Next(t, 2*time.Second, func(a *alarm.Alarm) bool {
			return a.Device == "larm-4711" && a.State == alarm.Presence && strings.Contains(a.History()[len(a.History())-1].Note, "0111")
		})
		if !a.Open() || a.PresenceAt() == nil {
			t.Fatalf("after 0088 and 0111: %+v", a)
		}
	})
}

// On a full disk the hub still shows the unit's alarm but answers its
// MESSAGE with <mrs> snu 6 (busy), as MQTT withholds the PUBACK; when space
// returns the unit's resend gets snu 0.
func TestIntegrationSCAIPFullDiskBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a third-party SIP unit under node against a whole hub")
	}
	certFile, keyFile, certPEM, keyPEM := selfSigned(t)
	dir := filepath.Join(t.TempDir(), "data")
	testenv.Tmpfs(t, dir, 512<<10)
	var cfg hub.Config
	if err := config.Decode("hub.yaml", scaipHubYAML(t, dir, certFile, keyFile), &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	peer := newSCAIPPeer(t, certPEM, keyPEM)
	filler := filepath.Join(dir, "filler")
	testenv.FillDisk(t, filler)
	body := "<mrq><ref>D1</ref><cid>4711</cid><dty>0003</dty></mrq>"
	lines := peer.send(t, "udp", s.SCAIPAddr("udp"), scaipUser, scaipPass, 1, false, body)
	m := mrsOf(t, lines)
	if len(m) != 1 || m[0].SNU != scaip.Busy || m[0].Ref != "D1" {
		t.Fatalf("on a full disk: %+v, want snu 6", lines)
	}
	if len(s.Hub.Alarms()) == 0 {
		t.Fatal("the alarm is not shown while the disk is full")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	lines = peer.send(t, "udp", s.SCAIPAddr("udp"), scaipUser, scaipPass, 1, false, body)
	if m := mrsOf(t, lines); len(m) != 1 || m[0].SNU != scaip.OK {
		t.Fatalf("resend after space returned: %+v, want snu 0", lines)
	}
}
