package scaipsip

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	dto "github.com/prometheus/client_model/go"
)

func fastCount(s *Server, taken bool) float64 {
	c := s.fastDeclined
	if taken {
		c = s.fastTaken
	}
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// fastSeeds are requests in the plain form a unit sends, and variants the
// fast path must decline or read exactly as sipgo does.
func fastSeeds() [][]byte {
	body := "<mrq><ref>1</ref><cid>1</cid><dty>3</dty></mrq>"
	authz := "Authorization: Digest username=\"unit1\", realm=\"vaka\", nonce=\"1.2\", uri=\"sip:scaip@127.0.0.1:5060\", response=\"0123\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"\r\n"
	plain := fmt.Sprintf(rawMessage, authz, len(body), body)
	seeds := []string{
		plain,
		fmt.Sprintf(rawMessage, "", len(body), body),
		strings.Replace(plain, ";branch=z9hG4bK-1", ";branch=z9hG4bK-1;rport", 1),
		strings.Replace(plain, "127.0.0.2:5070", "unit.example", 1),
		strings.Replace(plain, "To: <sip:scaip@127.0.0.1>", "To: <sip:scaip@127.0.0.1>;tag=abc", 1),
		strings.Replace(plain, "From: <sip:unit1@127.0.0.2>;tag=1", "From: Unit One <sip:unit1@127.0.0.2;transport=udp>;tag=1", 1),
		strings.Replace(plain, "From: <sip:unit1@127.0.0.2>;tag=1", "From: sip:unit1@127.0.0.2;tag=1", 1),
		strings.Replace(plain, "Via:", "v:", 1),
		strings.Replace(plain, "Max-Forwards: 70\r\n", "Contact:  <sip:unit1@127.0.0.2:5070;transport=udp>\r\n", 1), // as npm sip sends it
		strings.Replace(plain, "Content-Length:", "l:", 1),
		strings.Replace(plain, "Call-ID: c1\r\n", "Call-ID: c1\r\nRecord-Route: <sip:p.example;lr>\r\n", 1),
		strings.Replace(plain, "Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-1", "Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-2", 1),
		strings.Replace(plain, "Content-Type: application/scaip+xml", "Content-Type: application/SCAIP+xml; charset=utf-8", 1),
		strings.Replace(plain, "CSeq: 1 MESSAGE", "CSeq: 4294967295 MESSAGE", 1), // over 9 digits: sipgo's
		strings.Replace(plain, "MESSAGE sip:", "OPTIONS sip:", 1),
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.x;rport=5070;received=127.0.0.2\r\nFrom: <sip:scaip@127.0.0.1>;tag=a\r\nTo: <sip:unit1@127.0.0.2>;tag=b\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.x\r\nCSeq: 1 MESSAGE\r\n\r\n",
	}
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}

// TestFastParseSeeds: the plain form is taken, the forms the fast path
// leaves to sipgo (compact names, a proxy's Record-Route or second Via,
// another method) are declined.
func TestFastParseSeeds(t *testing.T) {
	seeds := fastSeeds()
	want := []bool{true, true, true, true, true, true, true, false, true, false, false, false, true, false, false}
	for i, w := range want {
		var r fastReq
		if got := r.parse(seeds[i]); got != w {
			t.Errorf("seed %d: taken %v, want %v:\n%s", i, got, w, seeds[i])
		}
	}
	var r fastReq
	if !r.parse(seeds[2]) || !r.rport || string(r.branch) != "z9hG4bK-1" || r.viaPort != 5070 || string(r.fromURI) != "sip:unit1@127.0.0.2" || r.toTag {
		t.Fatalf("fields: %+v", r)
	}
	var a fastResp
	if !a.parse(seeds[15]) || a.status != 200 || string(a.branch) != "z9hG4bK.x" {
		t.Fatalf("answer: %+v", a)
	}
	if !a.parse(seeds[16]) || a.status != 180 {
		t.Fatalf("provisional: %+v", a)
	}
}

// FuzzFastRequestAgrees: whatever the fast path takes, sipgo's parser
// reads the same way (method, Via, From/To URIs and tag, Call-ID, CSeq,
// Authorization, Content-Type, body, transaction key), and the answer
// the fast path writes says what sipgo's would (same Via with rport and
// received, From, To with the same tag, Call-ID, CSeq, status).
func FuzzFastRequestAgrees(f *testing.F) {
	for _, s := range fastSeeds() {
		f.Add(s)
	}
	src := netip.MustParseAddrPort("127.0.0.9:40000")
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r fastReq
		if !r.parse(raw) {
			return
		}
		m, err := sip.ParseMessage(append([]byte(nil), raw...))
		if err != nil {
			t.Fatalf("taken by the fast path, refused by sipgo: %v", err)
		}
		req, ok := m.(*sip.Request)
		if !ok || req.Method != sip.MESSAGE {
			t.Fatalf("not a MESSAGE to sipgo: %T", m)
		}
		via := req.Via()
		if via == nil || len(req.GetHeaders("Via")) != 1 || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
			t.Fatal("sipgo misses a header the fast path read")
		}
		if req.GetHeader("Record-Route") != nil {
			t.Fatal("Record-Route taken")
		}
		branch, _ := via.Params.Get("branch")
		if via.Host != string(r.viaHost) || via.Port != r.viaPort || branch != string(r.branch) || via.Params.Has("rport") != r.rport || !strings.EqualFold(via.Transport, "UDP") {
			t.Fatalf("Via: sipgo %s %d %q rport %v, fast %s %d %q rport %v", via.Host, via.Port, branch, via.Params.Has("rport"), r.viaHost, r.viaPort, r.branch, r.rport)
		}
		if req.Recipient.Host != string(r.uriHost) {
			t.Fatalf("Request-URI host: sipgo %q, fast %q", req.Recipient.Host, r.uriHost)
		}
		for _, c := range []struct {
			name        string
			sipgo, fast string
		}{
			{"From URI", req.From().Address.String(), uriString(t, r.fromURI)},
			{"To URI", req.To().Address.String(), uriString(t, r.toURI)},
			{"Call-ID", req.CallID().Value(), string(r.callID)},
			{"CSeq", fmt.Sprint(req.CSeq().SeqNo), fmt.Sprint(r.cseq)},
			{"Authorization", headerValue(req, "Authorization"), string(r.authz)},
			{"Content-Type", headerValue(req, "Content-Type"), string(r.contentType)},
			{"body", string(req.Body()), string(r.body)},
		} {
			if c.sipgo != c.fast {
				t.Fatalf("%s: sipgo %q, fast %q", c.name, c.sipgo, c.fast)
			}
		}
		if req.To().Params.Has("tag") != r.toTag {
			t.Fatalf("To tag: sipgo %v, fast %v", req.To().Params.Has("tag"), r.toTag)
		}
		key := txKey(req, via)
		fastKey := string(r.branch) + "|" + string(r.viaHost) + ":" + fmt.Sprint(r.viaPort) + "|MESSAGE"
		if key != fastKey {
			t.Fatalf("transaction key: sipgo %q, fast %q", key, fastKey)
		}

		// The answers, each read back by sipgo.
		req.SetSource(src.String())
		want := (&Server{}).response(req, 200, "OK", key)
		tag := string(appendToTag(nil, []byte(key), r.callID))
		gotM, err := sip.ParseMessage(appendResponse(nil, &r, src, 200, "OK", tag))
		if err != nil {
			t.Fatalf("the fast path's answer does not parse: %v", err)
		}
		got := gotM.(*sip.Response)
		if got.StatusCode != 200 {
			t.Fatalf("status %d", got.StatusCode)
		}
		for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
			if headerValue(got, h) != headerValue(want, h) {
				t.Fatalf("answer %s: fast %q, sipgo path %q", h, headerValue(got, h), headerValue(want, h))
			}
		}
		if want.Destination() != responseDst(&r, src).String() {
			t.Fatalf("answer goes to %s on sipgo's path, %s on the fast path", want.Destination(), responseDst(&r, src))
		}
	})
}

