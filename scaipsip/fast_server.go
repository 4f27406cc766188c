package scaipsip

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/net/ipv4"

	"github.com/vaka-care/vaka/scaip"
)

// fastUDPConn is the UDP listener as sipgo's transport layer gets it:
// each datagram read is first offered to the fast path (fast.go), in the
// same read loop; only what the fast path declines is returned to sipgo,
// which parses and hands it to onSIP as before. Writes, deadlines and
// Close are the socket's own.
type fastUDPConn struct {
	*net.UDPConn
	s *Server
}

// ReadFrom returns the next datagram the fast path did not take.
func (c *fastUDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, src, err := c.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, nil, err
		}
		if c.s.fastUDP(b[:n], src) {
			continue
		}
		return n, net.UDPAddrFromAddrPort(src), nil
	}
}

// fastTarget is where a fast-path request's <mrs> goes, copied out of the
// datagram for an answer that comes after the read loop moved on.
type fastTarget struct {
	fromURI, toURI, uriHost string
	src                     netip.AddrPort
}

var fastBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// fastUDP handles one datagram if the fast path can; false leaves it to
// sipgo untouched.
func (s *Server) fastUDP(data []byte, src netip.AddrPort) bool {
	if s.closed.Load() {
		return false
	}
	if bytes.HasPrefix(data, []byte("SIP/2.0 ")) {
		var r fastResp
		if !r.parse(data) {
			s.fastDeclined.Inc()
			return false
		}
		s.fastTaken.Inc()
		s.mrs.onAnswer(r.branch, r.status)
		return true
	}
	var r fastReq
	if !r.parse(data) {
		s.fastDeclined.Inc()
		return false
	}
	s.fastTaken.Inc()
	s.fastRequest(&r, src)
	return true
}

// fastRequest is onRequest for a request the fast path read: the same
// transaction key, retransmission answer, decision, To tag, destination
// and <mrs>.
func (s *Server) fastRequest(r *fastReq, src netip.AddrPort) {
	var kb [192]byte
	k := append(kb[:0], r.branch...)
	k = append(k, '|')
	k = append(k, r.viaHost...)
	k = append(k, ':')
	k = strconv.AppendInt(k, int64(r.viaPort), 10)
	k = append(k, "|MESSAGE"...)
	key := string(k)
	var tb [16]byte
	tag := appendToTag(tb[:0], k, r.callID)
	to200 := responseDst(r, src)
	buf := fastBufs.Get().(*[]byte)
	defer fastBufs.Put(buf)

	now := s.cfg.Now()
	if s.answers.seen(key, now) {
		s.count("retransmission")
		*buf = appendResponse((*buf)[:0], r, src, 200, "OK", string(tag))
		s.fastWrite(*buf, to200)
		return
	}
	var later *laterMrs
	d := s.decideFields(string(sip.MESSAGE), string(r.authz), string(r.contentType), bytes.Clone(r.body),
		func() *laterMrs { later = &laterMrs{s: s}; return later })
	s.count(d.result)
	var extra []string
	switch {
	case d.challenge != "":
		extra = []string{"WWW-Authenticate", d.challenge}
	case d.status == 405:
		extra = []string{"Allow", "MESSAGE"}
	case d.status == 415:
		extra = []string{"Accept", scaip.ContentType}
	}
	*buf = appendResponse((*buf)[:0], r, src, d.status, d.reason, string(tag), extra...)
	if d.status == 200 {
		s.answers.add(key, now)
	}
	if mr := d.readyMrs(); mr != nil {
		s.fastRespondWithMrs(*buf, to200, r, src, *mr)
	} else {
		s.fastWrite(*buf, to200)
		if d.later != nil {
			d.later.fast = &fastTarget{fromURI: string(r.fromURI), toURI: string(r.toURI), uriHost: string(r.uriHost), src: src}
			d.later.okSent()
		}
	}
	switch d.result {
	case "ok", authMissing, "mrs_received":
	default:
		s.warn(d.result, "scaipsip: SIP request refused", "transport", "udp", "result", d.result, "account", d.account)
	}
}

// fastWrite sends one datagram on the listener's socket.
func (s *Server) fastWrite(b []byte, to netip.AddrPort) {
	if _, err := s.udp.WriteToUDPAddrPort(b, to); err != nil {
		s.log.Warn("scaipsip: could not answer a SIP request", "transport", "udp", "err", err)
	}
}

