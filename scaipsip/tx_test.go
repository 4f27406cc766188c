package scaipsip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vaka-care/vaka/scaip"
)

// udpUnit is a bare SIP UDP peer: it writes what it is given and reads
// what comes back, so the test sees the receiver's datagrams as they are.
type udpUnit struct {
	t    testing.TB
	conn *net.UDPConn
	hub  *net.UDPAddr
}

func newUDPUnit(t testing.TB, hub string) *udpUnit {
	t.Helper()
	ha, err := net.ResolveUDPAddr("udp", hub)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpUnit{t: t, conn: c, hub: ha}
}

func (u *udpUnit) message(branch, authz, body string) []byte {
	h := ""
	if authz != "" {
		h = "Authorization: " + authz + "\r\n"
	}
	return []byte(fmt.Sprintf("MESSAGE sip:scaip@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\n"+
		"From: <sip:unit1@127.0.0.1>;tag=u1\r\nTo: <sip:scaip@127.0.0.1>\r\nCall-ID: %s\r\nCSeq: 1 MESSAGE\r\n"+
		"Max-Forwards: 70\r\n%sContent-Type: application/scaip+xml\r\nContent-Length: %d\r\n\r\n%s",
		u.hub, u.conn.LocalAddr(), branch, branch, h, len(body), body))
}

func (u *udpUnit) write(b []byte) {
	if _, err := u.conn.WriteToUDP(b, u.hub); err != nil {
		u.t.Fatal(err)
	}
}