// FuzzFastResponseAgrees: an answer the fast path takes is a response to
// a MESSAGE with one Via to sipgo, with the same status and branch.
func FuzzFastResponseAgrees(f *testing.F) {
	for _, s := range fastSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r fastResp
		if !r.parse(raw) {
			return
		}
		m, err := sip.ParseMessage(append([]byte(nil), raw...))
		if err != nil {
			t.Fatalf("taken by the fast path, refused by sipgo: %v", err)
		}
		res, ok := m.(*sip.Response)
		if !ok || res.StatusCode != r.status {
			t.Fatalf("sipgo: %T %v, fast status %d", m, m, r.status)
		}
		via := res.Via()
		if via == nil || len(res.GetHeaders("Via")) != 1 || res.CSeq() == nil || res.CSeq().MethodName != sip.MESSAGE {
			t.Fatal("not a response to a MESSAGE with one Via to sipgo")
		}
		if b, _ := via.Params.Get("branch"); b != string(r.branch) {
			t.Fatalf("branch: sipgo %q, fast %q", b, r.branch)
		}
	})
}

func uriString(t *testing.T, u []byte) string {
	var a sip.Uri
	if err := sip.ParseUri(string(u), &a); err != nil {
		t.Fatalf("URI %q taken by the fast path, refused by sipgo: %v", u, err)
	}
	return a.String()
}

