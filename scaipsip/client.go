package scaipsip

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/vaka-care/vaka/scaip"
)

// SendOptions is one SCAIP request to send as an alarm unit would.
type SendOptions struct {
	Transport string // "udp" (default), "tcp" or "tls"
	Addr      string // the receiver's host:port
	Username  string // Digest account
	Password  string
	Body      []byte // the <mrq>
	Timeout   time.Duration
	// TLS for "tls"; nil verifies against the system roots.
	TLS *tls.Config
	// Local is the address to send from and take the <mrs> on (UDP);
	// default 127.0.0.1:0 for a loopback receiver, else :0.
	Local string
}

// SendResult is what came back.
type SendResult struct {
	SIPStatus int             // the SIP answer to the MESSAGE
	Mrs       *scaip.Response // nil when no <mrs> arrived in time
	MrsBody   []byte
}

// Send sends one SCAIP request over SIP, answers a Digest challenge, and
// waits for the <mrs>: as the standard's own MESSAGE back, or (liberal, as
// one commercial proxy does) in the body of the 200 OK. It is Vaka's own
// peer for `vaka scaip send`, the demo's simulated unit and benchmarks.
func Send(ctx context.Context, o SendOptions) (SendResult, error) {
	s, err := NewSender(o.Transport, o.Local, o.Addr, o.TLS)
	if err != nil {
		return SendResult{}, err
	}
	defer s.Close()
	return s.Send(ctx, o)
}

// Sender keeps a SIP user agent (its socket and connection) between
// sends, and the receiver's last Digest challenge: each send after the
// first signs with that nonce and the next nonce count (qop=auth, as RFC
// 2617 §3.2.2 and RFC 7616 §3.4 allow), so a unit costs the receiver no
// 401 round trip per message. A 401 (the nonce expired, stale=true, or the
// receiver restarted) takes the new challenge and sends once more.
//
// Sends may overlap (several hand-overs, heartbeats): each waits for the
// <mrs> with its own ref, so an answer goes to the send it answers
// whatever order they come in (waiters.go).
type Sender struct {
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	tp     string
	wait   waiters
	done   chan struct{}
	// peers are the receiver's addresses: an <mrs> from anywhere else is
	// refused (over UDP anyone can write to the sender's port, and a
	// forged snu 0 would tell Vaka a centre has an alarm it never got).
	// nil when the receiver's name could not be resolved here: then any.
	peers map[string]bool

	authMu   sync.Mutex
	chal     digestParams // nil until the first 401
	chalUser string
	nc       int

	stats senderStats
}

// NewSender builds a sender for transport towards addr.
func NewSender(transport, local, addr string, tlsConf *tls.Config) (*Sender, error) {
	tp := strings.ToLower(transport)
	if tp == "" {
		tp = "udp"
	}
	if tp != "udp" && tp != "tcp" && tp != "tls" {
		return nil, fmt.Errorf("scaipsip: transport %q: use udp, tcp or tls", transport)
	}
	if local == "" {
		local = ":0"
		if h, _, err := net.SplitHostPort(addr); err == nil && net.ParseIP(h).IsLoopback() {
			local = "127.0.0.1:0"
		}
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("vaka-scaip"), sipgo.WithUserAgenTLSConfig(tlsConf))
	if err != nil {
		return nil, fmt.Errorf("scaipsip: %w", err)
	}
	s := &Sender{ua: ua, tp: tp, done: make(chan struct{})}
	if s.srv, err = sipgo.NewServer(ua); err != nil {
		ua.Close()
		return nil, err
	}
	s.peers = peerIPs(addr)
	s.srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		if !s.fromPeer(req.MessageData.Source()) {
			s.stats.foreign.Add(1)
			_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		s.answer(req.Body())
	})
	var opts []sipgo.ClientOption
	close(s.done)
	if tp == "udp" {
		// The client's own socket takes the <mrs> (sipgo hands requests
		// arriving on it to the server handler above): pick a port for it.
		pc, err := net.ListenPacket("udp", local)
		if err != nil {
			ua.Close()
			return nil, fmt.Errorf("scaipsip: %w", err)
		}
		bound := pc.LocalAddr().String()
		pc.Close()
		opts = append(opts, sipgo.WithClientConnectionAddr(bound))
	} else {
		if h, _, err := net.SplitHostPort(local); err == nil && h != "" {
			opts = append(opts, sipgo.WithClientHostname(h))
		}
	}
	if s.client, err = sipgo.NewClient(ua, opts...); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the sender's socket and connections.
