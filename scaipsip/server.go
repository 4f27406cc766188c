// Package scaipsip carries SCAIP over SIP for the hub: a receiver for SIP
// MESSAGE requests with application/scaip+xml over UDP, TCP and TLS, Digest
// authenticated per account, whose <mrs> answer goes back as a MESSAGE of
// its own (the standard's exchange; SS 91100:2014, RFC 3428). It uses
// github.com/emiago/sipgo for the SIP stack.
//
// The package knows nothing of alarms: it hands each authenticated body to
// a Handler (the hub) and sends what the handler answers. Voice (INVITE,
// RTP) is not taken: an INVITE is refused and every <mrs> says mre 0.
package scaipsip

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"

	"github.com/vaka-care/vaka/internal/lograte"
	"github.com/vaka-care/vaka/scaip"
)

// Handler answers one authenticated SCAIP request body.
type Handler interface {
	HandleSCAIP(account string, body []byte) scaip.Response
}

// AsyncHandler is a Handler that may answer later: the hub with
// store.sync_each_write answers snu 0 only once the event is on disk, and
// waits for that fsync on a goroutine of its own, shared by the messages
// in flight, instead of in the connection's read loop. answer is called
// exactly once, on any goroutine; the receiver sends the <mrs> then (and
// never before the request's SIP 200).
type AsyncHandler interface {
	HandleSCAIPAsync(account string, body []byte, answer func(scaip.Response))
}

// Config sets a receiver up.
type Config struct {
	UDP, TCP string      // listen addresses; empty: off
	TLSAddr  string      // listen address for SIP over TLS; needs TLS
	TLS      *tls.Config // certificate for TLSAddr
	Realm    string
	Accounts map[string]string // username → HA1
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time // nil: time.Now
	// MrsTimeout bounds the wait for the unit's 200 OK to an <mrs>.
	MrsTimeout time.Duration
}

// Server is a running receiver.
//
// It uses sipgo's transport layer (sockets, connections, the SIP parser)
// but not its transaction layer: that layer starts a goroutine for every
// request and every response, keeps each transaction with its timers for
// 32 s, and waits for each <mrs>'s 200 OK in a goroutine of its own. The
// receiver does the few things RFC 3261 asks of a non-INVITE transaction
// itself (tx.go): a request is handled in its connection's read loop (one
// per UDP socket, one per TCP or TLS connection), a retransmitted request
// gets the same final answer without being handled again, and the <mrs>
// MESSAGEs are retransmitted and matched to their answers by one timer
// loop.
type Server struct {
	cfg     Config
	h       Handler
	log     *slog.Logger
	tpl     *sip.TransportLayer
	auth    *digestAuth
	results *prometheus.CounterVec
	addrs   map[string]string
	closers []func() error
	wg      sync.WaitGroup
	closed  atomic.Bool
	answers answerCache // UDP: requests answered 200, for their retransmissions
	mrs     *mrsSender
	counts  map[string]prometheus.Counter
	logLim  lograte.Limiter // refusal logs: a line a second per reason
	// udpBatch writes on the UDP listener's socket (the one sipgo reads):
	// a request's 200 and its <mrs> leave in one sendmmsg (batch.go).
	udpBatch *ipv4.PacketConn
	// udp is that socket, for the fast path's answers (fast_server.go),
	// and udpHost/udpPort its address as an <mrs>'s Via names it.
	udp                *net.UDPConn
	udpHost            string
	udpPort            int
	udpHostUnspecified bool
	fastTaken          prometheus.Counter
	fastDeclined       prometheus.Counter
}

// maxMrsInFlight bounds the <mrs> MESSAGEs waiting for the unit's 200 OK.
// Past it an answer is not sent, counted as mrs_shed: the unit, having no
// answer, resends its request, which is de-duplicated, so nothing is lost,
// and a peer that never answers cannot make the hub hold or retransmit
// without bound.
const maxMrsInFlight = 2048

// SIP results counted in vaka_scaip_sip_requests_total{result}.
var sipResults = []string{"ok", authMissing, authBasic, authBad, authUnknown, authWrong, authStale, authReplay,
	"bad_content_type", "not_message", "bad_request", "retransmission", "mrs_received", "mrs_sent", "mrs_failed", "mrs_shed"}