// read returns the next datagram, or "" after d.
func (u *udpUnit) read(d time.Duration) string {
	buf := make([]byte, 65536)
	_ = u.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := u.conn.ReadFromUDP(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// expect reads datagrams (at most 10, each within d) until one starts
// with prefix.
func (u *udpUnit) expect(prefix string, d time.Duration) string {
	u.t.Helper()
	for range 10 {
		m := u.read(d)
		if m == "" {
			break
		}
		if strings.HasPrefix(m, prefix) {
			return m
		}
	}
	u.t.Fatalf("no %q within %v", prefix, d)
	return ""
}

// answer200 answers a request datagram with 200 OK.
func (u *udpUnit) answer200(req string) {
	var hdrs bytes.Buffer
	for _, line := range strings.Split(req, "\r\n") {
		if line == "" {
			break
		}
		l := strings.ToLower(line)
		for _, p := range []string{"via:", "from:", "to:", "call-id:", "cseq:"} {
			if strings.HasPrefix(l, p) {
				hdrs.WriteString(line + "\r\n")
			}
		}
	}
	u.write([]byte("SIP/2.0 200 OK\r\n" + hdrs.String() + "Content-Length: 0\r\n\r\n"))
}

func header(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func startUDP(t testing.TB, h Handler, mrsTimeout time.Duration) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := Start(Config{UDP: "127.0.0.1:0", Realm: "vaka", Accounts: map[string]string{"unit1": md5hex("unit1:vaka:pw")},
		Registry: reg, MrsTimeout: mrsTimeout}, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, reg
}

func sipResult(s *Server, r string) float64 {
	var m dto.Metric
	if err := s.results.WithLabelValues(r).Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestUDPRetransmissionAndMrsRetries runs the receiver's own transaction
// handling over a real socket: a retransmitted MESSAGE gets the same 200
// (same To tag) and is not handled again, nor refused as a replay; the
// <mrs> is retransmitted with the same branch until the unit answers, and
// given up (mrs_failed) when it never does.
func TestUDPRetransmissionAndMrsRetries(t *testing.T) {
	rec := &recorder{}
	s, _ := startUDP(t, rec, 1200*time.Millisecond)
	u := newUDPUnit(t, s.Addr("udp"))
	body := "<mrq><ref>r1</ref><cid>1</cid><dty>3</dty></mrq>"

	u.write(u.message("z9hG4bK-a0", "", body))
	ch := header(u.expect("SIP/2.0 401", 2*time.Second), "WWW-Authenticate")
	uri := "sip:scaip@" + s.Addr("udp")
	req := u.message("z9hG4bK-a1", sign(ch, "unit1", "pw", "MESSAGE", uri, 1), body)
	u.write(req)
	ok1 := u.expect("SIP/2.0 200", 2*time.Second)
	mrs1 := u.expect("MESSAGE ", 2*time.Second)
	if !strings.Contains(mrs1, "<snu>0</snu>") || !strings.Contains(mrs1, "<ref>r1</ref>") {
		t.Fatalf("mrs: %q", mrs1)
	}
	// The unit did not hear the 200 and retransmits the same request.
	u.write(req)
	ok2 := u.expect("SIP/2.0 200", 2*time.Second)
	if header(ok1, "To") != header(ok2, "To") || !strings.Contains(header(ok1, "To"), "tag=") {
		t.Fatalf("To of the retransmitted answer %q, first %q", header(ok2, "To"), header(ok1, "To"))
	}
	rec.mu.Lock()
	n := len(rec.accounts)
	rec.mu.Unlock()
	if n != 1 || sipResult(s, "retransmission") != 1 || sipResult(s, authReplay) != 0 {
		t.Fatalf("handled %d times, retransmissions %v, replays %v", n, sipResult(s, "retransmission"), sipResult(s, authReplay))
	}
	// Not answering the <mrs>: the same MESSAGE again after T1.
	mrs2 := u.expect("MESSAGE ", 2*time.Second)
	if header(mrs2, "Via") != header(mrs1, "Via") {
		t.Fatalf("retransmitted <mrs> Via %q, first %q", header(mrs2, "Via"), header(mrs1, "Via"))
	}
	u.answer200(mrs2)
	if m := u.read(1500 * time.Millisecond); m != "" {
		t.Fatalf("after the 200 the receiver still sent %q", m)
	}
	if sipResult(s, "mrs_sent") != 1 || sipResult(s, "mrs_failed") != 0 {
		t.Fatalf("mrs_sent %v mrs_failed %v", sipResult(s, "mrs_sent"), sipResult(s, "mrs_failed"))
	}

	// A unit that never answers its <mrs>: given up at MrsTimeout.
	u.write(u.message("z9hG4bK-a2", sign(ch, "unit1", "pw", "MESSAGE", uri, 2), "<mrq><ref>r2</ref><cid>1</cid><dty>3</dty></mrq>"))
	u.expect("SIP/2.0 200", 2*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for sipResult(s, "mrs_failed") == 0 && time.Now().Before(deadline) {
		u.read(100 * time.Millisecond) // the retransmissions, unanswered
	}
	if sipResult(s, "mrs_failed") != 1 {
		t.Fatalf("mrs_failed %v, want 1 after the timeout", sipResult(s, "mrs_failed"))
	}
}

// TestUDPNonceReuseAndReplay: one nonce signs many requests with a growing
// nonce count (no 401 round trip each); a new request (new branch) that
// replays a used count is refused 403 and counted.
func TestUDPNonceReuseAndReplay(t *testing.T) {
	rec := &recorder{}
	s, _ := startUDP(t, rec, time.Second)
	u := newUDPUnit(t, s.Addr("udp"))
	u.write(u.message("z9hG4bK-b0", "", "<mrq><ref>x</ref><cid>1</cid><dty>3</dty></mrq>"))
	ch := header(u.expect("SIP/2.0 401", 2*time.Second), "WWW-Authenticate")
	uri := "sip:scaip@" + s.Addr("udp")
	for i := 1; i <= 5; i++ {
		u.write(u.message(fmt.Sprintf("z9hG4bK-b%d", i), sign(ch, "unit1", "pw", "MESSAGE", uri, i),
			fmt.Sprintf("<mrq><ref>n%d</ref><cid>1</cid><dty>3</dty></mrq>", i)))
		m := u.expect("SIP/2.0 ", 2*time.Second)
		if !strings.HasPrefix(m, "SIP/2.0 200") {
			t.Fatalf("nc %d: %q", i, m[:min(len(m), 40)])
		}
		u.answer200(u.expect("MESSAGE ", 2*time.Second))
	}
	u.write(u.message("z9hG4bK-b9", sign(ch, "unit1", "pw", "MESSAGE", uri, 3), "<mrq><ref>n9</ref><cid>1</cid><dty>3</dty></mrq>"))
	if m := u.expect("SIP/2.0 ", 2*time.Second); !strings.HasPrefix(m, "SIP/2.0 403") {
		t.Fatalf("replayed nc: %q", m[:min(len(m), 40)])
	}
	if sipResult(s, authReplay) != 1 || sipResult(s, authMissing) != 1 || sipResult(s, "ok") != 5 {
		t.Fatalf("replayed %v unauthenticated %v ok %v", sipResult(s, authReplay), sipResult(s, authMissing), sipResult(s, "ok"))
	}
}

// TestSenderReusesNonce: Vaka's own sender (vaka scaip send, the demo's
// unit) is challenged once, then signs each message with the next nonce
// count; an expired nonce (stale) costs one more challenge, nothing else.
func TestSenderReusesNonce(t *testing.T) {
	c := &fixedClock{t: time.Now()}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	s, err := Start(Config{UDP: "127.0.0.1:0", Realm: "vaka", Accounts: map[string]string{"unit1": md5hex("unit1:vaka:pw")},
		Registry: reg, Now: c.now}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snd, err := NewSender("udp", "", s.Addr("udp"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	send := func(i int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := snd.Send(ctx, SendOptions{Addr: s.Addr("udp"), Username: "unit1", Password: "pw", Timeout: 5 * time.Second,
			Body: []byte(fmt.Sprintf("<mrq><ref>s%d</ref><cid>1</cid><dty>3</dty></mrq>", i))})
		if err != nil || res.SIPStatus != 200 || res.Mrs == nil || res.Mrs.Ref != fmt.Sprintf("s%d", i) {
			t.Fatalf("send %d: %+v, %v", i, res, err)
		}
	}
	for i := range 4 {
		send(i)
	}
	if sipResult(s, authMissing) != 1 || sipResult(s, "ok") != 4 {
		t.Fatalf("4 sends: %v challenges, %v ok; want one challenge", sipResult(s, authMissing), sipResult(s, "ok"))
	}
	c.add(nonceTTL + time.Second)
	send(4)
	send(5)
	if sipResult(s, authStale) != 1 || sipResult(s, "ok") != 6 || sipResult(s, authReplay) != 0 {
		t.Fatalf("after expiry: %v stale, %v ok, %v replays", sipResult(s, authStale), sipResult(s, "ok"), sipResult(s, authReplay))
	}
}

// okHandler answers every request snu 0 without parsing: the benchmark
// below measures the SIP layer alone.
type okHandler struct{}

func (okHandler) HandleSCAIP(string, []byte) scaip.Response { return scaip.NewResponse("1", scaip.OK) }

// BenchmarkReceiverUDP is the SIP layer's cost per SCAIP message over
// loopback UDP, without the hub: a signed MESSAGE (one nonce, the next nc
// each time), its 200, the <mrs> MESSAGE and the unit's 200 to it, one at
// a time. The peer is in the process: CPU per op is both sides.
// go test -run '^$' -bench BenchmarkReceiverUDP -benchmem ./scaipsip/
func BenchmarkReceiverUDP(b *testing.B) {
	s, _ := startUDP(b, okHandler{}, time.Second)
	u := newUDPUnit(b, s.Addr("udp"))
	body := "<mrq><ref>1</ref><cid>1</cid><dty>3</dty></mrq>"
	u.write(u.message("z9hG4bK-c0", "", body))
	ch := header(u.expect("SIP/2.0 401", 2*time.Second), "WWW-Authenticate")
	uri := "sip:scaip@" + s.Addr("udp")
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for i := range b.N {
		u.write(u.message(fmt.Sprintf("z9hG4bK-c%d", i+1), sign(ch, "unit1", "pw", "MESSAGE", uri, i+1), body))
		u.expect("SIP/2.0 200", 2*time.Second)
		u.answer200(u.expect("MESSAGE ", 2*time.Second))
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
