package scaipgen

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeHub is the hub's side of the exchange on a loopback UDP socket: it
// hands each datagram to the test, which answers as the hub would.
type fakeHub struct {
	t    *testing.T
	conn *net.UDPConn
}

func newFakeHub(t *testing.T) *fakeHub {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeHub{t: t, conn: c}
}

// next reads one datagram, at most 5 s.
func (h *fakeHub) next() (string, *net.UDPAddr) {
	h.t.Helper()
	buf := make([]byte, 65536)
	_ = h.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := h.conn.ReadFromUDP(buf)
	if err != nil {
		h.t.Fatalf("fake hub: %v", err)
	}
	return string(buf[:n]), from
}

func (h *fakeHub) write(msg string, to *net.UDPAddr) {
	h.t.Helper()
	if _, err := h.conn.WriteToUDP([]byte(msg), to); err != nil {
		h.t.Fatal(err)
	}
}

func header(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// digestParam is one parameter of a Digest header (quoted or not).
func digestParam(h, name string) string {
	_, rest, ok := strings.Cut(h, " "+name+"=")
	if !ok {
		return ""
	}
	if strings.HasPrefix(rest, `"`) {
		v, _, _ := strings.Cut(rest[1:], `"`)
		return v
	}
	v, _, _ := strings.Cut(rest, ",")
	return v
}

func md5s(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// TestUnitDigestAndAnswer: the unit fetches the nonce with an unsigned
// request, signs each message with RFC 2617's qop=auth response and a
// growing nonce count, frames the body with its length, and answers the
// hub's MESSAGE with a 200 that copies Via, From, To, Call-ID and CSeq.
func TestUnitDigestAndAnswer(t *testing.T) {
	h := newFakeHub(t)
	ha1 := md5s("enhet-1:vaka:hemligt")
	cfg := Config{Hub: h.conn.LocalAddr().String(), Account: "enhet-1", Realm: "vaka", HA1: ha1, Cid: "4711",
		BranchPrefix: "t", CallIDPrefix: "test"}
	type dialed struct {
		u   *Unit
		err error
	}
	dc := make(chan dialed, 1)
	go func() { u, err := Dial(cfg); dc <- dialed{u, err} }()

	first, from := h.next()
	if header(first, "Authorization") != "" {
		t.Fatalf("the nonce request is signed:\n%s", first)
	}
	if !strings.Contains(first, "<cid>4711</cid>") || !strings.Contains(first, "<stc>0102</stc>") {
		t.Fatalf("the nonce request is not a test transmission of cid 4711:\n%s", first)
	}
	h.write("SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"vaka\", nonce=\"abc123\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n", from)
	d := <-dc
	if d.err != nil {
		t.Fatal(d.err)
	}
	u := d.u
	defer u.Close()
	if u.Nonce() != "abc123" {
		t.Fatalf("nonce %q, want abc123", u.Nonce())
	}

	uri := "sip:scaip@" + h.conn.LocalAddr().String()
	callIDs := map[string]bool{}
	for i, body := range []string{"<mrq><ref>a</ref></mrq>", "<mrq><ref>bb</ref><cid>4711</cid></mrq>"} {
		if err := u.Send(i+1, body, true); err != nil {
			t.Fatal(err)
		}
		msg, _ := h.next()
		if want := "MESSAGE " + uri + " SIP/2.0\r\n"; !strings.HasPrefix(msg, want) {
			t.Fatalf("message %d starts %q, want %q", i, msg[:min(len(msg), len(want))], want)
		}
		auth := header(msg, "Authorization")
		nc := fmt.Sprintf("%08x", i+1)
		if got := digestParam(auth, "nc"); got != nc {
			t.Errorf("message %d: nc %q, want %q", i, got, nc)
		}
		if digestParam(auth, "username") != "enhet-1" || digestParam(auth, "realm") != "vaka" ||
			digestParam(auth, "nonce") != "abc123" || digestParam(auth, "uri") != uri {
			t.Errorf("message %d: Authorization %q", i, auth)
		}
		want := md5s(ha1 + ":abc123:" + nc + ":" + digestParam(auth, "cnonce") + ":auth:" + md5s("MESSAGE:"+uri))
		if got := digestParam(auth, "response"); got != want {
			t.Errorf("message %d: response %q, want %q", i, got, want)
		}
		_, gotBody, _ := strings.Cut(msg, "\r\n\r\n")
		if gotBody != body || header(msg, "Content-Length") != fmt.Sprint(len(body)) {
			t.Errorf("message %d: body %q (Content-Length %s), want %q", i, gotBody, header(msg, "Content-Length"), body)
		}
		if id := header(msg, "Call-ID"); !strings.HasPrefix(id, "test-") || callIDs[id] {
			t.Errorf("message %d: Call-ID %q not new or not test-…", i, id)
		} else {
			callIDs[id] = true
		}
		if v := header(msg, "Via"); !strings.Contains(v, ";branch=z9hG4bK-t") {
			t.Errorf("message %d: Via %q", i, v)
		}
	}

	// The hub's <mrs>: the unit answers 200 with the request's headers.
	mrs := "MESSAGE sip:enhet-1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-h1\r\n" +
		"From: <sip:scaip@127.0.0.1>;tag=h\r\nTo: <sip:enhet-1@127.0.0.1>\r\nCall-ID: hub-1\r\nCSeq: 7 MESSAGE\r\n" +
		"Max-Forwards: 70\r\nContent-Type: application/scaip+xml\r\nContent-Length: 5\r\n\r\n<mrs>"
	h.write(mrs, from)
	ok, _ := h.next()
	want := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-h1\r\nFrom: <sip:scaip@127.0.0.1>;tag=h\r\n" +
		"To: <sip:enhet-1@127.0.0.1>\r\nCall-ID: hub-1\r\nCSeq: 7 MESSAGE\r\nContent-Length: 0\r\n\r\n"
	if ok != want {
		t.Errorf("answer to the hub's MESSAGE:\n%q\nwant\n%q", ok, want)
	}
}

// dialErr dials in its own goroutine (the test plays the hub meanwhile)
// and hands over Dial's error, closing a unit it did open.
func dialErr(cfg Config) <-chan error {
	errc := make(chan error, 1)
	go func() {
		u, err := Dial(cfg)
		if err == nil {
			u.Close()
		}
		errc <- err
	}()
	return errc
}

// wantDialErr waits at most 10 s for Dial to fail with an error that
// says want.
func wantDialErr(t *testing.T, errc <-chan error, want string) {
	t.Helper()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err %v, want %s", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Dial did not return within 10 s")
	}
}

// TestDialNoChallenge: a hub that never challenges is an error within
// the 5 s bound, not a hang; the nonce request was sent more than once.
func TestDialNoChallenge(t *testing.T) {
	h := newFakeHub(t)
	start := time.Now()
	errc := dialErr(Config{Hub: h.conn.LocalAddr().String(), Account: "a", Realm: "vaka", Cid: "1"})
	h.next()
	h.next() // sent again after 200 ms
	wantDialErr(t, errc, "no Digest challenge")
	if d := time.Since(start); d < 4*time.Second {
		t.Errorf("gave up after %v, want about 5 s", d)
	}
}

// TestDialChallengeWithoutNonce: a 401 without a nonce is an error.
func TestDialChallengeWithoutNonce(t *testing.T) {
	h := newFakeHub(t)
	errc := dialErr(Config{Hub: h.conn.LocalAddr().String(), Account: "a", Realm: "vaka", Cid: "1"})
	_, from := h.next()
	h.write("SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"vaka\"\r\n\r\n", from)
	wantDialErr(t, errc, "no nonce")
}