func (s *Sender) Close() error {
	err := s.ua.Close()
	<-s.done
	return err
}

// Send sends one request and waits for its <mrs> (matched by ref).
func (s *Sender) Send(ctx context.Context, o SendOptions) (SendResult, error) {
	var res SendResult
	req, perr := scaip.Parse(o.Body)
	ref := ""
	if perr == nil {
		ref = req.Ref
	} else {
		var e *scaip.Error
		if errors.As(perr, &e) {
			ref = e.Ref
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	// Waiting before sending: a fast centre's <mrs> may come before the
	// 200 OK to the MESSAGE.
	w := s.wait.add(ref)
	defer s.wait.remove(ref, w)
	s.stats.sent.Add(1)
	host, port, err := sip.ParseAddr(o.Addr)
	if err != nil {
		return res, fmt.Errorf("scaipsip: address %q: %w", o.Addr, err)
	}
	scheme := "sip"
	if s.tp == "tls" {
		scheme = "sips"
	}
	uri := sip.Uri{Scheme: scheme, User: "scaip", Host: host, Port: port, UriParams: sip.NewParams(), Headers: sip.NewParams()}
	uri.UriParams.Add("transport", s.tp)
	m := sip.NewRequest(sip.MESSAGE, uri)
	m.SetTransport(strings.ToUpper(s.tp))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: scheme, User: o.Username, Host: "vaka-scaip"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	m.AppendHeader(from)
	m.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: scheme, User: "scaip", Host: host}})
	m.AppendHeader(sip.NewHeader("Content-Type", scaip.ContentType))
	m.SetBody(o.Body)
	kept := o.Username != "" && s.sign(m, o.Username, o.Password)
	resp, err := s.client.Do(ctx, m)
	if err == nil && kept && resp.StatusCode == 403 {
		// The kept nonce was refused rather than challenged again: a
		// receiver that keeps its nonce per call, or lost count (requests
		// arriving out of order). Forget it and ask for a fresh one.
		s.forget()
		m.CSeq().SeqNo++
		m.RemoveHeader("Via")
		m.RemoveHeader("Authorization")
		resp, err = s.client.Do(ctx, m)
	}
	if err == nil && resp.StatusCode == 401 && o.Username != "" && s.challenged(resp, o.Username) {
		// A new transaction: the next CSeq and a new Via branch.
		m.CSeq().SeqNo++
		m.RemoveHeader("Via")
		s.sign(m, o.Username, o.Password)
		resp, err = s.client.Do(ctx, m)
	}
	if err == nil && (resp.StatusCode == 401 || resp.StatusCode == 407) && o.Username != "" {
		// A challenge this sender cannot keep (another algorithm or qop, a
		// proxy's): sipgo's own Digest, one 401 round trip per message.
		resp, err = s.client.DoDigestAuth(ctx, m, resp, sipgo.DigestAuth{Username: o.Username, Password: o.Password})
	}
	if err != nil {
		return res, fmt.Errorf("scaipsip: MESSAGE: %w", err)
	}
	res.SIPStatus = resp.StatusCode
	if !resp.IsSuccess() {
		return res, nil
	}
	if b := resp.Body(); len(b) > 0 {
		if r, err := scaip.ParseResponse(b); err == nil && (ref == "" || r.Ref == ref) {
			res.Mrs, res.MrsBody = r, b
			return res, nil
		}
	}
	select {
	case a := <-w:
		res.Mrs, res.MrsBody = a.mrs, a.body
		return res, nil
	case <-ctx.Done():
		return res, fmt.Errorf("scaipsip: no <mrs> for ref %q within %v", ref, o.Timeout)
	}
}