// fastRespondWithMrs sends the 200 and the <mrs> in one sendmmsg (batch.go
// says why), the 200 first; what a short batch left out is sent alone.
func (s *Server) fastRespondWithMrs(res []byte, to200 netip.AddrPort, r *fastReq, src netip.AddrPort, resp scaip.Response) {
	tx, branch, wake := s.mrs.prepareFast(r.fromURI, r.toURI, r.uriHost, src, resp)
	if tx == nil { // not to be sent (counted): the 200 alone
		s.fastWrite(res, to200)
		return
	}
	msgs := [2]ipv4.Message{
		{Buffers: [][]byte{res}, Addr: net.UDPAddrFromAddrPort(to200)},
		{Buffers: [][]byte{tx.raw}, Addr: net.UDPAddrFromAddrPort(src)},
	}
	n, _ := s.udpBatch.WriteBatch(msgs[:], 0)
	if n < 1 {
		s.fastWrite(res, to200)
	}
	if n < 2 {
		s.mrs.written(branch, wake, s.mrs.write(tx))
		return
	}
	s.mrs.written(branch, wake, nil)
}

// sendFast sends an <mrs> whose answer came after its request's 200.
func (m *mrsSender) sendFast(t *fastTarget, resp scaip.Response) {
	tx, branch, wake := m.prepareFast([]byte(t.fromURI), []byte(t.toURI), []byte(t.uriHost), t.src, resp)
	if tx == nil {
		return
	}
	m.written(branch, wake, m.write(tx))
}

// prepareFast builds the <mrs> MESSAGE for a fast-path request as
// prepare does for sipgo's (the same headers: Request-URI and To the
// unit's From URI, From our To URI with a fresh tag, a fresh Call-ID and
// branch, our address in the Via with rport) and registers its
// transaction; nil when it is not to be sent.
func (m *mrsSender) prepareFast(fromURI, toURI, uriHost []byte, dst netip.AddrPort, resp scaip.Response) (tx *mrsTx, branch string, wake bool) {
	s := m.s
	if s.closed.Load() {
		return nil, "", false
	}
	body := resp.Marshal()
	branch = sip.GenerateBranch()
	host := s.udpHost
	if s.udpHostUnspecified {
		if ip := net.ParseIP(string(uriHost)); ip != nil {
			host = string(uriHost)
		}
	}
	b := make([]byte, 0, 400+len(fromURI)*2+len(toURI)+len(body))
	b = append(b, "MESSAGE "...)
	b = append(b, fromURI...)
	b = append(b, " SIP/2.0\r\nVia: SIP/2.0/UDP "...)
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	b = append(b, host...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(s.udpPort), 10)
	b = append(b, ";branch="...)
	b = append(b, branch...)
	b = append(b, ";rport\r\nTo: <"...)
	b = append(b, fromURI...)
	b = append(b, ">\r\nFrom: <"...)
	b = append(b, toURI...)
	b = append(b, ">;tag="...)
	b = append(b, sip.GenerateTagN(12)...)
	b = append(b, "\r\nCall-ID: "...)
	b = append(b, sip.GenerateTagN(24)...)
	b = append(b, "\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: "+scaip.ContentType+"\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	now := time.Now()
	tx = &mrsTx{raw: b, dst: dst, ref: resp.Ref, tp: "udp", interval: timerT1, next: now.Add(timerT1), deadline: now.Add(s.cfg.MrsTimeout)}
	ok, wake := m.register(branch, tx)
	if !ok {
		return nil, "", false
	}
	return tx, branch, wake
}

// onAnswer is onResponse for an answer the fast path read.
func (m *mrsSender) onAnswer(branch []byte, status int) {
	if status < 200 {
		// Proceeding: retransmit at T2 from now on (§17.1.2.2).
		m.mu.Lock()
		if tx := m.pending[string(branch)]; tx != nil {
			tx.interval = timerT2
		}
		m.mu.Unlock()
		return
	}
	m.finish(string(branch), status < 300, status, nil)
}

// appendToTag appends the To tag response gives a request with this
// transaction key and Call-ID: the same for each retransmission.
func appendToTag(b, key, callID []byte) []byte {
	return strconv.AppendUint(b, fnv64a(fnv64a(fnvOffset64, key), callID), 36)
}

// responseDst is responseAddr for a fast-path request: the source, or
// the source's address with the Via's port when the unit named one and
// did not ask for rport.
func responseDst(r *fastReq, src netip.AddrPort) netip.AddrPort {
	if r.viaPort != 0 && !r.rport {
		return netip.AddrPortFrom(src.Addr(), uint16(r.viaPort))
	}
	return src
}

const fnvOffset64, fnvPrime64 = 14695981039346656037, 1099511628211

// fnv64a continues an FNV-1a hash (hash/fnv's, without its allocation).
func fnv64a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}
