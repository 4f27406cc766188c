package scaipsip

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vaka-care/vaka/scaip"
)

// recorder is a Handler that answers snu 0 for a parsable <mrq> and the
// parser's snu otherwise, remembering which account sent what.
type recorder struct {
	mu       sync.Mutex
	accounts []string
}

func (r *recorder) HandleSCAIP(account string, body []byte) scaip.Response {
	r.mu.Lock()
	r.accounts = append(r.accounts, account)
	r.mu.Unlock()
	req, err := scaip.Parse(body)
	if err != nil {
		e := err.(*scaip.Error)
		return scaip.NewResponse(e.Ref, e.SNU)
	}
	return scaip.NewResponse(req.Ref, scaip.OK)
}

type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fixedClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testServer(c *fixedClock, h Handler) *Server {
	ha1 := md5hex("unit1:vaka:pw")
	return &Server{h: h, auth: newDigestAuth("vaka", map[string]string{"unit1": ha1}, c.now)}
}

const rawMessage = "MESSAGE sip:scaip@127.0.0.1:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-1\r\n" +
	"From: <sip:unit1@127.0.0.2>;tag=1\r\n" +
	"To: <sip:scaip@127.0.0.1>\r\n" +
	"Call-ID: c1\r\n" +
	"CSeq: 1 MESSAGE\r\n" +
	"Max-Forwards: 70\r\n" +
	"%s" +
	"Content-Type: application/scaip+xml\r\n" +
	"Content-Length: %d\r\n\r\n%s"

func message(t testing.TB, authz, body string) *sip.Request {
	t.Helper()
	h := ""
	if authz != "" {
		h = "Authorization: " + authz + "\r\n"
	}
	m, err := sip.ParseMessage([]byte(fmt.Sprintf(rawMessage, h, len(body), body)))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

// sign answers a challenge as RFC 2617 says, for the test's own requests.
func sign(challenge, user, pass, method, uri string, nc int) string {
	nonce := between(challenge, `nonce="`, `"`)
	ha1 := md5hex(user + ":vaka:" + pass)
	ncs := fmt.Sprintf("%08x", nc)
	resp := md5hex(ha1 + ":" + nonce + ":" + ncs + ":abc:auth:" + md5hex(method+":"+uri))
	return fmt.Sprintf(`Digest username="%s", realm="vaka", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="abc"`,
		user, nonce, uri, resp, ncs)
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

func TestDigest(t *testing.T) {
	c := &fixedClock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	rec := &recorder{}
	s := testServer(c, rec)
	body := "<mrq><ref>1</ref><cid>1</cid><dty>3</dty></mrq>"
	uri := "sip:scaip@127.0.0.1:5060"

	d := s.decide(message(t, "", body))
	if d.status != 401 || !strings.Contains(d.challenge, `qop="auth"`) || !strings.Contains(d.challenge, "algorithm=MD5") || d.mrs != nil {
		t.Fatalf("no credentials: %+v", d)
	}
	ch := d.challenge
	if d := s.decide(message(t, "Basic dW5pdDE6cHc=", body)); d.status != 401 || d.result != authBasic || d.mrs != nil {
		t.Fatalf("Basic: %+v", d)
	}
	if d := s.decide(message(t, sign(ch, "unit1", "wrong", "MESSAGE", uri, 1), body)); d.status != 403 || d.result != authWrong {
		t.Fatalf("wrong password: %+v", d)
	}
	if d := s.decide(message(t, sign(ch, "nobody", "pw", "MESSAGE", uri, 1), body)); d.status != 403 || d.result != authUnknown {
		t.Fatalf("unknown account: %+v", d)
	}
	good := sign(ch, "unit1", "pw", "MESSAGE", uri, 1)
	d = s.decide(message(t, good, body))
	if d.status != 200 || d.mrs == nil || d.mrs.SNU != scaip.OK || d.account != "unit1" {
		t.Fatalf("good digest: %+v", d)
	}
	// The same request replayed (same nonce and count): refused.
	if d := s.decide(message(t, good, body)); d.status != 403 || d.result != authReplay {
		t.Fatalf("replay: %+v", d)
	}
	// The next count on the same nonce is fine.
	if d := s.decide(message(t, sign(ch, "unit1", "pw", "MESSAGE", uri, 2), body)); d.status != 200 {
		t.Fatalf("nc 2: %+v", d)
	}
	// An expired nonce: challenged again, stale.
	c.add(nonceTTL + time.Second)
	if d := s.decide(message(t, sign(ch, "unit1", "pw", "MESSAGE", uri, 3), body)); d.status != 401 || !strings.Contains(d.challenge, "stale=true") {
		t.Fatalf("stale: %+v", d)
	}
	// A nonce not made by this receiver (a restart): challenged again.
	forged := strings.Replace(good, between(good, `nonce="`, `"`), "abc.def", 1)
	if d := s.decide(message(t, forged, body)); d.status != 401 {
		t.Fatalf("foreign nonce: %+v", d)
	}
	if len(rec.accounts) != 2 {
		t.Fatalf("handler saw %d requests, want only the 2 authenticated", len(rec.accounts))
	}
}

func TestDecideContentTypeAndMrs(t *testing.T) {
	c := &fixedClock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	rec := &recorder{}
	s := testServer(c, rec)
	ch := s.decide(message(t, "", "x")).challenge
	uri := "sip:scaip@127.0.0.1:5060"
	raw := fmt.Sprintf(rawMessage, "Authorization: "+sign(ch, "unit1", "pw", "MESSAGE", uri, 1)+"\r\n", 5, "hello")
	pm, err := sip.ParseMessage([]byte(strings.Replace(raw, "application/scaip+xml", "text/plain", 1)))
	if err != nil {
		t.Fatal(err)
	}
	m := pm.(*sip.Request)
	if d := s.decide(m); d.status != 415 || d.mrs != nil {
		t.Fatalf("text/plain: %+v", d)
	}
	// An <mrs> sent to the receiver is taken (200) and never answered with an <mrs>.
	if d := s.decide(message(t, sign(ch, "unit1", "pw", "MESSAGE", uri, 2), `<?xml version="1.0"?><mrs><ref>1</ref><snu>0</snu></mrs>`)); d.status != 200 || d.mrs != nil {
		t.Fatalf("<mrs> in: %+v", d)
	}
	// Malformed SCAIP is a SIP 200 with an <mrs> that says why.
	if d := s.decide(message(t, sign(ch, "unit1", "pw", "MESSAGE", uri, 3), `<mrq><ref>9</ref><cid>1</cid></mrq>`)); d.status != 200 || d.mrs == nil || d.mrs.SNU != scaip.MandatoryMiss || d.mrs.Ref != "9" {
		t.Fatalf("bad mrq: %+v", d)
	}
}

// FuzzSIPEntry feeds raw SIP bytes through sipgo's parser and the
// receiver's decision: never a panic, never a handler call without valid
// Digest, and only the statuses the receiver means to send.
func FuzzSIPEntry(f *testing.F) {
	body := "<mrq><ref>1</ref><cid>1</cid><dty>3</dty></mrq>"
	f.Add([]byte(fmt.Sprintf(rawMessage, "", len(body), body)))
	f.Add([]byte(fmt.Sprintf(rawMessage, "Authorization: Digest username=\"unit1\", realm=\"vaka\", nonce=\"1.2\", uri=\"x\", response=\"y\", qop=auth, nc=00000001, cnonce=\"c\"\r\n", len(body), body)))
	f.Add([]byte(fmt.Sprintf(rawMessage, "Authorization: Basic dW5pdDE6cHc=\r\n", 3, "abc")))
	f.Add([]byte("INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	c := &fixedClock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := sip.ParseMessage(raw)
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok {
			return
		}
		rec := &recorder{}
		d := testServer(c, rec).decide(req)
		switch d.status {
		case 200, 401, 403, 405, 415:
		default:
			t.Fatalf("status %d", d.status)
		}
		if len(rec.accounts) > 0 && d.result != "ok" {
			t.Fatalf("handler called for %s", d.result)
		}
		// The transaction side of onRequest: its key, the answer with a
		// stable To tag, and where a UDP answer goes.
		if via := req.Via(); via != nil && req.To() != nil && req.CallID() != nil {
			key := txKey(req, via)
			res := (&Server{}).response(req, d.status, d.reason, key)
			again := (&Server{}).response(req, d.status, d.reason, key)
			if res.To() == nil || res.To().Value() != again.To().Value() {
				t.Fatalf("To tag not stable: %v / %v", res.To(), again.To())
			}
			_ = res.String()
			_ = responseAddr(req)
		}
	})
}

// FuzzParseDigest keeps the Authorization parser from panicking.
func FuzzParseDigest(f *testing.F) {
	f.Add(`Digest username="a", realm="vaka", nonce="1.2", uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Basic abc`)
	f.Add(`Digest a="`)
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseDigest(h)
		if err == nil && (p["username"] == "" || p["response"] == "") {
			t.Fatalf("accepted without mandatory fields: %v", p)
		}
	})
}