// peerIPs are the addresses of addr's host (an IP, or a name resolved
// once, bounded to 2 s); nil if it cannot be resolved.
func peerIPs(addr string) map[string]bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(h); ip != nil {
		return map[string]bool{ip.String(): true}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", h)
	if err != nil || len(ips) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, ip := range ips {
		m[ip.String()] = true
	}
	return m
}

// fromPeer reports whether src (host:port) is the receiver.
func (s *Sender) fromPeer(src string) bool {
	if s.peers == nil {
		return true
	}
	h, _, err := net.SplitHostPort(src)
	if err != nil {
		return false
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	// Sent to 0.0.0.0 or :: ("this host", as the demo's unit does when the
	// hub listens on every address): the answer comes from loopback.
	if ip.IsLoopback() && (s.peers[net.IPv4zero.String()] || s.peers[net.IPv6unspecified.String()]) {
		return true
	}
	return s.peers[ip.String()]
}

// answer hands an <mrs> the receiver sent to the send waiting for its ref.
func (s *Sender) answer(b []byte) {
	r, err := scaip.ParseResponse(b)
	if err != nil {
		s.stats.unmatched.Add(1)
		return
	}
	if !s.wait.deliver(r, append([]byte(nil), b...)) {
		s.stats.unmatched.Add(1) // late (its send gave up) or for no send of ours
	}
}

// forget drops the kept challenge: the next send is unsigned and is
// challenged afresh.
func (s *Sender) forget() {
	s.authMu.Lock()
	s.chal, s.nc = nil, 0
	s.authMu.Unlock()
}

// challenged keeps the receiver's Digest challenge from a 401 and starts
// its nonce count again; it reports whether this sender can answer it
// (MD5 or SHA-256, qop auth or none).
func (s *Sender) challenged(res *sip.Response, user string) bool {
	h := res.GetHeader("WWW-Authenticate")
	if h == nil {
		return false
	}
	c, err := parseDigestParams(h.Value())
	if err != nil || c["nonce"] == "" || digestHash(c["algorithm"]) == nil {
		return false
	}
	if q := c["qop"]; q != "" && !slices.Contains(strings.Split(strings.ReplaceAll(q, " ", ""), ","), "auth") {
		return false
	}
	s.authMu.Lock()
	s.chal, s.chalUser, s.nc = c, user, 0
	s.authMu.Unlock()
	s.stats.challenges.Add(1)
	return true
}

// digestHash is the hash for a Digest algorithm this sender answers.
func digestHash(alg string) func(string) string {
	switch strings.ToUpper(alg) {
	case "", "MD5":
		return md5hex
	case "SHA-256":
		return func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	}
	return nil
}

// sign puts an Authorization on m from the kept challenge with the next
// nonce count (RFC 2617 §3.2.2, RFC 7616 §3.4); without a challenge for
// user it leaves m unsigned and reports false.
func (s *Sender) sign(m *sip.Request, user, pass string) bool {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	c := s.chal
	if c == nil || s.chalUser != user {
		return false
	}
	hash := digestHash(c["algorithm"])
	uri := m.Recipient.Addr()
	ha1 := hash(user + ":" + c["realm"] + ":" + pass)
	ha2 := hash(string(m.Method) + ":" + uri)
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username="%s", realm="%s", nonce="%s", uri="%s"`, user, c["realm"], c["nonce"], uri)
	if c["qop"] != "" {
		s.nc++
		nc := fmt.Sprintf("%08x", s.nc)
		cnonce := sip.GenerateTagN(16)
		fmt.Fprintf(&b, `, response="%s", qop=auth, nc=%s, cnonce="%s"`,
			hash(ha1+":"+c["nonce"]+":"+nc+":"+cnonce+":auth:"+ha2), nc, cnonce)
	} else {
		fmt.Fprintf(&b, `, response="%s"`, hash(ha1+":"+c["nonce"]+":"+ha2))
	}
	if a := c["algorithm"]; a != "" {
		b.WriteString(", algorithm=" + strings.ToUpper(a))
	}
	if o, ok := c["opaque"]; ok {
		fmt.Fprintf(&b, `, opaque="%s"`, o)
	}
	m.RemoveHeader("Authorization")
	m.AppendHeader(sip.NewHeader("Authorization", b.String()))
	return true
}
