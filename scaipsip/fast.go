package scaipsip

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
)

// The fast path: the one request that comes at rate, a SIP MESSAGE over
// UDP straight from a unit, and the unit's answer to our <mrs>, are read
// here without sipgo's parser, which built a map and a dozen objects per
// message (~12 KB allocated, about a quarter of the receiver's own CPU at
// 1,000 messages/s). The parser is strict: it takes only the plain form
// those messages have (full header names, one Via, no folding, no Record-
// Route, a Content-Length that matches) and declines everything else,
// which then goes through sipgo exactly as before. Every field it returns
// is a slice of the datagram: nothing is kept past the read loop's turn
// unless copied. FuzzFastRequestAgrees checks it against sipgo's parser on
// the same bytes.

// fastReq is a MESSAGE request as the fast path reads it.
type fastReq struct {
	uri         []byte // Request-URI
	uriHost     []byte // its host part
	via         []byte // the Via value as sent
	viaHost     []byte
	viaPort     int // 0 when the Via names none
	branch      []byte
	rport       bool // ;rport without a value (RFC 3581: fill it in)
	rportAt     int  // offset in via just past "rport"
	from, to    []byte
	fromURI     []byte
	toURI       []byte
	toTag       bool
	callID      []byte
	cseq        uint32
	authz       []byte
	contentType []byte
	body        []byte
}

var (
	sipVersion   = []byte(" SIP/2.0\r\n")
	messageStart = []byte("MESSAGE ")
	crlf         = []byte("\r\n")
	viaProto     = []byte("SIP/2.0/UDP ")
)

// header indexes for duplicate detection
const (
	hVia = iota
	hFrom
	hTo
	hCallID
	hCSeq
	hAuthz
	hCType
	hCLen
	hCount
)

// parse reads data as a MESSAGE request; false declines it (sipgo then
// parses it), never an error of its own.
func (r *fastReq) parse(data []byte) bool {
	if !bytes.HasPrefix(data, messageStart) {
		return false
	}
	rest := data[len(messageStart):]
	i := bytes.Index(rest, sipVersion)
	if i <= 0 {
		return false
	}
	r.uri = rest[:i]
	host, ok := uriHost(r.uri)
	if !ok {
		return false
	}
	r.uriHost = host
	rest = rest[i+len(sipVersion):]
	var seen [hCount]bool
	clen := -1
	for {
		e := bytes.Index(rest, crlf)
		if e < 0 {
			return false
		}
		line := rest[:e]
		rest = rest[e+2:]
		if len(line) == 0 {
			break // end of headers
		}
		c := bytes.IndexByte(line, ':')
		if c <= 1 { // no name, or a compact (one-letter) name: sipgo's
			return false
		}
		name := line[:c]
		if !isToken(name) {
			return false
		}
		val := trimSP(line[c+1:])
		if !plainValue(val) {
			return false
		}
		var h int
		switch {
		case eqFold(name, "via"):
			h = hVia
		case eqFold(name, "from"):
			h = hFrom
		case eqFold(name, "to"):
			h = hTo
		case eqFold(name, "call-id"):
			h = hCallID
		case eqFold(name, "cseq"):
			h = hCSeq
		case eqFold(name, "authorization"):
			h = hAuthz
		case eqFold(name, "content-type"):
			h = hCType
		case eqFold(name, "content-length"):
			h = hCLen
		case eqFold(name, "max-forwards"):
			if len(val) == 0 || len(val) > 9 || !allDigits(val) {
				return false // sipgo refuses the message
			}
			continue
		case eqFold(name, "contact"):
			// Units send one (npm sip does); an answer to a MESSAGE
			// does not copy it, but sipgo parses it: it must read.
			if _, _, ok := addrURI(val); !ok {
				return false
			}
			continue
		case eqFold(name, "user-agent"), eqFold(name, "allow"),
			eqFold(name, "supported"), eqFold(name, "date"), eqFold(name, "expires"):
			continue // not used, and not copied into the answer
		default:
			// A header the answer might have to copy (Record-Route,
			// Timestamp …) or that sipgo reads specially: its parse.
			return false
		}
		if seen[h] {
			return false
		}
		seen[h] = true
		switch h {
		case hVia:
			if !r.parseVia(val, false) {
				return false
			}
		case hFrom:
			u, _, ok := addrURI(val)
			if !ok {
				return false
			}
			r.from, r.fromURI = val, u
		case hTo:
			u, tag, ok := addrURI(val)
			if !ok {
				return false
			}
			r.to, r.toURI, r.toTag = val, u, tag
		case hCallID:
			if len(val) == 0 || bytes.ContainsAny(val, " \t") {
				return false
			}
			r.callID = val
		case hCSeq:
			n, ok := bytes.CutSuffix(val, []byte(" MESSAGE"))
			if !ok || len(n) == 0 || len(n) > 9 || !allDigits(n) {
				return false
			}
			v, _ := strconv.ParseUint(string(n), 10, 32)
			r.cseq = uint32(v)
		case hAuthz:
			r.authz = val
		case hCType:
			if len(val) == 0 {
				return false // sipgo refuses the message
			}
			r.contentType = val
		case hCLen:
			if len(val) == 0 || len(val) > 6 || !allDigits(val) {
				return false
			}
			clen, _ = strconv.Atoi(string(val))
		}
	}
	if !seen[hVia] || !seen[hFrom] || !seen[hTo] || !seen[hCallID] || !seen[hCSeq] || clen != len(rest) {
		return false
	}
	r.body = rest
	return true
}

