package scaipsip

import (
	"bytes"
	"net"
	"net/netip"
	"sync"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/net/ipv4"

	"github.com/vaka-care/vaka/scaip"
)

// A request over UDP is answered with two datagrams: its SIP 200 and the
// <mrs> MESSAGE. Written one after the other they cost two sendto calls,
// and on the hub's machine each could wake the unit's side (on loopback,
// where the benchmark's generator runs, waking it took about a quarter of
// the hub's CPU per message in perf). When the <mrs> is ready with the 200
// (always, unless sync_each_write makes it wait for an fsync) both leave in
// one sendmmsg, the 200 first.

// readyMrs is the <mrs> to send with the request's 200, if it is ready
// now; an AsyncHandler's answer taken here is sent by the caller.
func (d *decision) readyMrs() *scaip.Response {
	if d.mrs != nil {
		r := d.mrs
		d.mrs = nil // sent with the 200, not again after it
		return r
	}
	if d.later != nil {
		if r := d.later.take(); r != nil {
			d.later = nil
			return r
		}
	}
	return nil
}

// take returns the answer if it has come, marking the 200 as sent with it
// (the caller sends both); nil means the answer comes later, and okSent
// must be called once the 200 is out.
func (l *laterMrs) take() *scaip.Response {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.resp == nil {
		return nil
	}
	l.ok = true
	r := l.resp
	l.resp = nil
	return r
}

var batchBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// respondWithMrs writes res and the <mrs> resp for req with one sendmmsg
// on the UDP listener's socket. It reports false, having sent nothing,
// when it cannot (no batch socket, an address that is not an IP:port):
// the caller then sends both the usual way. What a short batch left out
// is sent alone.
func (s *Server) respondWithMrs(req *sip.Request, res *sip.Response, resp scaip.Response) bool {
	if s.udpBatch == nil {
		return false
	}
	to200, err1 := netip.ParseAddrPort(responseAddr(req))
	toMrs, err2 := netip.ParseAddrPort(req.Source())
	if err1 != nil || err2 != nil {
		return false
	}
	tx, branch, wake := s.mrs.prepare(req, resp)
	if tx == nil { // not to be sent (counted): the 200 alone
		s.respond(req, res)
		return true
	}
	b1, b2 := batchBufs.Get().(*bytes.Buffer), batchBufs.Get().(*bytes.Buffer)
	defer batchBufs.Put(b1)
	defer batchBufs.Put(b2)
	b1.Reset()
	b2.Reset()
	res.StringWrite(b1)
	tx.req.StringWrite(b2)
	msgs := [2]ipv4.Message{
		{Buffers: [][]byte{b1.Bytes()}, Addr: net.UDPAddrFromAddrPort(to200)},
		{Buffers: [][]byte{b2.Bytes()}, Addr: net.UDPAddrFromAddrPort(toMrs)},
	}
	n, _ := s.udpBatch.WriteBatch(msgs[:], 0)
	if n < 1 {
		s.respond(req, res)
	}
	if n < 2 {
		s.mrs.written(branch, wake, tx.conn.WriteMsg(tx.req))
		return true
	}
	s.mrs.written(branch, wake, nil)
	return true
}