func headerValue(m interface{ GetHeader(string) sip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// TestFastPathOverUDP: over a real socket, a unit's plain MESSAGE and its
// answer to the <mrs> are read by the fast path; the same exchange with
// compact header names (which the fast path declines) is answered the
// same by sipgo's path, and a retransmission that arrives in either form
// gets the first answer's To tag without being handled again.
func TestFastPathOverUDP(t *testing.T) {
	rec := &recorder{}
	s, _ := startUDP(t, rec, time.Second)
	u := newUDPUnit(t, s.Addr("udp"))
	body := "<mrq><ref>f1</ref><cid>1</cid><dty>3</dty></mrq>"
	u.write(u.message("z9hG4bK-f0", "", body))
	ch := header(u.expect("SIP/2.0 401", 2*time.Second), "WWW-Authenticate")
	uri := "sip:scaip@" + s.Addr("udp")
	if fastCount(s, true) != 1 || fastCount(s, false) != 0 {
		t.Fatalf("the challenge: taken %v, declined %v", fastCount(s, true), fastCount(s, false))
	}
	req := u.message("z9hG4bK-f1", sign(ch, "unit1", "pw", "MESSAGE", uri, 1), body)
	u.write(req)
	ok1 := u.expect("SIP/2.0 200", 2*time.Second)
	mrs := u.expect("MESSAGE ", 2*time.Second)
	if !strings.Contains(mrs, "<ref>f1</ref>") || !strings.Contains(mrs, "<snu>0</snu>") || header(mrs, "To") != "<sip:unit1@127.0.0.1>" {
		t.Fatalf("<mrs>: %q", mrs)
	}
	local := u.conn.LocalAddr().String()
	if v := header(ok1, "Via"); !strings.Contains(v, "rport="+local[strings.LastIndexByte(local, ':')+1:]) || !strings.Contains(v, "received=127.0.0.1") {
		t.Fatalf("Via of the answer %q: rport and received not filled in", v)
	}
	u.answer200(mrs)
	deadline := time.Now().Add(2 * time.Second)
	for sipResult(s, "mrs_sent") != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sipResult(s, "mrs_sent") != 1 || fastCount(s, true) != 3 || fastCount(s, false) != 0 {
		t.Fatalf("mrs_sent %v, taken %v, declined %v", sipResult(s, "mrs_sent"), fastCount(s, true), fastCount(s, false))
	}

	// The retransmission in compact form: sipgo's path, same To tag.
	compact := strings.Replace(string(req), "\r\nVia:", "\r\nv:", 1)
	u.write([]byte(compact))
	ok2 := u.expect("SIP/2.0 200", 2*time.Second)
	if header(ok2, "To") != header(ok1, "To") || fastCount(s, false) != 1 {
		t.Fatalf("To %q, first %q; declined %v", header(ok2, "To"), header(ok1, "To"), fastCount(s, false))
	}
	// A new request in compact form: handled by sipgo's path, <mrs> too.
	req3 := strings.Replace(string(u.message("z9hG4bK-f3", sign(ch, "unit1", "pw", "MESSAGE", uri, 2), "<mrq><ref>f3</ref><cid>1</cid><dty>3</dty></mrq>")), "\r\nVia:", "\r\nv:", 1)
	u.write([]byte(req3))
	u.expect("SIP/2.0 200", 2*time.Second)
	if m := u.expect("MESSAGE ", 2*time.Second); !strings.Contains(m, "<ref>f3</ref>") {
		t.Fatalf("<mrs> on sipgo's path: %q", m)
	}
	// Another content type, signed: 415 with Accept, from the fast path.
	plainText := strings.Replace(string(u.message("z9hG4bK-f4", sign(ch, "unit1", "pw", "MESSAGE", uri, 3), "hello")), "application/scaip+xml", "text/plain", 1)
	u.write([]byte(plainText))
	if m := u.expect("SIP/2.0 415", 2*time.Second); header(m, "Accept") != "application/scaip+xml" || header(m, "Call-ID") != "z9hG4bK-f4" {
		t.Fatalf("415: %q", m)
	}
	rec.mu.Lock()
	n := len(rec.accounts)
	rec.mu.Unlock()
	if n != 2 || sipResult(s, "retransmission") != 1 || sipResult(s, "bad_content_type") != 1 || fastCount(s, false) != 2 {
		t.Fatalf("handled %d, retransmissions %v", n, sipResult(s, "retransmission"))
	}
}

// BenchmarkParseRequest compares the fast path's read of a signed plain
// MESSAGE with sipgo's parse of the same bytes (what the receiver did
// before for every UDP datagram).
// go test -run '^$' -bench BenchmarkParseRequest -benchmem ./scaipsip/
func BenchmarkParseRequest(b *testing.B) {
	raw := fastSeeds()[0]
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var r fastReq
			if !r.parse(raw) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("sipgo", func(b *testing.B) {
		b.ReportAllocs()
		p := sip.NewParser()
		for range b.N {
			if _, err := p.ParseSIP(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
