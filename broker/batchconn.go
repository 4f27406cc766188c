package broker

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// batchConn coalesces a client's outbound packets into fewer write(2)s.
//
// mochi writes each PUBACK with its own write call from the client's read
// goroutine, right after the publish hook ran. On a busy gateway link that
// is one syscall per event, and here a loopback write costs ≈ 10–20 µs of
// CPU. batchConn holds a write back only while the connection's reader is
// busy processing packets it has already read: the reader flushes before
// it next blocks in Read, so the acknowledgements of every packet read in
// one go leave in one write. When the reader is waiting in Read (nothing
// more is coming soon), a write goes out at once, so a PUBACK is never
// held while the link is idle.
//
// What this changes for a gateway: the PUBACK of an event is sent after the
// hub has processed the rest of the events that arrived with it (a few
// hundred µs at most under load), never before its own event was handled.
// Nothing is acknowledged earlier than before: every hook (rules, journal)
// still runs before its PUBACK is written. Close flushes what is held.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	buf     []byte
	reading bool  // the reader is in (or about to enter) Read: writes go out at once
	werr    error // a failed write; later writes return it
	writes  *atomic.Int64

	dl deadlines // SetDeadline coalesced (deadline.go)
}

// batchMax bounds what is held back; a larger pending write is flushed.
const batchMax = 32 << 10

func newBatchConn(c net.Conn, writes *atomic.Int64) *batchConn {
	return &batchConn{Conn: c, writes: writes}
}

func (c *batchConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.flushLocked()
	c.reading = true
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.reading = false
	c.mu.Unlock()
	return n, err
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if !c.reading && len(c.buf)+len(p) <= batchMax {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if len(c.buf) == 0 {
		c.writes.Add(1)
		n, err := c.Conn.Write(p)
		if err != nil {
			c.werr = err
		}
		return n, err
	}
	c.buf = append(c.buf, p...)
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *batchConn) flushLocked() error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.buf) == 0 {
		return nil
	}
	c.writes.Add(1)
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > batchMax*2 {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	if err != nil {
		c.werr = err
	}
	return err
}

// Close sends what is held back (waiting at most a second) and closes. If
// a write is blocked right now (a client that stopped reading), it closes
// at once: that unblocks the write, as it would without batchConn.
func (c *batchConn) Close() error {
	if c.mu.TryLock() {
		if len(c.buf) > 0 && c.werr == nil {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = c.flushLocked()
		}
		c.werr = net.ErrClosed
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// tcpListener is mochi's TCP listener with batchConn around every client
// connection (listeners.TCP offers no hook for wrapping one).
type tcpListener struct {
	id, address string
	tlsConfig   *tls.Config
	writes      *atomic.Int64

	mu     sync.Mutex
	listen net.Listener
	log    *slog.Logger
	end    atomic.Bool
}

var _ listeners.Listener = (*tcpListener)(nil)

func newTCPListener(id, address string, tc *tls.Config, writes *atomic.Int64) *tcpListener {
	return &tcpListener{id: id, address: address, tlsConfig: tc, writes: writes}
}

func (l *tcpListener) ID() string       { return l.id }
func (l *tcpListener) Protocol() string { return "tcp" }

func (l *tcpListener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.listen != nil {
		return l.listen.Addr().String()
	}
	return l.address
}

func (l *tcpListener) Init(log *slog.Logger) error {
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	if l.tlsConfig != nil {
		ln = tls.NewListener(ln, l.tlsConfig)
	}
	l.mu.Lock()
	l.listen, l.log = ln, log
	l.mu.Unlock()
	return nil
}

func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	for !l.end.Load() {
		conn, err := l.listen.Accept()
		if err != nil {
			return
		}
		if l.end.Load() {
			conn.Close()
			return
		}
		go func() {
			if err := establish(l.id, newBatchConn(conn, l.writes)); err != nil {
				l.log.Warn("", "error", err)
			}
		}()
	}
}

func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.end.CompareAndSwap(false, true) {
		closeClients(l.id)
	}
	if l.listen != nil {
		_ = l.listen.Close()
	}
}
