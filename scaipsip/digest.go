package scaipsip

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Digest authentication (RFC 2617, as SIP uses it in RFC 3261 §22): the
// receiver keeps only HA1 = MD5(username:realm:password) per account. Basic
// is refused, as SCAIP requires. Nonces are stateless (a time and an HMAC
// of it under a secret made at start), valid nonceTTL; with qop=auth the
// nonce count must grow, so a captured request cannot be replayed.

const nonceTTL = 5 * time.Minute

// digestParams are the fields of an Authorization: Digest header.
type digestParams map[string]string

// maxAuthHeader bounds the header parsed.
const maxAuthHeader = 2048

// parseDigest reads `Digest k=v, k="v", …`. It refuses anything else
// (Basic included) with an error that names no value.
func parseDigest(h string) (digestParams, error) {
	p, err := parseDigestParams(h)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"username", "realm", "nonce", "uri", "response"} {
		if p[k] == "" {
			return nil, errors.New("Digest parameter missing: " + k)
		}
	}
	return p, nil
}

// parseDigestParams reads the parameters of a Digest header: an
// Authorization or a WWW-Authenticate challenge.
func parseDigestParams(h string) (digestParams, error) {
	if len(h) > maxAuthHeader {
		return nil, errors.New("authorization header too long")
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Digest") {
		if strings.EqualFold(scheme, "Basic") {
			return nil, errBasic
		}
		return nil, errors.New("authorization is not Digest")
	}
	p := digestParams{}
	s := rest
	for len(p) < 16 {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, errors.New("malformed Digest parameters")
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, errors.New("unterminated quoted Digest parameter")
			}
			val, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if _, dup := p[key]; dup {
			return nil, errors.New("duplicate Digest parameter")
		}
		p[key] = val
	}
	return p, nil
}

var errBasic = errors.New("basic authentication is refused; use Digest")

// digestAuth checks credentials against HA1 hashes.
type digestAuth struct {
	realm    string
	ha1      map[string]string
	secret   [32]byte
	now      func() time.Time
	mu       sync.Mutex
	counts   map[string]*ncWindow // nonce → counts seen, this generation
	prev     map[string]*ncWindow // the generation before
	countsAt time.Time
}

func newDigestAuth(realm string, ha1 map[string]string, now func() time.Time) *digestAuth {
	d := &digestAuth{realm: realm, ha1: ha1, now: now, counts: map[string]*ncWindow{}}
	if _, err := rand.Read(d.secret[:]); err != nil {
		panic("scaipsip: no randomness for nonces: " + err.Error()) // crypto/rand never fails on Linux
	}
	return d
}

