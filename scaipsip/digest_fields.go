package scaipsip

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"strings"
)

// authFields are the fields of an Authorization: Digest header the
// receiver checks, read by the same rules as parseDigest but without a
// map: the receiver reads one per message (FuzzAuthFieldsAgree checks the
// two readers agree on every header).
type authFields struct {
	username, realm, nonce, uri, response, algorithm, qop, nc, cnonce string
}

// parse reads h into f; its errors are parseDigest's.
func (f *authFields) parse(h string) error {
	if len(h) > maxAuthHeader {
		return errors.New("authorization header too long")
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Digest") {
		if strings.EqualFold(scheme, "Basic") {
			return errBasic
		}
		return errors.New("authorization is not Digest")
	}
	// The keys seen, for the duplicate rule and the 16-parameter bound
	// (lower-cased slices of h: strings.ToLower returns h's own bytes
	// when they are lower case already).
	var keys [16]string
	n := 0
	s := rest
	for n < len(keys) {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return errors.New("malformed Digest parameters")
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return errors.New("unterminated quoted Digest parameter")
			}
			val, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		for _, k := range keys[:n] {
			if k == key {
				return errors.New("duplicate Digest parameter")
			}
		}
		keys[n] = key
		n++
		switch key {
		case "username":
			f.username = val
		case "realm":
			f.realm = val
		case "nonce":
			f.nonce = val
		case "uri":
			f.uri = val
		case "response":
			f.response = val
		case "algorithm":
			f.algorithm = val
		case "qop":
			f.qop = val
		case "nc":
			f.nc = val
		case "cnonce":
			f.cnonce = val
		}
	}
	for _, m := range [...]struct{ v, name string }{{f.username, "username"}, {f.realm, "realm"}, {f.nonce, "nonce"},
		{f.uri, "uri"}, {f.response, "response"}} {
		if m.v == "" {
			return errors.New("Digest parameter missing: " + m.name)
		}
	}
	return nil
}

// md5HexInto writes the lower-case hex MD5 of the concatenated parts into
// dst, building the input on the stack when it fits.
func md5HexInto(dst *[32]byte, parts ...string) {
	var buf [512]byte
	b := buf[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	sum := md5.Sum(b)
	hex.Encode(dst[:], sum[:])
}
