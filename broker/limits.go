package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Limits bound what a client can make the broker hold. A zero field takes
// its default (DefaultLimits), so an Options without Limits is safe.
//
// Why each exists: mochi reads a packet by allocating its whole claimed
// length before reading it (100 MB claimed → 100 MB allocated), keeps a
// TCP connection that never sends CONNECT forever, and allocates a
// client's outbound queue and read buffer on accept, before any login.
type Limits struct {
	// MaxConnectSize bounds the first packet (CONNECT) of a connection, in
	// bytes, checked by Vaka's connection wrapper from the fixed header,
	// before mochi allocates anything for the packet body.
	MaxConnectSize int
	// MaxPacketSize bounds every later packet (mochi's MaximumPacketSize,
	// checked from the fixed header before allocating).
	MaxPacketSize int
	// ConnectTimeout is the longest from TCP accept until a whole CONNECT
	// has been read.
	ConnectTimeout time.Duration
	// MaxConnections bounds open client connections, authenticated or
	// not; MaxConnectionsPerAddress bounds them per source IP.
	MaxConnections           int
	MaxConnectionsPerAddress int
	// MaxInflight bounds the QoS 1/2 messages sent to one client and not
	// yet acknowledged; MaxQueued bounds its outbound queue (packets
	// waiting to be written). Beyond either a message is dropped, counted
	// and raised as hub_integrity.
	MaxInflight int
	MaxQueued   int
	// AuthConcurrency bounds concurrent bcrypt comparisons, so a flood of
	// logins cannot take the CPU the alarm path needs.
	AuthConcurrency int
}

// DefaultLimits are the limits a hub runs with unless configured.
func DefaultLimits() Limits {
	return Limits{
		MaxConnectSize:           16 << 10, // a CONNECT holds an id, a login and a small Will
		MaxPacketSize:            64 << 10, // an event is ≤ 8 KiB (event.MaxPayload); OwnTracks waypoints are larger
		ConnectTimeout:           10 * time.Second,
		MaxConnections:           4096,
		MaxConnectionsPerAddress: 256, // gateways of several sites may share one NAT address
		MaxInflight:              4096,
		MaxQueued:                2048,
		AuthConcurrency:          1,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxConnectSize, d.MaxConnectSize)
	set(&l.MaxPacketSize, d.MaxPacketSize)
	set(&l.MaxConnections, d.MaxConnections)
	set(&l.MaxConnectionsPerAddress, d.MaxConnectionsPerAddress)
	set(&l.MaxInflight, d.MaxInflight)
	set(&l.MaxQueued, d.MaxQueued)
	set(&l.AuthConcurrency, d.AuthConcurrency)
	if l.ConnectTimeout <= 0 {
		l.ConnectTimeout = d.ConnectTimeout
	}
	// A bound set lower than a default it contains wins over that
	// default (max_packet_size: 9216 lowers the CONNECT bound with it).
	l.MaxConnectSize = min(l.MaxConnectSize, l.MaxPacketSize)
	l.MaxConnectionsPerAddress = min(l.MaxConnectionsPerAddress, l.MaxConnections)
	return l
}

// Validate reports limits mochi or the wrapper cannot honour.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxConnectSize > l.MaxPacketSize {
		errs = append(errs, fmt.Errorf("broker: max connect size %d exceeds max packet size %d", l.MaxConnectSize, l.MaxPacketSize))
	}
	if l.MaxPacketSize > 256<<20 {
		errs = append(errs, fmt.Errorf("broker: max packet size %d exceeds MQTT's 256 MiB", l.MaxPacketSize))
	}
	if l.MaxInflight > 65535 {
		errs = append(errs, fmt.Errorf("broker: max inflight %d exceeds 65535 packet ids", l.MaxInflight))
	}
	if l.MaxConnectionsPerAddress > l.MaxConnections {
		errs = append(errs, fmt.Errorf("broker: %d connections per address exceed %d in total", l.MaxConnectionsPerAddress, l.MaxConnections))
	}
	return errors.Join(errs...)
}

