package scaipsip

import (
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vaka-care/vaka/scaip"
)

// The receiver's own transaction handling (RFC 3261 §17), for what SCAIP
// uses: MESSAGE in, answered once with a final response, and MESSAGE out
// (the <mrs>). Everything runs in the connection's read loop or in the
// one <mrs> timer loop: no goroutine and no timer per message.

// Timers of RFC 3261 §17.1.2.2 and §17.2.2 (T1 500 ms, T2 4 s, J = 64·T1).
const (
	timerT1 = 500 * time.Millisecond
	timerT2 = 4 * time.Second
	timerJ  = 64 * timerT1
)

// onSIP is the transport layer's handler: requests from units, and the
// units' responses to our <mrs>.
func (s *Server) onSIP(msg sip.Message) {
	switch m := msg.(type) {
	case *sip.Request:
		s.onRequest(m)
	case *sip.Response:
		s.mrs.onResponse(m)
	}
}

// onRequest answers one request in its connection's read loop.
func (s *Server) onRequest(req *sip.Request) {
	if req.IsAck() {
		s.count("not_message") // counted, but an ACK is never answered (and no INVITE is ever accepted)
		return
	}
	via := req.Via()
	if via == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil {
		// As sipgo's transaction layer does: a stateless 400, else the
		// peer retransmits for 32 s.
		s.count("bad_request")
		s.respond(req, sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	// Over UDP the unit retransmits a request until it has our final
	// answer (every 0.5, 1, 2, 4 s …). A retransmission of a request we
	// handled gets the same 200 without being handled again: its Digest
	// nonce count is already used, so handling it again would answer
	// 403 replay. Only 200s are remembered; every other answer is the
	// same when the request is simply decided again.
	key := txKey(req, via)
	unreliable := !sip.IsReliable(req.Transport())
	now := s.cfg.Now()
	if unreliable && s.answers.seen(key, now) {
		s.count("retransmission")
		s.respond(req, s.response(req, 200, "OK", key))
		return
	}
	d := s.decide(req)
	s.count(d.result)
	res := s.response(req, d.status, d.reason, key)
	if d.challenge != "" {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", d.challenge))
	}
	switch d.status {
	case 405:
		res.AppendHeader(sip.NewHeader("Allow", "MESSAGE"))
	case 415:
		res.AppendHeader(sip.NewHeader("Accept", scaip.ContentType))
	}
	if unreliable && d.status == 200 {
		s.answers.add(key, now)
	}
	if unreliable && s.udpBatch != nil {
		if r := d.readyMrs(); r != nil {
			if s.respondWithMrs(req, res, *r) {
				return // batch.go: the 200 and the <mrs> went out together
			}
			d.mrs = r // not batched: sent the usual way, after the 200
		}
	}
	s.respond(req, res)
	switch d.result {
	case "ok", authMissing, "mrs_received":
	default:
		s.warn(d.result, "scaipsip: SIP request refused", "transport", req.Transport(), "result", d.result, "account", d.account)
	}
	if d.mrs != nil {
		s.mrs.send(req, *d.mrs)
	}
	if d.later != nil {
		d.later.okSent()
	}
}

// warn logs a refusal or a failed send, at most a line a second per
// reason; vaka_scaip_sip_requests_total counts every one.
func (s *Server) warn(reason, msg string, attrs ...any) {
	ok, attrs := s.logLim.Allow(reason, time.Now(), attrs)
	if ok {
		s.log.Warn(msg, attrs...)
	}
}

// txKey names a request's server transaction (RFC 3261 §17.2.3): the top
// Via's branch and sent-by, and the method.
func txKey(req *sip.Request, via *sip.ViaHeader) string {
	branch, _ := via.Params.Get("branch")
	return branch + "|" + via.Host + ":" + strconv.Itoa(via.Port) + "|" + string(req.Method)
}

// response builds a final response whose To tag is the same for every
// retransmission of the request (RFC 3261 §8.2.6.2), without state.
func (s *Server) response(req *sip.Request, status int, reason, key string) *sip.Response {
	if to := req.To(); to != nil && !to.Params.Has("tag") {
		h := fnv.New64a()
		h.Write([]byte(key))
		if c := req.CallID(); c != nil {
			h.Write([]byte(c.Value()))
		}
		to.Params.Add("tag", strconv.FormatUint(h.Sum64(), 36))
	}
	res := sip.NewResponseFromRequest(req, status, reason, nil)
	res.SetDestination(responseAddr(req))
	return res
}

// responseAddr is where a response over UDP goes (RFC 3261 §18.2.2, RFC
// 3581): the source address, and the source port when the unit asked for
// rport or named no port, else the top Via's port.
func responseAddr(req *sip.Request) string {
	src := req.Source()
	via := req.Via()
	if via == nil || via.Port == 0 || via.Params.Has("rport") || sip.IsReliable(req.Transport()) {
		return src
	}
	host, _, err := net.SplitHostPort(src)
	if err != nil {
		return src
	}
	return net.JoinHostPort(host, strconv.Itoa(via.Port))
}

// respond writes res on the connection the request came in on.
func (s *Server) respond(req *sip.Request, res *sip.Response) {
	conn, err := s.tpl.GetConnection(req.Transport(), req.Source())
	if err == nil {
		err = conn.WriteMsg(res)
		_, _ = conn.TryClose() // GetConnection took a reference
	}
	if err != nil {
		s.log.Warn("scaipsip: could not answer a SIP request", "transport", req.Transport(), "err", err)
	}
}

// answerCache remembers, for Timer J, the UDP requests answered 200: two
// generations of timerJ each, so an entry lives between 32 and 64 s. It is
// bounded: past maxAnswers a generation is turned over early, and a very
// late retransmission is then decided again (and refused as a replay: the
// unit has its answer already, or sends anew).
type answerCache struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	since     time.Time
}

const maxAnswers = 1 << 17

func (c *answerCache) seen(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, a := c.cur[key]
	_, b := c.prev[key]
	return a || b
}

func (c *answerCache) add(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || now.Sub(c.since) > timerJ || len(c.cur) >= maxAnswers {
		c.prev, c.cur, c.since = c.cur, make(map[string]struct{}, len(c.cur)), now
	}
	c.cur[key] = struct{}{}
}

// mrsTx is one <mrs> MESSAGE waiting for the unit's final answer.
type mrsTx struct {
	req      *sip.Request
	conn     sip.Connection // nil for a fast-path <mrs>: raw to dst on the UDP listener
	raw      []byte
	dst      netip.AddrPort
	ref      string
	tp       string
	reliable bool
	interval time.Duration
	next     time.Time // next retransmission (UDP)
	deadline time.Time
}

// mrsSender sends each <mrs> as a MESSAGE of its own and keeps it until
// the unit answers: over UDP retransmitted after T1, 2·T1 … up to T2
// (RFC 3261 §17.1.2.2), given up at MrsTimeout. One goroutine does the
// retransmissions and time-outs for all of them.
type mrsSender struct {
	s        *Server
	mu       sync.Mutex
	pending  map[string]*mrsTx // by the Via branch we sent
	wakeAt   time.Time         // when the loop will next look, zero when idle
	wake     chan struct{}
	done     chan struct{}
	finished chan struct{}
}

func newMrsSender(s *Server) *mrsSender {
	m := &mrsSender{s: s, pending: map[string]*mrsTx{}, wake: make(chan struct{}, 1),
		done: make(chan struct{}), finished: make(chan struct{})}
	go m.loop()
	return m
}

// send builds the <mrs> for the request req and sends it to where req
// came from, over the same transport (the same connection for TCP and
// TLS).
func (m *mrsSender) send(req *sip.Request, resp scaip.Response) {
	tx, branch, wake := m.prepare(req, resp)
	if tx == nil {
		return
	}
	m.written(branch, wake, m.write(tx))
}

// write sends an <mrs> (again).
func (m *mrsSender) write(tx *mrsTx) error {
	if tx.conn == nil {
		_, err := m.s.udp.WriteToUDPAddrPort(tx.raw, tx.dst)
		return err
	}
	return tx.conn.WriteMsg(tx.req)
}

// written finishes a send: the <mrs> transaction fails at once on a write
// error, else the retransmission loop is woken if it must look sooner.
func (m *mrsSender) written(branch string, wake bool, err error) {
	if err != nil {
		m.finish(branch, false, 0, err)
		return
	}
	if wake {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// prepare builds the <mrs> MESSAGE and registers its transaction; nil
// when it is not to be sent (closing, no connection, too many in flight:
// counted). wake says whether the loop must be woken once it is written.
func (m *mrsSender) prepare(req *sip.Request, resp scaip.Response) (tx *mrsTx, branch string, wake bool) {
	s := m.s
	if s.closed.Load() {
		return nil, "", false
	}
	from := req.From()
	if from == nil {
		return nil, "", false
	}
	tp := req.Transport()
	conn, err := s.tpl.GetConnection(tp, req.Source())
	if err != nil {
		s.count("mrs_failed")
		s.log.Warn("scaipsip: <mrs> not sent: no connection to the unit", "transport", tp, "ref", resp.Ref, "err", err)
		return nil, "", false
	}
	msg := sip.NewRequest(sip.MESSAGE, from.Address)
	msg.SetDestination(req.Source())
	msg.SetTransport(tp)
	branch = sip.GenerateBranch()
	msg.AppendHeader(m.via(conn, req, tp, branch))
	msg.AppendHeader(&sip.ToHeader{Address: from.Address})
	if t := req.To(); t != nil {
		f := &sip.FromHeader{Address: t.Address, Params: sip.NewParams()}
		f.Params.Add("tag", sip.GenerateTagN(12))
		msg.AppendHeader(f)
	}
	callID := sip.CallIDHeader(sip.GenerateTagN(24))
	msg.AppendHeader(&callID)
	msg.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	mf := sip.MaxForwardsHeader(70)
	msg.AppendHeader(&mf)
	msg.AppendHeader(sip.NewHeader("Content-Type", scaip.ContentType))
	msg.SetBody(resp.Marshal())

	now := time.Now()
	tx = &mrsTx{req: msg, conn: conn, ref: resp.Ref, tp: tp, reliable: sip.IsReliable(tp),
		interval: timerT1, next: now.Add(timerT1), deadline: now.Add(s.cfg.MrsTimeout)}
	ok, wake := m.register(branch, tx)
	if !ok {
		_, _ = conn.TryClose()
		return nil, "", false
	}
	return tx, branch, wake
}

// register keeps tx under branch until its answer; false when too many
// are in flight (counted as mrs_shed). wake says whether the loop must be
// woken once it is written.
func (m *mrsSender) register(branch string, tx *mrsTx) (ok, wake bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) >= maxMrsInFlight {
		m.s.count("mrs_shed")
		return false, false
	}
	m.pending[branch] = tx
	due := tx.deadline
	if !tx.reliable {
		due = tx.next
	}
	return true, m.wakeAt.IsZero() || due.Before(m.wakeAt)
}

// via is the top Via of an <mrs>: our address on the connection (the
// address the unit sent to when we listen on all interfaces), a fresh
// branch, and rport so a unit behind NAT answers to where it came from.
func (m *mrsSender) via(conn sip.Connection, req *sip.Request, tp, branch string) *sip.ViaHeader {
	host, port := "", 0
	if a := conn.LocalAddr(); a != nil {
		if h, p, err := net.SplitHostPort(a.String()); err == nil {
			host = h
			port, _ = strconv.Atoi(p)
		}
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if net.ParseIP(req.Recipient.Host) != nil {
			host = req.Recipient.Host
		}
	}
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(tp),
		Host: host, Port: port, Params: sip.NewParams()}
	v.Params.Add("branch", branch)
	v.Params.Add("rport", "")
	return v
}

// onResponse matches a unit's answer to its <mrs> by the Via branch.
func (m *mrsSender) onResponse(res *sip.Response) {
	via := res.Via()
	if via == nil {
		return
	}
	branch, _ := via.Params.Get("branch")
	if cs := res.CSeq(); cs == nil || cs.MethodName != sip.MESSAGE {
		return
	}
	if res.IsProvisional() {
		// Proceeding: retransmit at T2 from now on (§17.1.2.2).
		m.mu.Lock()
		if tx := m.pending[branch]; tx != nil {
			tx.interval = timerT2
		}
		m.mu.Unlock()
		return
	}
	m.finish(branch, res.IsSuccess(), res.StatusCode, nil)
}

// finish ends an <mrs> transaction and counts how it went.
func (m *mrsSender) finish(branch string, ok bool, status int, err error) {
	m.mu.Lock()
	tx := m.pending[branch]
	delete(m.pending, branch)
	m.mu.Unlock()
	if tx == nil {
		return // a retransmitted answer, or not ours
	}
	if tx.conn != nil {
		_, _ = tx.conn.TryClose()
	}
	if ok {
		m.s.count("mrs_sent")
		return
	}
	m.s.count("mrs_failed")
	m.s.warn("mrs_failed", "scaipsip: <mrs> not taken by the unit", "transport", tx.tp, "ref", tx.ref, "status", status, "err", err)
}

// loop retransmits and times out the pending <mrs>, waking only when the
// earliest of them is due.
func (m *mrsSender) loop() {
	defer close(m.finished)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		var resend []*mrsTx
		var expired []string
		m.mu.Lock()
		next := time.Time{}
		for b, tx := range m.pending {
			if !now.Before(tx.deadline) {
				expired = append(expired, b)
				continue
			}
			due := tx.deadline
			if !tx.reliable {
				if !now.Before(tx.next) {
					resend = append(resend, tx)
					tx.interval = min(2*tx.interval, timerT2)
					tx.next = now.Add(tx.interval)
				}
				if tx.next.Before(due) {
					due = tx.next
				}
			}
			if next.IsZero() || due.Before(next) {
				next = due
			}
		}
		m.wakeAt = next
		m.mu.Unlock()
		for _, tx := range resend {
			_ = m.write(tx) // a failed write is retried at the next interval
		}
		for _, b := range expired {
			m.finish(b, false, 0, errMrsTimeout)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-m.wake:
		case <-m.done:
			return
		}
	}
}

// close stops the loop and gives up what is pending.
func (m *mrsSender) close() {
	close(m.done)
	<-m.finished
	m.mu.Lock()
	pending := m.pending
	m.pending = map[string]*mrsTx{}
	m.mu.Unlock()
	for _, tx := range pending {
		if tx.conn != nil {
			_, _ = tx.conn.TryClose()
		}
	}
}

var errMrsTimeout = errTimeout("no final answer in time")

type errTimeout string

func (e errTimeout) Error() string { return string(e) }
