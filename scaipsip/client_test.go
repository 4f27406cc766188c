package scaipsip

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/scaip"
)

// echoHandler answers snu 0 with the request's own ref.
type echoHandler struct{}

func (echoHandler) HandleSCAIP(_ string, body []byte) scaip.Response {
	r, err := scaip.Parse(body)
	if err != nil {
		return scaip.NewResponse("", scaip.InvalidFormat)
	}
	return scaip.NewResponse(r.Ref, scaip.OK)
}

func mrqBody(ref string) []byte {
	r := scaip.Request{Ref: ref, Cid: "1", Dty: "0003"}
	return r.Marshal()
}

// One kept sender, Vaka's receiver: 16 sends at once after the first
// each get the <mrs> with their own ref under the one nonce (counts out
// of order are within the receiver's window); the receiver restarts on
// the same port (a new nonce secret): the next send is challenged again
// and goes through.
func TestSenderOverlapAndRestart(t *testing.T) {
	start := func(addr string) *Server {
		s, err := Start(Config{UDP: addr, Realm: "vaka", Accounts: map[string]string{"unit1": md5hex("unit1:vaka:pw")},
			Registry: prometheus.NewRegistry(), MrsTimeout: time.Second}, echoHandler{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	srv := start("127.0.0.1:0")
	addr := srv.Addr("udp")
	s, err := NewSender("udp", "", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	send := func(ref string) string {
		res, err := s.Send(context.Background(), SendOptions{Addr: addr, Username: "unit1", Password: "pw", Body: mrqBody(ref), Timeout: 5 * time.Second})
		if err != nil || res.Mrs == nil {
			return fmt.Sprintf("%s: SIP %d %v", ref, res.SIPStatus, err)
		}
		return fmt.Sprintf("%s→%s/%d", ref, res.Mrs.Ref, res.Mrs.SNU)
	}
	if got := send("W0"); got != "W0→W0/0" {
		t.Fatal(got)
	}
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = send(fmt.Sprintf("W%d", i+1)) }()
	}
	wg.Wait()
	for i, g := range got {
		if want := fmt.Sprintf("W%d→W%d/0", i+1, i+1); g != want {
			t.Errorf("overlapping send %d: %s, want %s", i+1, g, want)
		}
	}
	if st := s.Stats(); st.Challenges != 1 || st.Unmatched != 0 || st.Sent != 17 {
		t.Errorf("stats %+v, want 17 sent under 1 challenge, none unmatched", st)
	}
	srv.Close()
	srv = start(addr)
	defer srv.Close()
	if got := send("X1"); got != "X1→X1/0" {
		t.Fatalf("after the receiver restarted: %s", got)
	}
	if st := s.Stats(); st.Challenges != 2 {
		t.Errorf("challenges %d after the restart, want 2", st.Challenges)
	}
}

// An <mrs> from an address that is not the receiver's is refused 403 and
// not taken as the answer (over UDP anyone can write to the sender's
// port); the receiver's own answer then is.
func TestSenderRefusesForeignMrs(t *testing.T) {
	centre, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer centre.Close()
	s, err := NewSender("udp", "", centre.LocalAddr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type out struct {
		res SendResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := s.Send(context.Background(), SendOptions{Addr: centre.LocalAddr().String(), Body: mrqBody("F1"), Timeout: 5 * time.Second})
		done <- out{res, err}
	}()
	c := &udpUnit{t: t, conn: centre}
	req := c.expect("MESSAGE ", 3*time.Second)
	via := header(req, "Via") // SIP/2.0/UDP host:port;branch=…
	hp, _, _ := strings.Cut(strings.TrimPrefix(via, "SIP/2.0/UDP "), ";")
	senderAddr, err := net.ResolveUDPAddr("udp", hp)
	if err != nil {
		t.Fatalf("via %q: %v", via, err)
	}
	c.hub = senderAddr
	c.answer200(req)

	fc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	forger := &udpUnit{t: t, conn: fc, hub: senderAddr}
	forger.write(forger.message("z9hG4bK-forged", "", "<mrs><ref>F1</ref><snu>0</snu></mrs>"))
	forger.expect("SIP/2.0 403", 3*time.Second)
	select {
	case o := <-done:
		t.Fatalf("the send took a forged answer: %+v %v", o.res.Mrs, o.err)
	case <-time.After(200 * time.Millisecond):
	}
	c.write(c.message("z9hG4bK-real", "", "<mrs><ref>F1</ref><snu>4</snu></mrs>"))
	c.expect("SIP/2.0 200", 3*time.Second)
	o := <-done
	if o.err != nil || o.res.Mrs == nil || o.res.Mrs.SNU != scaip.Hold {
		t.Fatalf("answer %+v %v, want the centre's snu 4", o.res.Mrs, o.err)
	}
	if st := s.Stats(); st.Foreign != 1 {
		t.Errorf("foreign %d, want 1", st.Foreign)
	}
}

// An <mrs> for each of several waiting refs goes to its own send whatever
// the order; a second send with the same ref takes the next one; one for
// no waiting ref is not taken.
func TestWaitersRouteByRef(t *testing.T) {
	var w waiters
	a, b, b2 := w.add("A"), w.add("B"), w.add("B")
	for _, ref := range []string{"B", "Z", "A", "B"} {
		r := scaip.NewResponse(ref, scaip.OK)
		took := w.deliver(&r, nil)
		if took != (ref != "Z") {
			t.Errorf("%s taken %v", ref, took)
		}
	}
	for name, c := range map[string]chan answered{"A": a, "B": b, "B2": b2} {
		select {
		case x := <-c:
			if !strings.HasPrefix(name, x.mrs.Ref) {
				t.Errorf("%s got %s", name, x.mrs.Ref)
			}
		default:
			t.Errorf("%s got nothing", name)
		}
	}
	if len(w.by) != 0 {
		t.Errorf("waiters left: %v", w.by)
	}
}

// FuzzSenderAnswer feeds what a centre (or anyone reaching the sender's
// port) may send as an <mrs>: never a panic, and an answer reaches a
// waiting send only when it parses and carries that send's ref.
func FuzzSenderAnswer(f *testing.F) {
	for _, s := range []string{"<mrs><ref>R1</ref><snu>0</snu></mrs>", "<mrs><ref>R1</ref><snu>4</snu><hbi>5</hbi></mrs>",
		"<mrs><ref>R2</ref><snu>0</snu></mrs>", "<mrs><ref></ref></mrs>", "<mrq><ref>R1</ref></mrq>", "<mrs><ref>R1</ref><snu>0",
		"\xff\xfe<mrs/>", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Sender{}
		w := s.wait.add("R1")
		s.answer(b)
		select {
		case a := <-w:
			if a.mrs == nil || a.mrs.Ref != "R1" {
				t.Fatalf("a send waiting for R1 got %+v from %q", a.mrs, b)
			}
			if _, err := scaip.ParseResponse(b); err != nil {
				t.Fatalf("delivered what does not parse: %q", b)
			}
			if a.mrs.Hbi != 0 && (a.mrs.Hbi < 1 || a.mrs.Hbi > 1440) {
				t.Fatalf("hbi %d outside 1–1440 from %q", a.mrs.Hbi, b)
			}
		default:
			if st := s.Stats(); st.Unmatched != 1 {
				t.Fatalf("not delivered and not counted: %q", b)
			}
		}
	})
}

func TestSenderFromPeer(t *testing.T) {
	for _, c := range []struct {
		to, src string
		want    bool
	}{
		{"127.0.0.1:5060", "127.0.0.1:5060", true},
		{"127.0.0.1:5060", "127.0.0.1:40000", true},
		{"127.0.0.1:5060", "127.0.0.3:5060", false},
		{"0.0.0.0:5060", "127.0.0.1:5060", true},
		{"[::]:5060", "[::1]:5060", true},
		{"0.0.0.0:5060", "192.0.2.1:5060", false},
		{"192.0.2.7:5061", "192.0.2.7:5061", true},
		{"192.0.2.7:5061", "garbage", false},
	} {
		s := &Sender{peers: peerIPs(c.to)}
		if got := s.fromPeer(c.src); got != c.want {
			t.Errorf("to %s, <mrs> from %s: taken %v, want %v", c.to, c.src, got, c.want)
		}
	}
}