// parseVia takes "SIP/2.0/UDP host[:port];branch=…[;rport]…". In an
// answer (our own Via, come back) rport may have its value and received
// may be there.
func (r *fastReq) parseVia(v []byte, answer bool) bool {
	if !bytes.HasPrefix(v, viaProto) {
		return false
	}
	s := v[len(viaProto):]
	end := bytes.IndexByte(s, ';')
	if end < 0 {
		return false // no branch
	}
	hp := s[:end]
	host, port := hp, []byte(nil)
	if c := bytes.IndexByte(hp, ':'); c >= 0 {
		host, port = hp[:c], hp[c+1:]
		if len(port) == 0 || len(port) > 5 || !allDigits(port) {
			return false
		}
		p, _ := strconv.Atoi(string(port))
		if p == 0 || p > 65535 {
			return false
		}
		r.viaPort = p
	} else {
		r.viaPort = 0
	}
	if len(host) == 0 || !hostChars(host) {
		return false
	}
	r.viaHost = host
	r.branch, r.rport = nil, false
	off := len(viaProto) + end // at ';'
	params := s[end:]
	for len(params) > 0 {
		params = params[1:] // ';'
		off++
		n := bytes.IndexByte(params, ';')
		if n < 0 {
			n = len(params)
		}
		p := params[:n]
		// Parameter names as sipgo matches them: case-sensitive.
		k, val, hasVal := bytes.Cut(p, []byte("="))
		if len(k) == 0 || !isToken(k) || hasVal && (len(val) == 0 || !isToken(val)) {
			return false
		}
		switch {
		case string(k) == "branch":
			if r.branch != nil {
				return false
			}
			r.branch = val
		case answer:
		case string(k) == "rport":
			if r.rport || hasVal {
				return false // a unit names no rport value; a proxy's Via is sipgo's
			}
			r.rport = true
			r.rportAt = off + len(k)
		case string(k) == "received", string(k) == "maddr":
			return false
		}
		params = params[n:]
		off += n
	}
	r.via = v
	return len(r.branch) > 0
}

// addrURI reads a From or To value: `<uri>;params`, `name <uri>;params`
// or `uri;params`, and says whether a tag parameter is there.
func addrURI(v []byte) (uri []byte, tag, ok bool) {
	var params []byte
	if lt := bytes.IndexByte(v, '<'); lt >= 0 {
		for _, w := range bytes.Fields(v[:lt]) { // a display name of plain words
			if !isToken(w) {
				return nil, false, false
			}
		}
		gt := bytes.IndexByte(v, '>')
		if gt < lt {
			return nil, false, false
		}
		uri, params = v[lt+1:gt], v[gt+1:]
	} else {
		uri, params = v, nil
		if i := bytes.IndexByte(v, ';'); i >= 0 {
			uri, params = v[:i], v[i:]
		}
		if bytes.ContainsAny(uri, "?,") {
			return nil, false, false
		}
	}
	if _, ok := uriHost(uri); !ok {
		return nil, false, false
	}
	for len(params) > 0 {
		if params[0] != ';' {
			return nil, false, false
		}
		params = params[1:]
		n := bytes.IndexByte(params, ';')
		if n < 0 {
			n = len(params)
		}
		k, val, hasVal := bytes.Cut(params[:n], []byte("="))
		if len(k) == 0 || !isToken(k) || hasVal && (len(val) == 0 || !isToken(val)) {
			return nil, false, false
		}
		if string(k) == "tag" {
			if tag || !hasVal {
				return nil, false, false
			}
			tag = true
		}
		params = params[n:]
	}
	return uri, tag, true
}

// uriHost is the host of a plain sip: or sips: URI ("sip:user@host:port;
// params"), declining anything that is not that plain form.
func uriHost(u []byte) ([]byte, bool) {
	var s []byte
	switch {
	case bytes.HasPrefix(u, []byte("sip:")):
		s = u[4:]
	case bytes.HasPrefix(u, []byte("sips:")):
		s = u[5:]
	default:
		return nil, false
	}
	if len(s) == 0 || bytes.ContainsAny(s, "<>\" \t,[]?&%\\") {
		return nil, false
	}
	if at := bytes.IndexByte(s, '@'); at >= 0 {
		user, pass, _ := bytes.Cut(s[:at], []byte(":"))
		if !isToken(user) || len(pass) > 0 && !isToken(pass) {
			return nil, false
		}
		s = s[at+1:]
	}
	if e := bytes.IndexByte(s, ';'); e >= 0 {
		ps := s[e:]
		for len(ps) > 0 {
			ps = ps[1:]
			n := bytes.IndexByte(ps, ';')
			if n < 0 {
				n = len(ps)
			}
			k, v, hv := bytes.Cut(ps[:n], []byte("="))
			if !isToken(k) || hv && !isToken(v) {
				return nil, false
			}
			ps = ps[n:]
		}
		s = s[:e]
	}
	host := s
	if c := bytes.IndexByte(s, ':'); c >= 0 {
		host = s[:c]
		port := s[c+1:]
		if len(port) == 0 || len(port) > 5 || !allDigits(port) {
			return nil, false
		}
		if p, _ := strconv.Atoi(string(port)); p == 0 || p > 65535 {
			return nil, false
		}
	}
	if len(host) == 0 || !hostChars(host) {
		return nil, false
	}
	return host, true
}

