package broker

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// deadlineConn counts the deadlines batchConn sets on the connection.
type deadlineConn struct {
	net.Conn
	calls atomic.Int64
	last  atomic.Int64 // UnixNano of the last SetDeadline
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.calls.Add(1)
	c.last.Store(t.UnixNano())
	return c.Conn.SetDeadline(t)
}

// tcpPair is a real loopback TCP connection: the server side wrapped as the
// broker wraps it (batchConn over the counted connection), and the client.
func tcpPair(t testing.TB) (*batchConn, *deadlineConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	dc := &deadlineConn{Conn: srv}
	bc := newBatchConn(dc, new(atomic.Int64))
	t.Cleanup(func() { bc.Close(); cl.Close() })
	return bc, dc, cl
}

// mochi moves the deadline on every packet; batchConn sets it on the
// connection only when the one in force no longer covers the request, and
// then never earlier than asked and at most an eighth of the time left
// (at most deadlineSlack) later.
func TestSetDeadlineCoalesced(t *testing.T) {
	bc, dc, _ := tcpPair(t)
	const keep = 90 * time.Second // keepalive 60 s
	var asked time.Time
	for range 1000 {
		asked = time.Now().Add(keep)
		if err := bc.SetDeadline(asked); err != nil {
			t.Fatal(err)
		}
		real := time.Unix(0, dc.last.Load())
		if real.Before(asked) || real.After(asked.Add(deadlineSlack)) {
			t.Fatalf("deadline in force %v, asked %v: want within [asked, asked+%v]", real, asked, deadlineSlack)
		}
	}
	// 1,000 requests within far less than deadlineSlack: the first is
	// exact, the second moves it on with room, the rest fit.
	if n := dc.calls.Load(); n > 3 {
		t.Errorf("%d deadlines set on the connection for 1,000 requests, want ≤ 3", n)
	}
}

// A silent client is cut no earlier than its last requested deadline and
// not much later (a short keepalive: an eighth of the time left).
func TestSetDeadlineCutsSilentClientOnTime(t *testing.T) {
	bc, _, _ := tcpPair(t)
	const keep = 400 * time.Millisecond
	var asked time.Time
	for range 50 { // requests over ≈ 100 ms, as packets would
		asked = time.Now().Add(keep)
		if err := bc.SetDeadline(asked); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	_, err := bc.Read(make([]byte, 1))
	end := time.Now()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a silent connection: %v, want a deadline error", err)
	}
	if end.Before(asked) {
		t.Errorf("cut %v before the deadline asked", asked.Sub(end))
	}
	if late := end.Sub(asked); late > keep/8+300*time.Millisecond {
		t.Errorf("cut %v after the deadline asked, want ≤ %v (+ scheduling)", late, keep/8)
	}
}

// A deadline moved earlier, cleared, or set through SetReadDeadline takes
// effect at once.
func TestSetDeadlineEarlierClearedAndDirect(t *testing.T) {
	bc, dc, cl := tcpPair(t)
	if err := bc.SetDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := bc.SetDeadline(time.Now().Add(time.Hour + time.Second)); err != nil {
		t.Fatal(err)
	}
	// Earlier: exactly as asked.
	early := time.Now().Add(50 * time.Millisecond)
	if err := bc.SetDeadline(early); err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(0, dc.last.Load()); !got.Equal(early) {
		t.Errorf("earlier deadline set as %v, want exactly %v", got, early)
	}
	t0 := time.Now()
	if _, err := bc.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("earlier deadline took %v to cut the read", d)
	}
	// Cleared: a read waits for data.
	if err := bc.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(100 * time.Millisecond); cl.Write([]byte{1}) }()
	if n, err := bc.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read after clearing the deadline: %d, %v", n, err)
	}
	// Direct: SetReadDeadline in between, then the same SetDeadline again
	// goes to the connection (batchConn no longer knows what is in force).
	later := time.Now().Add(time.Hour)
	if err := bc.SetDeadline(later); err != nil {
		t.Fatal(err)
	}
	if err := bc.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n0 := dc.calls.Load()
	if err := bc.SetDeadline(later); err != nil {
		t.Fatal(err)
	}
	if dc.calls.Load() != n0+1 {
		t.Errorf("SetDeadline after SetReadDeadline was not applied to the connection")
	}
}

// BenchmarkSetDeadline is mochi's per-packet refreshDeadline (keepalive
// 60 s) on a real TCP connection, directly and through batchConn:
//
//	go test ./broker/ -run '^$' -bench BenchmarkSetDeadline -benchmem
func BenchmarkSetDeadline(b *testing.B) {
	for _, via := range []string{"conn", "batchConn"} {
		b.Run(via, func(b *testing.B) {
			bc, dc, _ := tcpPair(b)
			var c interface{ SetDeadline(time.Time) error } = bc
			if via == "conn" {
				c = dc.Conn
			}
			for b.Loop() {
				_ = c.SetDeadline(time.Now().Add(90 * time.Second))
			}
		})
	}
}
