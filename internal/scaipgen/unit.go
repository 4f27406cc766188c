// Package scaipgen is a minimal SIP alarm unit for load generators and
// benchmarks: it sends SCAIP <mrq> bodies as SIP MESSAGEs over UDP, signed
// with HTTP Digest (qop=auth), and answers the hub's <mrs> MESSAGEs with
// 200 OK.
//
// Why one package: the benchmark in service/ and the `vaka-load scaip`
// generator each had their own copy of this unit, and a fix to one (the
// nonce fetch, the 200's headers) had to be made twice. It is not a SIP
// stack: it keeps one nonce for its life and counts nc up as RFC 2617
// allows a unit to, never resends, and parses only the 401 and MESSAGE it
// expects. It shares the machine with the hub it measures, so it is kept
// cheap: what can be is worked out once, the rest appended into a buffer
// that is reused.
package scaipgen

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config says who the unit is and where it sends.
type Config struct {
	// Hub is the hub's SIP UDP address (host:port).
	Hub string
	// Account and Realm sign the messages; HA1 is the account's
	// MD5(username:realm:password), as the hub's config holds it.
	Account, Realm, HA1 string
	// Cid is the cid of the unsigned test transmission that fetches the
	// nonce (no alarm comes of it).
	Cid string
	// BranchPrefix and CallIDPrefix start each message's Via branch (after
	// z9hG4bK-) and Call-ID, so a capture tells the generators apart.
	BranchPrefix, CallIDPrefix string
}

// Unit is one alarm unit on its own connected UDP socket. Only one
// goroutine may call Send on a unit.
type Unit struct {
	conn  *net.UDPConn
	nonce string
	nc    int
	// Worked out once: the message up to the branch, the From header's
	// start, the Call-ID header's start, the Digest header's start.
	head, from, callID, auth string
	// The Request-URI, HA1 and HA2.
	uri, ha1, ha2 string
	buf           []byte
	challenge     chan string
	done          chan struct{}
}

// Dial opens the unit's socket and fetches the hub's nonce: one unsigned
// request, sent again every 200 ms until the hub's SIP listener challenges
// it (it may open after the HTTP listener), for at most 5 s.
func Dial(cfg Config) (*Unit, error) {
	ha, err := net.ResolveUDPAddr("udp", cfg.Hub)
	if err != nil {
		return nil, fmt.Errorf("scaipgen: %w", err)
	}
	c, err := net.DialUDP("udp", nil, ha)
	if err != nil {
		return nil, fmt.Errorf("scaipgen: %w", err)
	}
	_ = c.SetReadBuffer(4 << 20)
	uri := "sip:scaip@" + ha.String()
	u := &Unit{conn: c, uri: uri, ha1: cfg.HA1, ha2: md5hex("MESSAGE:" + uri),
		head:      "MESSAGE " + uri + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() + ";branch=z9hG4bK-" + cfg.BranchPrefix,
		from:      ";rport\r\nFrom: <sip:" + cfg.Account + "@127.0.0.1>;tag=t",
		callID:    "\r\nTo: <sip:scaip@127.0.0.1>\r\nCall-ID: " + cfg.CallIDPrefix + "-",
		auth:      "Authorization: Digest username=\"" + cfg.Account + "\", realm=\"" + cfg.Realm + "\", nonce=\"",
		challenge: make(chan string, 1), done: make(chan struct{})}
	go u.read()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for u.nonce == "" {
		if err := u.Send(0, "<mrq><ref>n0</ref><cid>"+cfg.Cid+"</cid><dty>0003</dty><stc>0102</stc></mrq>", false); err != nil {
			u.Close()
			return nil, err
		}
		select {
		case st := <-u.challenge:
			_, rest, _ := strings.Cut(st, `nonce="`)
			u.nonce, _, _ = strings.Cut(rest, `"`)
			if u.nonce == "" {
				u.Close()
				return nil, errors.New("scaipgen: the hub's challenge has no nonce")
			}
		case <-tick.C:
		case <-deadline:
			u.Close()
			return nil, errors.New("scaipgen: no Digest challenge from the hub within 5 s")
		}
	}
	return u, nil
}

// Close closes the socket and waits for the reader to end.
func (u *Unit) Close() {
	u.conn.Close()
	<-u.done
}

// Nonce is the nonce the hub challenged with.
func (u *Unit) Nonce() string { return u.nonce }

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// okHeaders are the headers a 200 copies from its request.
var okHeaders = [][]byte{[]byte("via:"), []byte("from:"), []byte("to:"), []byte("call-id:"), []byte("cseq:")}

func (u *Unit) read() {
	defer close(u.done)
	buf := make([]byte, 65536)
	var ok []byte
	for {
		n, err := u.conn.Read(buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue // an ICMP port unreachable: sent before the hub listened
		}
		if err != nil {
			return
		}
		msg := buf[:n]
		switch {
		case bytes.HasPrefix(msg, []byte("SIP/2.0 401")):
			select {
			case u.challenge <- string(msg):
			default:
			}
		case bytes.HasPrefix(msg, []byte("MESSAGE ")):
			// The hub's <mrs>: answer 200 so it does not resend.
			ok = append(ok[:0], "SIP/2.0 200 OK\r\n"...)
			for rest := msg; len(rest) > 0; {
				var line []byte
				line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
				if len(line) == 0 {
					break
				}
				for _, h := range okHeaders {
					if len(line) > len(h) && bytes.EqualFold(line[:len(h)], h) {
						ok = append(append(ok, line...), "\r\n"...)
					}
				}
			}
			ok = append(ok, "Content-Length: 0\r\n\r\n"...)
			_, _ = u.conn.Write(ok)
		}
	}
}

// Send writes one MESSAGE with body; i makes its branch, tag and Call-ID
// unique (with the time). sign adds a Digest response with the next nonce
// count.
func (u *Unit) Send(i int, body string, sign bool) error {
	now := time.Now().UnixNano()
	m := append(u.buf[:0], u.head...)
	m = strconv.AppendInt(m, now, 36)
	m = append(m, '-')
	m = strconv.AppendInt(m, int64(i), 10)
	m = append(m, u.from...)
	m = strconv.AppendInt(m, int64(i), 10)
	m = append(m, u.callID...)
	m = strconv.AppendInt(m, now, 36)
	m = append(m, '-')
	m = strconv.AppendInt(m, int64(i), 10)
	m = append(m, "\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"...)
	if sign {
		u.nc++
		nc := fmt.Sprintf("%08x", u.nc)
		resp := md5hex(u.ha1 + ":" + u.nonce + ":" + nc + ":c0ffee:auth:" + u.ha2)
		m = append(m, u.auth...)
		m = append(m, u.nonce...)
		m = append(m, "\", uri=\""...)
		m = append(m, u.uri...)
		m = append(m, "\", response=\""...)
		m = append(m, resp...)
		m = append(m, "\", algorithm=MD5, qop=auth, nc="...)
		m = append(m, nc...)
		m = append(m, ", cnonce=\"c0ffee\"\r\n"...)
	}
	m = append(m, "Content-Type: application/scaip+xml\r\nContent-Length: "...)
	m = strconv.AppendInt(m, int64(len(body)), 10)
	m = append(m, "\r\n\r\n"...)
	m = append(m, body...)
	u.buf = m
	if _, err := u.conn.Write(m); err != nil {
		return fmt.Errorf("scaipgen: %w", err)
	}
	return nil
}
