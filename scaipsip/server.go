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
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/scaip"
)

// Handler answers one authenticated SCAIP request body.
type Handler interface {
	HandleSCAIP(account string, body []byte) scaip.Response
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
type Server struct {
	cfg     Config
	h       Handler
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	auth    *digestAuth
	results *prometheus.CounterVec
	addrs   map[string]string
	closers []func() error
	wg      sync.WaitGroup
	closed  atomic.Bool
	mrsWG   sync.WaitGroup
	mrsSem  chan struct{} // bounds <mrs> sends waiting for their 200 OK
}

// maxMrsInFlight bounds the <mrs> MESSAGEs waiting for the unit's 200 OK
// (each a goroutine and, over UDP, a retransmitting transaction). Past it
// an answer is not sent, counted as mrs_shed: the unit, having no answer,
// resends its request, which is de-duplicated, so nothing is lost, and a
// peer that never answers cannot make the hub hold or retransmit without
// bound.
const maxMrsInFlight = 2048

// SIP results counted in vaka_scaip_sip_requests_total{result}.
var sipResults = []string{"ok", authMissing, authBasic, authBad, authUnknown, authWrong, authStale, authReplay,
	"bad_content_type", "not_message", "mrs_received", "mrs_sent", "mrs_failed", "mrs_shed"}

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
	s := &Server{cfg: cfg, h: h, log: cfg.Logger, addrs: map[string]string{}, mrsSem: make(chan struct{}, maxMrsInFlight),
		auth: newDigestAuth(cfg.Realm, cfg.Accounts, cfg.Now)}
	s.results = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vaka_scaip_sip_requests_total",
		Help: "SIP requests to the SCAIP receiver, by result (ok, unauthenticated, wrong_digest, replayed_digest, basic_refused …) and <mrs> sends."},
		[]string{"result"})
	for _, r := range sipResults {
		s.results.WithLabelValues(r)
	}
	if err := cfg.Registry.Register(s.results); err != nil {
		return nil, fmt.Errorf("scaipsip: metrics: %w", err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("vaka"), sipgo.WithUserAgenTLSConfig(cfg.TLS))
	if err != nil {
		return nil, fmt.Errorf("scaipsip: %w", err)
	}
	s.ua = ua
	// sipgo logs at Debug what a peer sends; keep its logs quiet unless
	// asked, and never at Info (they would carry SIP URIs).
	quiet := slog.New(slog.DiscardHandler)
	if s.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(quiet)); err != nil {
		ua.Close()
		return nil, fmt.Errorf("scaipsip: %w", err)
	}
	if s.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(quiet)); err != nil {
		ua.Close()
		return nil, fmt.Errorf("scaipsip: %w", err)
	}
	s.srv.OnMessage(s.onMessage)
	s.srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		s.results.WithLabelValues("not_message").Inc()
		res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
		res.AppendHeader(sip.NewHeader("Allow", "MESSAGE"))
		_ = tx.Respond(res)
	})
	if err := s.listen(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
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
		}
		s.addrs["udp"] = pc.LocalAddr().String()
		s.closers = append(s.closers, pc.Close)
		serve("udp", func() error { return s.srv.ServeUDP(pc) })
	}
	if a := s.cfg.TCP; a != "" {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("scaipsip: listen tcp %s: %w", a, err)
		}
		s.addrs["tcp"] = l.Addr().String()
		s.closers = append(s.closers, l.Close)
		serve("tcp", func() error { return s.srv.ServeTCP(l) })
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
		serve("tls", func() error { return s.srv.ServeTLS(l) })
	}
	return nil
}

// Addr is the bound address of a transport ("udp", "tcp", "tls"), "" when off.
func (s *Server) Addr(transport string) string { return s.addrs[transport] }

// Close stops the listeners and waits for <mrs> sends in flight.
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
	s.mrsWG.Wait()
	if s.ua != nil {
		errs = append(errs, s.ua.Close())
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
}

// decide is the SIP entry point without the transport: fuzzed.
func (s *Server) decide(req *sip.Request) decision {
	if req.Method != sip.MESSAGE {
		return decision{status: 405, reason: "Method Not Allowed", result: "not_message"}
	}
	var authz string
	if h := req.GetHeader("Authorization"); h != nil {
		authz = h.Value()
	}
	account, outcome := s.auth.check(authz, string(req.Method))
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
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(strings.Split(h.Value(), ";")[0]))
	}
	if ct != scaip.ContentType {
		return decision{status: 415, reason: "Unsupported Media Type", result: "bad_content_type", account: account}
	}
	body := req.Body()
	if isResponse(body) {
		// An <mrs> sent to us (a unit answering, or a peer echoing): never
		// answer it with another <mrs>, which could ping-pong.
		return decision{status: 200, reason: "OK", result: "mrs_received", account: account}
	}
	resp := s.h.HandleSCAIP(account, body)
	return decision{status: 200, reason: "OK", result: "ok", account: account, mrs: &resp}
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

func (s *Server) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	d := s.decide(req)
	s.results.WithLabelValues(d.result).Inc()
	res := sip.NewResponseFromRequest(req, d.status, d.reason, nil)
	if d.challenge != "" {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", d.challenge))
	}
	if d.status == 415 {
		res.AppendHeader(sip.NewHeader("Accept", scaip.ContentType))
	}
	if err := tx.Respond(res); err != nil {
		s.log.Warn("scaipsip: could not answer a SIP request", "transport", req.Transport(), "err", err)
	}
	switch d.result {
	case "ok", authMissing, "mrs_received":
	default:
		s.log.Warn("scaipsip: SIP request refused", "transport", req.Transport(), "result", d.result, "account", d.account)
	}
	if d.mrs != nil {
		s.sendMrs(req, *d.mrs)
	}
}

// sendMrs sends the <mrs> as a MESSAGE of its own to where the request
// came from, over the same transport (the same connection for TCP and
// TLS), and waits in the background for the unit's 200 OK.
func (s *Server) sendMrs(req *sip.Request, resp scaip.Response) {
	if s.closed.Load() {
		return
	}
	from := req.From()
	if from == nil {
		return
	}
	m := sip.NewRequest(sip.MESSAGE, from.Address)
	m.SetDestination(req.Source())
	m.SetTransport(req.Transport())
	to := &sip.ToHeader{Address: from.Address}
	m.AppendHeader(to)
	if t := req.To(); t != nil {
		f := &sip.FromHeader{Address: t.Address, Params: sip.NewParams()}
		f.Params.Add("tag", sip.GenerateTagN(12))
		m.AppendHeader(f)
	}
	m.AppendHeader(sip.NewHeader("Content-Type", scaip.ContentType))
	m.SetBody(resp.Marshal())
	select {
	case s.mrsSem <- struct{}{}:
	default:
		s.results.WithLabelValues("mrs_shed").Inc()
		return
	}
	s.mrsWG.Add(1)
	go func() {
		defer func() { <-s.mrsSem; s.mrsWG.Done() }()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.MrsTimeout)
		defer cancel()
		res, err := s.client.Do(ctx, m)
		if err != nil || !res.IsSuccess() {
			s.results.WithLabelValues("mrs_failed").Inc()
			code := 0
			if res != nil {
				code = res.StatusCode
			}
			s.log.Warn("scaipsip: <mrs> not taken by the unit", "transport", req.Transport(), "ref", resp.Ref, "status", code, "err", err)
			return
		}
		s.results.WithLabelValues("mrs_sent").Inc()
	}()
}