func (d *digestAuth) mac(ts string) string {
	m := hmac.New(sha256.New, d.secret[:])
	m.Write([]byte(ts))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// nonce makes a fresh nonce.
func (d *digestAuth) nonce() string {
	ts := strconv.FormatInt(d.now().UnixNano(), 36)
	return ts + "." + d.mac(ts)
}

// challenge is the WWW-Authenticate value; stale tells the client its
// credentials were right but the nonce expired.
func (d *digestAuth) challenge(stale bool) string {
	s := `Digest realm="` + d.realm + `", nonce="` + d.nonce() + `", algorithm=MD5, qop="auth"`
	if stale {
		s += ", stale=true"
	}
	return s
}

// Outcomes of a check, also metric labels.
const (
	authOK      = "ok"
	authMissing = "unauthenticated"
	authBasic   = "basic_refused"
	authBad     = "malformed_auth"
	authUnknown = "unknown_account"
	authWrong   = "wrong_digest"
	authStale   = "stale_nonce"
	authReplay  = "replayed_digest"
)

// check verifies an Authorization header for method; it returns the
// account and an outcome label. A nonce already in use (its counts kept)
// was ours when first seen: its HMAC is not checked again, only its age.
func (d *digestAuth) check(header, method string) (string, string) {
	if header == "" {
		return "", authMissing
	}
	var p authFields
	if err := p.parse(header); err != nil {
		if errors.Is(err, errBasic) {
			return "", authBasic
		}
		return "", authBad
	}
	user := p.username
	ha1, ok := d.ha1[user]
	if !ok || p.realm != d.realm {
		return "", authUnknown
	}
	if a := p.algorithm; a != "" && !strings.EqualFold(a, "MD5") {
		return "", authBad
	}
	ts, mac, ok := strings.Cut(p.nonce, ".")
	if !ok || !d.inUse(p.nonce) && subtle.ConstantTimeCompare([]byte(mac), []byte(d.mac(ts))) != 1 {
		return user, authStale // not ours (a restart made a new secret): challenge again
	}
	var ha2, want [32]byte
	md5HexInto(&ha2, method, ":", p.uri)
	var nc uint64
	switch p.qop {
	case "":
		md5HexInto(&want, ha1, ":", p.nonce, ":", string(ha2[:]))
	case "auth":
		n, err := strconv.ParseUint(p.nc, 16, 32)
		if err != nil || p.cnonce == "" || len(p.nc) != 8 {
			return user, authBad
		}
		nc = n
		md5HexInto(&want, ha1, ":", p.nonce, ":", p.nc, ":", p.cnonce, ":auth:", string(ha2[:]))
	default:
		return user, authBad
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(p.response)), want[:]) != 1 {
		return user, authWrong
	}
	n, err := strconv.ParseInt(ts, 36, 64)
	if err != nil || d.now().Sub(time.Unix(0, n)) > nonceTTL || d.now().Sub(time.Unix(0, n)) < -time.Minute {
		return user, authStale
	}
	if p.qop == "auth" && !d.countUp(p.nonce, nc) {
		return user, authReplay
	}
	return user, authOK
}

// inUse reports whether nonce has counts kept: countUp is reached only
// after the nonce's HMAC and a response made with it were checked.
func (d *digestAuth) inUse(nonce string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.counts[nonce] != nil {
		return true
	}
	return d.prev[nonce] != nil
}

// countUp records nc for nonce and reports whether it was unused. A unit
// may send several requests at once on one nonce and they may be handled
// out of order, so, like IPsec's anti-replay window, a count up to
// ncWindowSize below the highest seen is accepted once; older ones are
// refused. Two generations of nonceTTL each are kept: a nonce old enough
// to have left both is refused as stale before it gets here.
func (d *digestAuth) countUp(nonce string, nc uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := d.now(); now.Sub(d.countsAt) > nonceTTL {
		d.prev, d.counts = d.counts, map[string]*ncWindow{}
		d.countsAt = now
	}
	w := d.counts[nonce]
	if w == nil {
		if w = d.prev[nonce]; w == nil {
			w = &ncWindow{}
		}
		d.counts[nonce] = w
	}
	return w.use(nc)
}

const ncWindowSize = 1024

// ncWindow is the highest nonce count seen and a bitmap of the
// ncWindowSize counts below it.
type ncWindow struct {
	max  uint64
	seen [ncWindowSize / 64]uint64
}

func (w *ncWindow) use(nc uint64) bool {
	if nc == 0 {
		return false
	}
	if nc > w.max {
		shift := nc - w.max
		if shift >= ncWindowSize {
			w.seen = [ncWindowSize / 64]uint64{}
		} else {
			for i := w.max + 1; i <= nc; i++ {
				w.clear(i)
			}
		}
		w.max = nc
		w.set(nc)
		return true
	}
	if w.max-nc >= ncWindowSize || w.has(nc) {
		return false
	}
	w.set(nc)
	return true
}

func (w *ncWindow) bit(nc uint64) (int, uint64) {
	i := nc % ncWindowSize
	return int(i / 64), 1 << (i % 64)
}
func (w *ncWindow) set(nc uint64)      { i, m := w.bit(nc); w.seen[i] |= m }
func (w *ncWindow) clear(nc uint64)    { i, m := w.bit(nc); w.seen[i] &^= m }
func (w *ncWindow) has(nc uint64) bool { i, m := w.bit(nc); return w.seen[i]&m != 0 }

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