func TestNonceCountWindow(t *testing.T) {
	var w ncWindow
	for _, c := range []struct {
		nc   uint64
		want bool
	}{{0, false}, {1, true}, {3, true}, {2, true}, {2, false}, {3, false}, {1500, true}, {600, true}, {476, false}, {600, false}, {1501, true}} {
		if got := w.use(c.nc); got != c.want {
			t.Fatalf("nc %d: %v, want %v", c.nc, got, c.want)
		}
	}
}

// FuzzAuthFieldsAgree: the receiver's map-free Authorization reader and
// parseDigest accept and refuse the same headers, with the same fields.
func FuzzAuthFieldsAgree(f *testing.F) {
	f.Add(`Digest username="a", realm="vaka", nonce="1.2", uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest USERNAME="a", realm=vaka, nonce="1.2", uri="sip:x", response="00", response="01"`)
	f.Add(`Basic abc`)
	f.Add(`Digest a="`)
	f.Add(`digest a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,l=12,m=13,n=14,o=15,p=16,username=u,realm=r,nonce=n,uri=u,response=r`)
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseDigest(h)
		var a authFields
		aerr := a.parse(h)
		if (err == nil) != (aerr == nil) || err != nil && err.Error() != aerr.Error() {
			t.Fatalf("parseDigest: %v; authFields: %v", err, aerr)
		}
		if err != nil {
			return
		}
		got := authFields{p["username"], p["realm"], p["nonce"], p["uri"], p["response"], p["algorithm"], p["qop"], p["nc"], p["cnonce"]}
		if got != a {
			t.Fatalf("parseDigest %+v, authFields %+v", got, a)
		}
	})
}
