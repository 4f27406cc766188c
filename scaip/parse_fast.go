package scaip

import (
	"bytes"
	"strings"
)

// The plain form: what nearly every unit sends, and what one request in
// the hub's receive path costs most in encoding/xml (a decoder, a token
// and a string per tag: about 1.8 KB and 10–15 µs a request). parseFast
// reads only that form:
//
//	<mrq><tag>text</tag>…</mrq>
//
// with the request's own lower-case tags, each at most once, no
// attributes, no <lge>, no declaration, comment or namespace, text of
// printable ASCII, tab or newline without '&', '<', '>' or '\r', and
// space, tab or newline between tags. That is well-formed XML whose
// meaning has no entity, line-end or whitespace rule left to apply, so
// the values are the ones encoding/xml would give. Anything else, and any
// request it would refuse, goes to the full parser, which decides (and
// words the refusal) as before: FuzzParseFastAgrees checks that whatever
// parseFast accepts, the full parser accepts identically.

// Tag indexes into tagValues, in requestTags' order.
const (
	tRef = iota
	tVer
	tSco
	tCha
	tMty
	tHbo
	tCid
	tDty
	tDid
	tDco
	tDte
	tCrd
	tStc
	tStt
	tPri
	tLco
	tLva
	tLte
	tIco
	tIte
	tAme
	nTags
)

// tagValues holds a request's checked values by tag index ("" unset).
type tagValues [nTags]string

var tagNames = [nTags]string{"ref", "ver", "sco", "cha", "mty", "hbo", "cid", "dty", "did", "dco", "dte", "crd",
	"stc", "stt", "pri", "lco", "lva", "lte", "ico", "ite", "ame"}

// tagIndex and tagRules are requestTags by index.
var (
	tagIndex = map[string]int{}
	tagRules [nTags]tagRule
)

func init() {
	if len(requestTags) != nTags {
		panic("scaip: tagNames and requestTags differ")
	}
	for i, n := range tagNames {
		rule, ok := requestTags[n]
		if !ok {
			panic("scaip: tag " + n + " has no rule")
		}
		tagIndex[n], tagRules[i] = i, rule
	}
}

// parseFast parses a request in the plain form; ok is false for anything
// else and for any request that would be refused (the full parser then
// decides).
func parseFast(b []byte) (r *Request, ok bool) {
	if len(b) > MaxBody {
		return nil, false
	}
	i := skipPlainSpace(b, 0)
	if !bytes.HasPrefix(b[i:], []byte("<mrq>")) {
		return nil, false
	}
	i += len("<mrq>")
	var vals tagValues
	var seen uint32
	for {
		i = skipPlainSpace(b, i)
		if i >= len(b) || b[i] != '<' {
			return nil, false
		}
		if bytes.HasPrefix(b[i:], []byte("</mrq>")) {
			if skipPlainSpace(b, i+len("</mrq>")) != len(b) {
				return nil, false
			}
			break
		}
		j := i + 1
		for j < len(b) && b[j] >= 'a' && b[j] <= 'z' {
			j++
		}
		if j == i+1 || j >= len(b) || b[j] != '>' {
			return nil, false
		}
		name := b[i+1 : j]
		k, known := tagIndex[string(name)]
		if !known || seen&(1<<k) != 0 {
			return nil, false
		}
		seen |= 1 << k
		start := j + 1
		end := start
		for ; end < len(b) && b[end] != '<'; end++ {
			if c := b[end]; c >= 0x7f || c == '&' || c == '>' || c < 0x20 && c != '\t' && c != '\n' {
				return nil, false
			}
		}
		// The end tag: "</" name ">".
		close := end + 2 + len(name)
		if close >= len(b) || b[end+1] != '/' || !bytes.Equal(b[end+2:close], name) || b[close] != '>' {
			return nil, false
		}
		v, err := tagRules[k].check(strings.TrimSpace(string(b[start:end])))
		if err != nil {
			return nil, false
		}
		vals[k] = v
		i = close + 1
	}
	r = &Request{Ref: vals[tRef]}
	if fill(r, &vals) != nil {
		return nil, false
	}
	return r, true
}

// skipPlainSpace skips spaces, tabs and newlines from i.
func skipPlainSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n') {
		i++
	}
	return i
}
