package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vaka-care/vaka/scaip"
	"github.com/vaka-care/vaka/scaipsip"
)

// SIPSender is the real SCAIPExchanger (the dispatcher's default; the
// benchmark and tests use it directly): SIP MESSAGE with Digest
// (scaipsip), one long-lived scaipsip.Sender per centre. A sender keeps
// its socket or connection and the centre's Digest nonce (signing each
// message with the next nonce count), so a hand-over costs one MESSAGE,
// not a new user agent and a 401 round trip; the <mrs> of overlapping
// exchanges (several alarms at once, a heartbeat) go to their own send by
// ref. Restarts on either side are safe: a centre that forgot the nonce
// answers 401 (or 403), and the sender takes a fresh challenge and sends
// once more; a send that fails at the SIP layer (connection refused or
// reset, TLS) closes that sender, and the next exchange builds a new one
// with a new connection and re-reads the password file.
type SIPSender struct {
	mu      sync.Mutex
	senders map[string]*centreSender // by centre identity (senderKey)
	closed  bool
	// retain is the centres of the route tree in force (Retain); nil
	// until the first Retain: every sender is kept. A sender for another
	// centre (a hand-over a reload left running on its old plan) lives
	// only while an exchange uses it.
	retain map[string]bool
}

// centreSender is one centre's long-lived sender.
type centreSender struct {
	s        *scaipsip.Sender
	addr, tp string
	user, pw string
	busy     int // exchanges using it now, under SIPSender.mu
}

// NewSIPSender returns a SIPSender without senders yet: each centre's is
// made at its first exchange.
func NewSIPSender() *SIPSender { return &SIPSender{senders: map[string]*centreSender{}} }

// senderKey is what makes two receivers the same line to a centre.
func senderKey(c *SCAIP) string {
	return strings.Join([]string{c.To, c.Transport, c.Username, c.PasswordFile, c.CAFile, c.CertFile, c.KeyFile}, "\x00")
}

func (x *SIPSender) sender(c *SCAIP) (*centreSender, error) {
	key := senderKey(c)
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil, errors.New("scaip: sender closed")
	}
	if cs := x.senders[key]; cs != nil {
		cs.busy++
		return cs, nil
	}
	host, port, tp, err := c.target()
	if err != nil {
		return nil, err
	}
	pw, err := c.password()
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if tp == "tls" {
		if tc, err = c.tlsConfig(); err != nil {
			return nil, err
		}
	}
	addr := net.JoinHostPort(host, port)
	s, err := scaipsip.NewSender(tp, "", addr, tc)
	if err != nil {
		return nil, err
	}
	cs := &centreSender{s: s, addr: addr, tp: tp, user: c.Username, pw: pw, busy: 1}
	x.senders[key] = cs
	return cs, nil
}

// release ends an exchange's use of cs, closing it if its centre is no
// longer in the route tree and nothing else uses it.
func (x *SIPSender) release(c *SCAIP, cs *centreSender) {
	key := senderKey(c)
	x.mu.Lock()
	cs.busy--
	gone := cs.busy == 0 && x.retain != nil && !x.retain[key] && x.senders[key] == cs
	if gone {
		delete(x.senders, key)
	}
	x.mu.Unlock()
	if gone {
		_ = cs.s.Close()
	}
}

// Retain keeps the senders of these centres (the reloaded route tree's)
// and closes the others once no exchange uses them: a centre removed by a
// reload keeps no socket, connection or nonce.
func (x *SIPSender) Retain(centres []*SCAIP) {
	keep := make(map[string]bool, len(centres))
	for _, c := range centres {
		keep[senderKey(c)] = true
	}
	x.mu.Lock()
	x.retain = keep
	var gone []*centreSender
	for k, cs := range x.senders {
		if !keep[k] && cs.busy == 0 {
			delete(x.senders, k)
			gone = append(gone, cs)
		}
	}
	x.mu.Unlock()
	for _, cs := range gone {
		_ = cs.s.Close()
	}
}

// Centres is how many centres' senders are kept (tests).
func (x *SIPSender) Centres() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.senders)
}

// drop closes cs if it is still the sender for c.
func (x *SIPSender) drop(c *SCAIP, cs *centreSender) {
	key := senderKey(c)
	x.mu.Lock()
	if x.senders[key] == cs {
		delete(x.senders, key)
	} else {
		cs = nil
	}
	x.mu.Unlock()
	if cs != nil {
		_ = cs.s.Close()
	}
}

func (x *SIPSender) Exchange(ctx context.Context, c *SCAIP, body []byte) (*scaip.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // (a stopped heartbeat) no sender made for nothing
	}
	cs, err := x.sender(c)
	if err != nil {
		return nil, err
	}
	defer x.release(c, cs)
	timeout := c.timeout()
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	res, err := cs.s.Send(ctx, scaipsip.SendOptions{Transport: cs.tp, Addr: cs.addr,
		Username: cs.user, Password: cs.pw, Body: body, Timeout: timeout})
	if err != nil {
		if res.SIPStatus == 0 && ctx.Err() == nil && !isNoMrs(err) {
			x.drop(c, cs) // the line itself failed: a new connection next time
		}
		return nil, err
	}
	if res.Mrs == nil {
		return nil, fmt.Errorf("scaip: SIP %d and no <mrs>", res.SIPStatus)
	}
	return res.Mrs, nil
}

// isNoMrs reports the sender's own "no <mrs> in time": the line worked.
func isNoMrs(err error) bool { return strings.Contains(err.Error(), "no <mrs>") }

// Close closes every centre's sender.
func (x *SIPSender) Close() error {
	x.mu.Lock()
	ss := x.senders
	x.senders, x.closed = nil, true
	x.mu.Unlock()
	for _, cs := range ss {
		_ = cs.s.Close()
	}
	return nil
}

// Stats sums the centres' senders' counters (tests and the benchmark).
func (x *SIPSender) Stats() scaipsip.SenderStats {
	x.mu.Lock()
	defer x.mu.Unlock()
	var t scaipsip.SenderStats
	for _, cs := range x.senders {
		s := cs.s.Stats()
		t.Sent += s.Sent
		t.Challenges += s.Challenges
		t.Unmatched += s.Unmatched
	}
	return t
}

// IsTLSRefused reports an error from a centre whose certificate Vaka does
// not trust (unknown CA, wrong name, expired) or that refused Vaka's own:
// no resend can mend it, so the hand-over goes on to the next tier at once.
func IsTLSRefused(err error) bool {
	var (
		ve  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		ae  tls.AlertError
		rhe tls.RecordHeaderError
	)
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) ||
		errors.As(err, &ae) || errors.As(err, &rhe)
}

// tlsConfig is the TLS towards the centre: verified against ca_file when
// set (a centre with a private CA), else the system's roots; with Vaka's
// client certificate when cert_file and key_file are set.
func (c *SCAIP) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("notify: scaip ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("notify: scaip ca_file %s: no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("notify: scaip cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// tlsReason is the short reason of a TLS refusal for the journal note and
// the next tier (no certificate contents, only what failed).
func tlsReason(err error) string {
	var (
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
		ae tls.AlertError
	)
	switch {
	case errors.As(err, &ua):
		return "the centre's certificate is not signed by the configured CA"
	case errors.As(err, &he):
		return "the centre's certificate is for another name"
	case errors.As(err, &ci):
		return "the centre's certificate is invalid or expired"
	case errors.As(err, &ae):
		return "the centre refused the handshake: " + ae.Error()
	}
	return "handshake failed"
}