// Start listens on the configured transports and serves until Close.
func Start(cfg Config, h Handler) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MrsTimeout == 0 {
		cfg.MrsTimeout = 10 * time.Second
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, h: h, log: cfg.Logger, addrs: map[string]string{},
		auth: newDigestAuth(cfg.Realm, cfg.Accounts, cfg.Now)}
	s.results = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vaka_scaip_sip_requests_total",
		Help: "SIP requests to the SCAIP receiver, by result (ok, unauthenticated, wrong_digest, replayed_digest, basic_refused, retransmission …) and <mrs> sends."},
		[]string{"result"})
	s.counts = map[string]prometheus.Counter{}
	for _, r := range sipResults {
		s.counts[r] = s.results.WithLabelValues(r)
	}
	if err := cfg.Registry.Register(s.results); err != nil {
		return nil, fmt.Errorf("scaipsip: metrics: %w", err)
	}
	fast := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vaka_scaip_sip_fast_path_total",
		Help: "SIP datagrams over UDP the receiver's fast path read itself (taken) or left to sipgo's parser (declined)."},
		[]string{"result"})
	if err := cfg.Registry.Register(fast); err != nil {
		return nil, fmt.Errorf("scaipsip: metrics: %w", err)
	}
	s.fastTaken, s.fastDeclined = fast.WithLabelValues("taken"), fast.WithLabelValues("declined")
	// sipgo logs at Debug what a peer sends, and at Error a datagram it
	// cannot parse, with its bytes: keep its logs quiet (they would carry
	// SIP URIs and message content).
	quiet := slog.New(slog.DiscardHandler)
	s.tpl = sip.NewTransportLayer(net.DefaultResolver, sip.NewParser(), cfg.TLS, sip.WithTransportLayerLogger(quiet))
	s.tpl.OnMessage(s.onSIP)
	s.mrs = newMrsSender(s)
	if err := s.listen(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// count adds one to a result.
func (s *Server) count(result string) {
	if c, ok := s.counts[result]; ok {
		c.Inc()
		return
	}
	s.results.WithLabelValues(result).Inc()
}

func (s *Server) listen() error {
	serve := func(name string, f func() error) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := f(); err != nil && !s.closed.Load() {
				s.log.Error("scaipsip: listener stopped", "transport", name, "err", err)
			}
		}()
	}
	if a := s.cfg.UDP; a != "" {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			return fmt.Errorf("scaipsip: listen udp %s: %w", a, err)
		}
		if u, ok := pc.(*net.UDPConn); ok {
			// A burst (a power cut ends and every unit reports at once)
			// must wait in the socket, not be dropped by the kernel: units
			// do retransmit over UDP, but only after 500 ms.
			_ = u.SetReadBuffer(4 << 20)
			s.udpBatch = ipv4.NewPacketConn(u) // batch.go: a 200 and its <mrs> in one sendmmsg
			s.udp = u
			if la, ok := u.LocalAddr().(*net.UDPAddr); ok {
				s.udpHost, s.udpPort = la.IP.String(), la.Port
				s.udpHostUnspecified = la.IP.IsUnspecified()
			}
			// fast.go: the MESSAGEs and answers that come at rate are
			// read without sipgo's parser; the rest reaches sipgo.
			pc = &fastUDPConn{UDPConn: u, s: s}
		}
		s.addrs["udp"] = pc.LocalAddr().String()
		s.closers = append(s.closers, pc.Close)
		serve("udp", func() error { return s.tpl.ServeUDP(pc) })
	}
	if a := s.cfg.TCP; a != "" {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("scaipsip: listen tcp %s: %w", a, err)
		}
		s.addrs["tcp"] = l.Addr().String()
		s.closers = append(s.closers, l.Close)
		serve("tcp", func() error { return s.tpl.ServeTCP(l) })
	}
	if a := s.cfg.TLSAddr; a != "" {
		if s.cfg.TLS == nil {
			return errors.New("scaipsip: a TLS address needs a certificate")
		}
		l, err := tls.Listen("tcp", a, s.cfg.TLS)
		if err != nil {
			return fmt.Errorf("scaipsip: listen tls %s: %w", a, err)
		}
		s.addrs["tls"] = l.Addr().String()
		s.closers = append(s.closers, l.Close)
		serve("tls", func() error { return s.tpl.ServeTLS(l) })
	}
	return nil
}

// Addr is the bound address of a transport ("udp", "tcp", "tls"), "" when off.
func (s *Server) Addr(transport string) string { return s.addrs[transport] }