// fastResp is the unit's answer to an <mrs>, as the fast path reads it.
type fastResp struct {
	status int
	branch []byte
}

// parse reads data as a response to a MESSAGE with one Via; false
// declines it.
func (r *fastResp) parse(data []byte) bool {
	if len(data) < 13 || string(data[:8]) != "SIP/2.0 " || !allDigits(data[8:11]) || data[11] != ' ' {
		return false
	}
	r.status, _ = strconv.Atoi(string(data[8:11]))
	if r.status < 100 || r.status > 699 {
		return false
	}
	e := bytes.Index(data, crlf)
	if e < 0 {
		return false
	}
	rest := data[e+2:]
	vias, cseqs, clen := 0, 0, -1
	for {
		e := bytes.Index(rest, crlf)
		if e < 0 {
			return false
		}
		line := rest[:e]
		rest = rest[e+2:]
		if len(line) == 0 {
			break
		}
		c := bytes.IndexByte(line, ':')
		if c <= 1 || !isToken(line[:c]) {
			return false
		}
		val := trimSP(line[c+1:])
		if !plainValue(val) {
			return false
		}
		switch name := line[:c]; {
		case eqFold(name, "via"):
			vias++
			var q fastReq
			if !q.parseVia(val, true) {
				return false
			}
			r.branch = q.branch
		case eqFold(name, "cseq"):
			cseqs++
			n, ok := bytes.CutSuffix(val, []byte(" MESSAGE"))
			if !ok || len(n) == 0 || len(n) > 9 || !allDigits(n) {
				return false
			}
		case eqFold(name, "content-length"):
			if !allDigits(val) || len(val) == 0 || len(val) > 6 {
				return false
			}
			if clen >= 0 {
				return false
			}
			clen, _ = strconv.Atoi(string(val))
		case eqFold(name, "from"), eqFold(name, "to"):
			if _, _, ok := addrURI(val); !ok {
				return false
			}
		case eqFold(name, "call-id"):
			if len(val) == 0 || bytes.ContainsAny(val, " \t") {
				return false
			}
		case eqFold(name, "server"), eqFold(name, "user-agent"), eqFold(name, "allow"),
			eqFold(name, "supported"), eqFold(name, "date"):
		default:
			return false // a header sipgo reads specially: its parse
		}
	}
	return vias == 1 && cseqs == 1 && (clen < 0 || clen == len(rest))
}

// appendResponse appends a final response to r: the request's Via (with
// rport and received filled in when asked, RFC 3581), From, To with the
// stable tag, Call-ID and CSeq, then extra headers, as sipgo's
// NewResponseFromRequest and Server.response build it.
func appendResponse(b []byte, r *fastReq, src netip.AddrPort, status int, reason, tag string, extra ...string) []byte {
	b = append(b, "SIP/2.0 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, reason...)
	b = append(b, "\r\nVia: "...)
	if r.rport {
		b = append(b, r.via[:r.rportAt]...)
		b = append(b, '=')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, r.via[r.rportAt:]...)
		b = append(b, ";received="...)
		b = src.Addr().Unmap().AppendTo(b)
	} else {
		b = append(b, r.via...)
	}
	b = append(b, "\r\nFrom: "...)
	b = append(b, r.from...)
	b = append(b, "\r\nTo: "...)
	b = append(b, r.to...)
	if !r.toTag {
		b = append(b, ";tag="...)
		b = append(b, tag...)
	}
	b = append(b, "\r\nCall-ID: "...)
	b = append(b, r.callID...)
	b = append(b, "\r\nCSeq: "...)
	b = strconv.AppendUint(b, uint64(r.cseq), 10)
	b = append(b, " MESSAGE\r\n"...)
	for i := 0; i+1 < len(extra); i += 2 {
		b = append(b, extra[i]...)
		b = append(b, ": "...)
		b = append(b, extra[i+1]...)
		b = append(b, "\r\n"...)
	}
	return append(b, "Content-Length: 0\r\n\r\n"...)
}

func trimSP(b []byte) []byte { return bytes.Trim(b, " \t") }

func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isToken: RFC 3261 token characters, non-empty.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hostChars: a host name or an IPv4 address (IPv6 references go to sipgo).
func hostChars(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// plainValue: printable ASCII and tabs only (UTF-8 display names, control
// bytes and anything odd go to sipgo).
func plainValue(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c >= 0x7f {
			return false
		}
	}
	return true
}
