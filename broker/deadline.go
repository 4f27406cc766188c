package broker

import (
	"sync"
	"time"
)

// deadlineSlack is how much later than asked batchConn.SetDeadline may let
// a connection's deadline fall, so that it need not move it on every packet
// (at most an eighth of the time to the deadline, for short keepalives).
const deadlineSlack = time.Second

// deadlines is batchConn's record of the deadline it set on the connection.
//
// mochi calls SetDeadline(now + 1.5 × keepalive) on every packet it reads
// ([MQTT-3.1.2-22]): on the connection that is two runtime timers moved
// (read and write) per event, about 2 % of the hub's CPU per event in a
// profile at 10,000 alarms/s. batchConn instead sets the deadline a little
// later than asked (deadlineSlack) and skips a later request that the
// deadline in force already covers. A silent client is therefore cut at most
// deadlineSlack after mochi's deadline (keepalive 60 s: after 90–91 s), never
// earlier. The first deadline, one moved earlier, a cleared one, and one set
// through SetReadDeadline or SetWriteDeadline are applied at once and
// exactly.
type deadlines struct {
	mu    sync.Mutex
	set   bool      // real is in force on the connection (both directions)
	asked time.Time // the latest deadline asked for
	real  time.Time // the deadline in force: asked ≤ real ≤ asked + deadlineSlack
}

// SetDeadline sets the read and write deadlines, coalesced as deadlines
// describes.
func (c *batchConn) SetDeadline(t time.Time) error {
	d := &c.dl
	d.mu.Lock()
	defer d.mu.Unlock()
	real := t // the first, a cleared or an earlier deadline: exactly as asked
	if d.set && !t.IsZero() && !t.Before(d.asked) {
		if !t.After(d.real) {
			d.asked = t // already covered, at most deadlineSlack late
			return nil
		}
		// Later: leave room for the next ones, at most an eighth of the
		// time left (a short keepalive stays nearly exact).
		real = t.Add(min(deadlineSlack, max(0, time.Until(t)/8)))
	}
	if err := c.Conn.SetDeadline(real); err != nil {
		d.set = false
		return err
	}
	d.set, d.asked, d.real = !t.IsZero(), t, real
	return nil
}

// SetReadDeadline sets the read deadline exactly; the next SetDeadline is
// applied to the connection again.
func (c *batchConn) SetReadDeadline(t time.Time) error {
	c.dl.mu.Lock()
	defer c.dl.mu.Unlock()
	c.dl.set = false
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline exactly; the next SetDeadline is
// applied to the connection again.
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.dl.mu.Lock()
	defer c.dl.mu.Unlock()
	c.dl.set = false
	return c.Conn.SetWriteDeadline(t)
}