// Close stops the listeners and the <mrs> sends. An <mrs> not yet taken
// is given up (mrs_failed): the unit, without it, resends its request.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, c := range s.closers {
		if err := c(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if s.mrs != nil {
		s.mrs.close()
	}
	if s.tpl != nil {
		errs = append(errs, s.tpl.Close())
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// decision is what the receiver does with one request: the SIP status to
// answer and, for an authenticated SCAIP request, the <mrs> to send.
type decision struct {
	status    int
	reason    string
	challenge string // WWW-Authenticate value on 401
	result    string
	account   string
	mrs       *scaip.Response
	later     *laterMrs // an AsyncHandler's answer, sent once it comes
}

// decide is the SIP entry point without the transport: fuzzed.
func (s *Server) decide(req *sip.Request) decision {
	var authz, ct string
	if h := req.GetHeader("Authorization"); h != nil {
		authz = h.Value()
	}
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	return s.decideFields(string(req.Method), authz, ct, req.Body(), func() *laterMrs { return &laterMrs{s: s, req: req} })
}

// decideFields is decide on the fields it reads, shared by sipgo's path
// and the fast path (fast.go): the method, the Authorization and
// Content-Type values, the body, and how to make the laterMrs an
// AsyncHandler answers into.
func (s *Server) decideFields(method, authz, contentType string, body []byte, later func() *laterMrs) decision {
	if method != string(sip.MESSAGE) {
		return decision{status: 405, reason: "Method Not Allowed", result: "not_message"}
	}
	account, outcome := s.auth.check(authz, method)
	switch outcome {
	case authOK:
	case authMissing, authStale:
		return decision{status: 401, reason: "Unauthorized", challenge: s.auth.challenge(outcome == authStale), result: outcome}
	case authBasic:
		// Never Basic: say so, and offer Digest.
		return decision{status: 401, reason: "Unauthorized (Digest only)", challenge: s.auth.challenge(false), result: outcome}
	default:
		return decision{status: 403, reason: "Forbidden", result: outcome, account: account}
	}
	ct, _, _ := strings.Cut(contentType, ";")
	if strings.ToLower(strings.TrimSpace(ct)) != scaip.ContentType {
		return decision{status: 415, reason: "Unsupported Media Type", result: "bad_content_type", account: account}
	}
	if isResponse(body) {
		// An <mrs> sent to us (a unit answering, or a peer echoing): never
		// answer it with another <mrs>, which could ping-pong.
		return decision{status: 200, reason: "OK", result: "mrs_received", account: account}
	}
	if ah, ok := s.h.(AsyncHandler); ok {
		l := later()
		ah.HandleSCAIPAsync(account, body, l.answer)
		return decision{status: 200, reason: "OK", result: "ok", account: account, later: l}
	}
	resp := s.h.HandleSCAIP(account, body)
	return decision{status: 200, reason: "OK", result: "ok", account: account, mrs: &resp}
}

// laterMrs is an <mrs> an AsyncHandler answers, perhaps after the read
// loop has moved on: it is sent when both the answer is there and the
// request's SIP 200 is out, by whichever comes last.
type laterMrs struct {
	s    *Server
	req  *sip.Request
	fast *fastTarget // set instead of req by the fast path, before okSent
	mu   sync.Mutex
	ok   bool // the request's 200 was sent
	resp *scaip.Response
}

// answer takes the handler's answer.
func (l *laterMrs) answer(r scaip.Response) {
	l.mu.Lock()
	if !l.ok {
		l.resp = &r
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.send(r)
}

func (l *laterMrs) send(r scaip.Response) {
	if l.fast != nil {
		l.s.mrs.sendFast(l.fast, r)
		return
	}
	l.s.mrs.send(l.req, r)
}

// okSent is called once the request's 200 is written.
func (l *laterMrs) okSent() {
	l.mu.Lock()
	l.ok = true
	r := l.resp
	l.mu.Unlock()
	if r != nil {
		l.send(*r)
	}
}

// isResponse reports whether a body's root element is <mrs>.
func isResponse(body []byte) bool {
	b := bytes.TrimSpace(body)
	if bytes.HasPrefix(b, []byte("<?xml")) {
		if i := bytes.Index(b, []byte("?>")); i >= 0 {
			b = bytes.TrimSpace(b[i+2:])
		}
	}
	return bytes.HasPrefix(b, []byte("<mrs>")) || bytes.HasPrefix(b, []byte("<mrs "))
}
