package scaipsip

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/scaip"
)

// heldHandler is an AsyncHandler that keeps every answer until the test
// releases it: a hub waiting for its journal's fsync.
type heldHandler struct {
	recorder
	held chan func()
}

func (h *heldHandler) HandleSCAIPAsync(account string, body []byte, answer func(scaip.Response)) {
	r := h.HandleSCAIP(account, body)
	h.held <- func() { answer(r) }
}

// With an AsyncHandler the read loop answers the SIP 200 and takes the
// next request while the first's <mrs> still waits; each <mrs> goes out
// when its answer comes, after its 200, from the answering goroutine.
func TestUDPAsyncAnswerAfterReadLoopMovedOn(t *testing.T) {
	h := &heldHandler{held: make(chan func(), 4)}
	s, _ := startUDP(t, h, 5*time.Second)
	u := newUDPUnit(t, s.Addr("udp"))
	u.write(u.message("z9hG4bK-c0", "", "<mrq><ref>x</ref><cid>1</cid><dty>3</dty></mrq>"))
	ch := header(u.expect("SIP/2.0 401", 2*time.Second), "WWW-Authenticate")
	uri := "sip:scaip@" + s.Addr("udp")
	for i := 1; i <= 2; i++ {
		u.write(u.message(fmt.Sprintf("z9hG4bK-c%d", i), sign(ch, "unit1", "pw", "MESSAGE", uri, i),
			fmt.Sprintf("<mrq><ref>a%d</ref><cid>1</cid><dty>3</dty></mrq>", i)))
		if m := u.read(2 * time.Second); !strings.HasPrefix(m, "SIP/2.0 200") {
			t.Fatalf("request %d: got %q before its answer was released, want its 200 only", i, m[:min(len(m), 40)])
		}
	}
	if m := u.read(300 * time.Millisecond); m != "" {
		t.Fatalf("an <mrs> before its answer was released: %q", m[:min(len(m), 60)])
	}
	// Released in the other order: each <mrs> names its own ref.
	releaseA1, releaseA2 := <-h.held, <-h.held
	releaseA2()
	mrs := u.expect("MESSAGE ", 2*time.Second)
	if !strings.Contains(mrs, "<ref>a2</ref>") || !strings.Contains(mrs, "<snu>0</snu>") {
		t.Fatalf("first <mrs> released: %q", mrs)
	}
	u.answer200(mrs)
	releaseA1()
	mrs = u.expect("MESSAGE ", 2*time.Second)
	if !strings.Contains(mrs, "<ref>a1</ref>") {
		t.Fatalf("second <mrs> released: %q", mrs)
	}
	u.answer200(mrs)
	deadline := time.Now().Add(2 * time.Second)
	for sipResult(s, "mrs_sent") != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sipResult(s, "mrs_sent") != 2 || sipResult(s, "ok") != 2 {
		t.Fatalf("mrs_sent %v ok %v", sipResult(s, "mrs_sent"), sipResult(s, "ok"))
	}
}

// An answer that comes before the 200 is written waits for it: the <mrs>
// never overtakes the SIP 200 of its request.
func TestLaterMrsWaitsForThe200(t *testing.T) {
	s, _ := startUDP(t, &recorder{}, time.Second)
	l := &laterMrs{s: s}
	l.answer(scaip.NewResponse("r", scaip.OK))
	if l.resp == nil || l.ok {
		t.Fatal("an answer before the 200 was not kept for it")
	}
}

// readyMrs hands over an <mrs> that is ready with the 200 exactly once,
// so the caller sends it with the 200 and nothing sends it again; an
// answer still to come is left to okSent.
func TestReadyMrsOnce(t *testing.T) {
	r := scaip.NewResponse("r", scaip.OK)
	d := decision{mrs: &r}
	if got := d.readyMrs(); got == nil || got.Ref != "r" || d.mrs != nil || d.readyMrs() != nil {
		t.Fatal("a synchronous <mrs> not handed over exactly once")
	}
	s, _ := startUDP(t, &recorder{}, time.Second)
	l := &laterMrs{s: s}
	d = decision{later: l}
	if d.readyMrs() != nil || d.later == nil {
		t.Fatal("an answer still to come was taken")
	}
	l.answer(scaip.NewResponse("q", scaip.OK))
	if got := d.readyMrs(); got == nil || got.Ref != "q" || !l.ok || l.resp != nil {
		t.Fatalf("an answer that came before the 200 not taken with it: %+v", got)
	}
}

// Over UDP the 200 and the <mrs> leave together (one sendmmsg), the 200
// first, for each of many requests, and each <mrs> is still a
// transaction: answered, it counts as sent.
func TestUDPBatchedAnswerOrder(t *testing.T) {
	s, _ := startUDP(t, &recorder{}, 5*time.Second)
	if s.udpBatch == nil {
		t.Fatal("no batch socket on the UDP listener")
	}
	u := newUDPUnit(t, s.Addr("udp"))
	u.write(u.message("z9hG4bK-d0", "", "<mrq><ref>x</ref><cid>1</cid><dty>3</dty></mrq>"))
	ch := header(u.expect("SIP/2.0 401", 2*time.Second), "WWW-Authenticate")
	uri := "sip:scaip@" + s.Addr("udp")
	const n = 20
	for i := 1; i <= n; i++ {
		u.write(u.message(fmt.Sprintf("z9hG4bK-d%d", i), sign(ch, "unit1", "pw", "MESSAGE", uri, i),
			fmt.Sprintf("<mrq><ref>b%d</ref><cid>1</cid><dty>3</dty></mrq>", i)))
		if m := u.read(2 * time.Second); !strings.HasPrefix(m, "SIP/2.0 200") {
			t.Fatalf("request %d: first datagram %q, want its 200", i, m[:min(len(m), 40)])
		}
		m := u.read(2 * time.Second)
		if !strings.HasPrefix(m, "MESSAGE ") || !strings.Contains(m, fmt.Sprintf("<ref>b%d</ref>", i)) {
			t.Fatalf("request %d: second datagram %q, want its <mrs>", i, m[:min(len(m), 60)])
		}
		u.answer200(m)
	}
	deadline := time.Now().Add(2 * time.Second)
	for sipResult(s, "mrs_sent") != n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sipResult(s, "mrs_sent") != n || sipResult(s, "mrs_failed") != 0 {
		t.Fatalf("mrs_sent %v mrs_failed %v, want %d and 0", sipResult(s, "mrs_sent"), sipResult(s, "mrs_failed"), n)
	}
}