// applyCapabilities sets mochi's own limits from l.
func (l Limits) applyCapabilities(c *mqtt.Capabilities) {
	c.MaximumPacketSize = uint32(l.MaxPacketSize)
	c.MaximumInflight = uint16(l.MaxInflight)
	c.MaximumClientWritesPending = int32(l.MaxQueued)
}

// Refusal reasons in vaka_mqtt_refused_total.
const (
	reasonTooLarge       = "packet_too_large"
	reasonConnectTimeout = "connect_timeout"
	reasonTooMany        = "too_many_connections"
	reasonClientIDTaken  = "client_id_taken"
	reasonAuthBusy       = "auth_busy"
)

// refuser counts and logs a refusal; vakaHook implements it.
type refuser interface {
	refuse(reason string, attrs ...any)
}

func (h *vakaHook) refuse(reason string, attrs ...any) {
	h.refused.WithLabelValues(reason).Inc()
	// Rate-limited for every reason, client_id_taken too: OnConnect refuses
	// a taken id before any password check, so a stranger can cause it. An
	// attack (thousands of silent or refused connections a second) makes a
	// line a second per reason, carrying how many were left out; the
	// counter counts them all.
	var ok bool
	if ok, attrs = h.refuseLog.Allow(reason, time.Now(), attrs); !ok {
		return
	}
	h.log.Warn("broker: connection refused", append([]any{"reason", reason}, attrs...)...)
}

// connGate counts open connections in total and per source IP. Its map
// holds only addresses with an open connection, so it is bounded by
// MaxConnections.
type connGate struct {
	lim    Limits
	ref    refuser
	mu     sync.Mutex
	total  int
	byAddr map[string]int
	conns  map[*guardConn]struct{} // open connections, for closeAll
}

func newConnGate(lim Limits, ref refuser) *connGate {
	return &connGate{lim: lim, ref: ref, byAddr: map[string]int{}, conns: map[*guardConn]struct{}{}}
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// admit takes a connection slot for host, or says why not.
func (g *connGate) admit(host string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.lim.MaxConnections || g.byAddr[host] >= g.lim.MaxConnectionsPerAddress {
		return false
	}
	g.total++
	g.byAddr[host]++
	return true
}

func (g *connGate) track(c *guardConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns[c] = struct{}{}
}

func (g *connGate) release(c *guardConn) {
	host := c.host
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.conns, c)
	g.total--
	if n := g.byAddr[host] - 1; n > 0 {
		g.byAddr[host] = n
	} else {
		delete(g.byAddr, host)
	}
}

// open is the number of connections holding a slot.
func (g *connGate) open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// gatedListener wraps any mochi listener (TCP, TLS, WebSocket): every
// connection it establishes takes a slot in the gate and is read through
// a guardConn until its CONNECT is complete.
type gatedListener struct {
	listeners.Listener
	gate *connGate
}

func (l *gatedListener) Serve(establish listeners.EstablishFn) {
	l.Listener.Serve(func(id string, c net.Conn) error {
		host := hostOf(c.RemoteAddr())
		if !l.gate.admit(host) {
			l.gate.ref.refuse(reasonTooMany, "remote", host, "listener", id)
			return c.Close()
		}
		g := newGuardConn(c, l.gate, host, id)
		l.gate.track(g)
		err := establish(id, g)
		if g.refused.Load() {
			return nil // counted and logged once, by the guard
		}
		return err
	})
}

// Close closes the listener and then its clients' connections. It does
// not use mochi's closeClients: that takes the client map's read lock
// twice (GetByListener calls Len), which deadlocks against a client
// removing itself at the same moment, and Close hung in tests. Closing the
// connections makes every client's read fail, so mochi ends each one and
// sends its Will as it would for a lost link.
func (l *gatedListener) Close(closeClients listeners.CloseFn) {
	l.Listener.Close(func(id string) { l.gate.closeAll(id) })
}

