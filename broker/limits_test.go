package broker

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
)

// fakeRefuser records refusals.
type fakeRefuser struct{ reasons []string }

func (f *fakeRefuser) refuse(reason string, _ ...any) { f.reasons = append(f.reasons, reason) }

// pipeGuard returns a guardConn reading what the test writes to w.
func pipeGuard(t testing.TB, lim Limits) (*guardConn, net.Conn, *fakeRefuser) {
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	ref := &fakeRefuser{}
	gate := newConnGate(lim.withDefaults(), ref)
	if !gate.admit("pipe") {
		t.Fatal("no slot")
	}
	g := newGuardConn(server, gate, "pipe", "tcp")
	gate.track(g)
	return g, client, ref
}

// scanGuard is a guard for scan tests, on a pipe nobody reads.
func scanGuard(t testing.TB, lim Limits) *guardConn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &guardConn{Conn: a, gate: newConnGate(lim, &fakeRefuser{}), first: true, mult: 1}
}

// The guard passes a CONNECT and what follows byte for byte, however the
// reads split it, and refuses a too-large CONNECT header at any split.
func TestGuardConnScanSplits(t *testing.T) {
	lim := Limits{MaxConnectSize: 1024}.withDefaults()
	ok := append(connectPacketID("id", "s/g", "pw", true), publishPacket("t/x", 1, "hello")...)
	big := []byte{0x10, 0x80, 0xc2, 0xd7, 0x2f, 'M', 'Q'}
	for split := 1; split <= len(ok); split++ {
		g := scanGuard(t, lim)
		for i := 0; i < len(ok); i += split {
			if err := g.scan(ok[i:min(i+split, len(ok))]); err != nil {
				t.Fatalf("split %d: %v", split, err)
			}
		}
		if g.first || g.length != len(ok)-len(publishPacket("t/x", 1, "hello"))-2 {
			t.Fatalf("split %d: first=%v length=%d", split, g.first, g.length)
		}
	}
	for split := 1; split <= len(big); split++ {
		g := scanGuard(t, lim)
		var err error
		for i := 0; i < len(big) && err == nil; i += split {
			err = g.scan(big[i:min(i+split, len(big))])
		}
		if !errors.Is(err, errConnectTooLarge) {
			t.Fatalf("split %d: 100 MB CONNECT not refused: %v", split, err)
		}
	}
}

func FuzzGuardConnScan(f *testing.F) {
	f.Add(connectPacketID("id", "s/g", "pw", true), 3)
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f}, 1)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		if split < 1 {
			split = 1
		}
		g := scanGuard(t, Limits{}.withDefaults())
		for i := 0; i < len(b); i += split {
			if err := g.scan(b[i:min(i+split, len(b))]); err != nil {
				if g.length+1 <= g.gate.lim.MaxConnectSize && g.hdr <= 5 {
					t.Fatalf("refused a CONNECT of %d bytes", g.length)
				}
				return
			}
		}
		if g.length+1 > g.gate.lim.MaxConnectSize {
			t.Fatalf("passed a CONNECT claiming %d bytes", g.length)
		}
	})
}

// Through a real (piped) connection: the bytes arrive unchanged, and an
// oversize header is refused once and closes the connection.
func TestGuardConnRead(t *testing.T) {
	g, w, ref := pipeGuard(t, Limits{MaxConnectSize: 1024})
	pk := connectPacketID("id", "s/g", "pw", true)
	go w.Write(pk)
	got := make([]byte, len(pk))
	if _, err := ioReadFull(g, got); err != nil || !bytes.Equal(got, pk) {
		t.Fatalf("got % x, %v", got, err)
	}
	if g.first {
		t.Fatal("still in the CONNECT phase")
	}
	if len(ref.reasons) != 0 {
		t.Fatalf("a CONNECT within the limit was refused: %v", ref.reasons)
	}

	g, w, ref = pipeGuard(t, Limits{MaxConnectSize: 1024})
	go w.Write([]byte{0x10, 0x80, 0x10})
	if _, err := g.Read(make([]byte, 64)); !errors.Is(err, errConnectTooLarge) {
		t.Fatalf("err %v", err)
	}
	if len(ref.reasons) != 1 || ref.reasons[0] != reasonTooLarge {
		t.Fatalf("refusals %v", ref.reasons)
	}
	g.Close()
	g.Close()
	if n := g.gate.open(); n != 0 {
		t.Fatalf("%d slots held after a double Close", n)
	}
}

func ioReadFull(g *guardConn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := g.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestConnGateLimits(t *testing.T) {
	g := newConnGate(Limits{MaxConnections: 3, MaxConnectionsPerAddress: 2}.withDefaults(), &fakeRefuser{})
	// One admit per line: each call takes a slot, so the order matters.
	a1 := g.admit("a")
	a2 := g.admit("a")
	a3 := g.admit("a")
	if !a1 || !a2 || a3 {
		t.Fatal("per-address limit 2 not kept")
	}
	if !g.admit("b") || g.admit("c") {
		t.Fatal("total limit 3 not kept")
	}
	g.release(&guardConn{host: "a"})
	if !g.admit("c") {
		t.Fatal("released slot not reusable")
	}
	if len(g.byAddr) != 3 {
		t.Fatalf("address map %v", g.byAddr)
	}
}

func TestLimitsDefaultsAndClamp(t *testing.T) {
	l := Limits{MaxPacketSize: 9216, MaxConnections: 10}.withDefaults()
	if l.MaxConnectSize != 9216 || l.MaxConnectionsPerAddress != 10 || l.ConnectTimeout != 10*time.Second {
		t.Fatalf("%+v", l)
	}
	if err := (Limits{MaxInflight: 70000}).withDefaults().Validate(); err == nil {
		t.Fatal("inflight above 65535 accepted")
	}
}