// closeAll closes every open connection of listener id.
func (g *connGate) closeAll(id string) {
	g.mu.Lock()
	var cs []*guardConn
	for c := range g.conns {
		if c.listener == id {
			cs = append(cs, c)
		}
	}
	g.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// guardConn reads a connection's first packet (the CONNECT) under a
// deadline and a size bound: it parses the fixed header's remaining length
// as the bytes pass, and refuses an oversize packet before mochi sees its
// header, so mochi never allocates for it. Later packets pass through
// untouched (mochi checks them against MaxPacketSize). Close releases the
// connection's slot, once.
type guardConn struct {
	net.Conn
	gate     *connGate
	host     string
	listener string

	// First-packet parser state; used only by the reading goroutine.
	first    bool // still inside the first packet
	hdr      int  // fixed-header bytes seen
	length   int  // remaining length decoded so far
	mult     int  // varint multiplier
	left     int  // body bytes of the first packet not yet passed on
	inBody   bool // the remaining length is complete
	closed   atomic.Bool
	refused  atomic.Bool
	deadline time.Time
}

func newGuardConn(c net.Conn, gate *connGate, host, listener string) *guardConn {
	g := &guardConn{Conn: c, gate: gate, host: host, listener: listener, first: true, mult: 1,
		deadline: time.Now().Add(gate.lim.ConnectTimeout)}
	_ = c.SetReadDeadline(g.deadline)
	return g
}

var errConnectTooLarge = errors.New("broker: CONNECT larger than the limit before login")

func (g *guardConn) Read(p []byte) (int, error) {
	if !g.first {
		return g.Conn.Read(p)
	}
	n, err := g.Conn.Read(p)
	if err != nil && n == 0 {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			g.refuse(reasonConnectTimeout)
		}
		return 0, err
	}
	if perr := g.scan(p[:n]); perr != nil {
		g.refuse(reasonTooLarge, "limit", g.gate.lim.MaxConnectSize, "claimed", g.length)
		_ = g.Conn.Close()
		return 0, perr
	}
	return n, err
}

// scan advances the first-packet parser over b.
func (g *guardConn) scan(b []byte) error {
	for i := 0; i < len(b) && g.first; i++ {
		switch {
		case g.hdr == 0: // packet type and flags
			g.hdr++
		case !g.inBody: // remaining length, 1–4 bytes, 7 bits each
			g.hdr++
			g.length += int(b[i]&0x7f) * g.mult
			g.mult *= 128
			if g.length+1 > g.gate.lim.MaxConnectSize || g.hdr > 5 {
				return errConnectTooLarge
			}
			if b[i]&0x80 == 0 {
				g.inBody, g.left = true, g.length
				if g.left == 0 {
					g.endFirst()
				}
			}
		default:
			take := min(g.left, len(b)-i)
			g.left -= take
			i += take - 1
			if g.left == 0 {
				g.endFirst()
			}
		}
	}
	return nil
}

// endFirst ends the CONNECT phase. mochi sets the keepalive deadline
// itself once it has the CONNECT; clearing ours here covers a client
// with keepalive 0.
func (g *guardConn) endFirst() {
	g.first = false
	_ = g.Conn.SetReadDeadline(time.Time{})
}

// refuse counts a refusal once per connection.
func (g *guardConn) refuse(reason string, attrs ...any) {
	if g.refused.CompareAndSwap(false, true) {
		g.gate.ref.refuse(reason, append([]any{"remote", g.host}, attrs...)...)
	}
}

func (g *guardConn) Close() error {
	if g.closed.CompareAndSwap(false, true) {
		g.gate.release(g)
	}
	return g.Conn.Close()
}

// OnDisconnect counts a client mochi disconnected for a packet over
// MaxPacketSize (after login; the CONNECT is refused by guardConn).
func (h *vakaHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if errors.Is(err, packets.ErrPacketTooLarge) {
		h.refuse(reasonTooLarge, "client", cl.ID, "username", string(cl.Properties.Username))
	}
}

// logLimits says which limits the broker runs with, once at start.
func logLimits(log *slog.Logger, l Limits) {
	log.Info("broker: limits", "max_connect_size", l.MaxConnectSize, "max_packet_size", l.MaxPacketSize,
		"connect_timeout", l.ConnectTimeout, "max_connections", l.MaxConnections,
		"max_connections_per_address", l.MaxConnectionsPerAddress, "max_inflight", l.MaxInflight,
		"max_queued", l.MaxQueued, "auth_concurrency", l.AuthConcurrency)
}
