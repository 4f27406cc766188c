package scaip

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tagRule says what one request tag may hold.
type tagRule struct {
	check func(v string) (string, error) // returns the normalised value
}

// Character sets and lengths per tag, as the standard sets them (our
// summary: /work/shared/scaip.md). Codes accept fewer digits than their
// width and are padded: units in the field send "27" for "0027".
var requestTags = map[string]tagRule{
	"ref": {alnum(1, 16)},
	"ver": {version},
	"sco": {digitRange(0, 3)},
	"cha": {digitRange(0, 1)},
	"mty": {oneOf("ME", "RE", "IN", "PI")},
	"hbo": {digitRange(0, 1)},
	"cid": {digits(1, 32, 0)},
	"dty": {digits(1, 4, 4)},
	"did": {printable(1, 16)},
	"dco": {digits(1, 4, 4)},
	"dte": {text(32)},
	"crd": {callerID},
	"stc": {digits(1, 4, 4)},
	"stt": {text(64)},
	"pri": {digitRange(0, 9)},
	"lco": {digits(1, 3, 3)},
	"lva": {printable(1, 32)},
	"lte": {text(64)},
	"ico": {digits(1, 4, 4)},
	"ite": {text(64)},
	"ame": {digits(1, 3, 0)},
}

var lgeTags = map[string]tagRule{
	"geo": {geoText},
	"tim": {timText},
	"gga": {ggaText},
}

// Parse reads one <mrq> body. A refusal is an *Error with the snu to
// answer; its Ref is set when the ref could be read.
func Parse(body []byte) (*Request, error) {
	r, err := parse(body)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = fail(InvalidFormat, "", "malformed XML")
		}
		if r != nil {
			e.Ref = r.Ref
		}
		return nil, e
	}
	return r, nil
}

func parse(body []byte) (*Request, error) {
	if r, ok := parseFast(body); ok {
		return r, nil
	}
	return parseFull(body)
}

// parseFull reads any <mrq> with encoding/xml, strictly.
func parseFull(body []byte) (*Request, error) {
	if len(body) > MaxBody {
		return nil, fail(TooLong, "", "body of %d bytes exceeds %d", len(body), MaxBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fail(InvalidFormat, "", "empty body")
	}
	if !utf8.Valid(body) {
		return nil, fail(InvalidFormat, "", "body is not UTF-8")
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	seen := map[string]bool{}
	r := &Request{}
	var set tagValues
	if err := rootElement(d, "mrq"); err != nil {
		return nil, err
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return r, xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if len(t.Attr) > 0 {
				return r, fail(InvalidFormat, name, "attributes are not allowed")
			}
			if seen[name] {
				return r, fail(InvalidFormat, name, "duplicate tag")
			}
			seen[name] = true
			if name == "lge" {
				p, err := readLge(d)
				if err != nil {
					return r, err
				}
				r.Lge = p
				continue
			}
			rule, ok := requestTags[name]
			if !ok {
				return r, fail(InvalidFormat, safeTag(name), "unknown tag")
			}
			raw, err := leafText(d, name)
			if err != nil {
				return r, err
			}
			v, err := rule.check(raw)
			if err != nil {
				return r, fail(WrongData, name, "%v", err)
			}
			set[tagIndex[name]] = v
			if name == "ref" {
				r.Ref = v
			}
		case xml.EndElement: // </mrq>: the decoder checked it matches
			if err := trailing(d); err != nil {
				return r, err
			}
			return r, fill(r, &set)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return r, fail(InvalidFormat, "mrq", "text outside a tag")
			}
		case xml.Comment:
		default:
			return r, fail(InvalidFormat, "mrq", "unexpected XML construct")
		}
	}
}

// fill copies the checked values into r and checks the mandatory tags.
func fill(r *Request, set *tagValues) error {
	if set[tRef] == "" {
		return fail(RefMissing, "ref", "missing")
	}
	r.Ver = set[tVer]
	if r.Ver == "" {
		r.Ver = "01.00"
	}
	r.Sco, r.Cha, r.Hbo = set[tSco], set[tCha], set[tHbo]
	r.Mty = MessageType(set[tMty])
	if r.Mty == "" {
		r.Mty = Message
	}
	r.Cid, r.Dty, r.Did, r.Dco, r.Dte = set[tCid], set[tDty], set[tDid], set[tDco], set[tDte]
	r.Crd, r.Stc, r.Stt = set[tCrd], set[tStc], set[tStt]
	if p := set[tPri]; p != "" {
		r.Pri = int(p[0] - '0')
	}
	r.Lco, r.Lva, r.Lte, r.Ico, r.Ite = set[tLco], set[tLva], set[tLte], set[tIco], set[tIte]
	if r.Cid == "" {
		return fail(MandatoryMiss, "cid", "missing")
	}
	if r.Dty == "" {
		return fail(MandatoryMiss, "dty", "missing")
	}
	if a := set[tAme]; a != "" {
		r.Ame, _ = strconv.Atoi(a)
		if r.Ame > 0 {
			// Reassembling split messages is not supported: say so
			// rather than act on a part.
			return fail(TooLong, "ame", "split messages are not supported; send at most %d bytes", SplitAt)
		}
	}
	return nil
}

// rootElement reads up to the root's start tag: only an XML declaration,
// comments and whitespace may come first; the root may carry a namespace.
func rootElement(d *xml.Decoder, want string) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return xmlError(err)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" {
				return fail(InvalidFormat, "", "unexpected processing instruction")
			}
		case xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fail(InvalidFormat, "", "text before the root element")
			}
		case xml.StartElement:
			if t.Name.Local != want {
				return fail(InvalidFormat, "", "root element must be <%s>", want)
			}
			for _, a := range t.Attr {
				if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
					return fail(InvalidFormat, want, "attributes are not allowed")
				}
			}
			return nil
		default:
			return fail(InvalidFormat, "", "unexpected XML construct before the root element")
		}
	}
}

// leafText reads a simple tag's text up to its end tag. A child element is
// wrong nesting.
func leafText(d *xml.Decoder, name string) (string, error) {
	var b []byte
	for {
		tok, err := d.Token()
		if err != nil {
			return "", xmlError(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(b)+len(t) > MaxBody {
				return "", fail(TooLong, name, "value too long")
			}
			b = append(b, t...)
		case xml.Comment:
		case xml.EndElement:
			return strings.TrimSpace(string(b)), nil
		case xml.StartElement:
			return "", fail(InvalidFormat, name, "wrongly nested: a tag inside <%s>", name)
		default:
			return "", fail(InvalidFormat, name, "unexpected XML construct")
		}
	}
}

func readLge(d *xml.Decoder) (*Position, error) {
	p := &Position{}
	seen := map[string]bool{}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			rule, ok := lgeTags[name]
			if !ok {
				return nil, fail(InvalidFormat, "lge", "unknown tag inside <lge>")
			}
			if len(t.Attr) > 0 {
				return nil, fail(InvalidFormat, name, "attributes are not allowed")
			}
			if seen[name] {
				return nil, fail(InvalidFormat, name, "duplicate tag")
			}
			seen[name] = true
			raw, err := leafText(d, name)
			if err != nil {
				return nil, err
			}
			v, err := rule.check(raw)
			if err != nil {
				return nil, fail(WrongData, name, "%v", err)
			}
			switch name {
			case "geo":
				p.Geo = v
			case "tim":
				p.Tim = v
			case "gga":
				p.GGA = v
			}
		case xml.EndElement:
			if len(seen) == 0 {
				return nil, fail(WrongData, "lge", "empty")
			}
			return p, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fail(InvalidFormat, "lge", "text outside a tag")
			}
		case xml.Comment:
		default:
			return nil, fail(InvalidFormat, "lge", "unexpected XML construct")
		}
	}
}

// trailing allows only whitespace and comments after the root.
func trailing(d *xml.Decoder) error {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return xmlError(err)
		}
		switch t := tok.(type) {
		case xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fail(InvalidFormat, "", "data after the root element")
			}
		default:
			return fail(InvalidFormat, "", "data after the root element")
		}
	}
}

// xmlError words a decoder error without quoting the input.
func xmlError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fail(InvalidFormat, "", "truncated XML")
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		if strings.Contains(se.Msg, "unexpected end element") || strings.Contains(se.Msg, "element <") {
			return fail(InvalidFormat, "", "wrongly nested XML at line %d", se.Line)
		}
		if strings.Contains(se.Msg, "unexpected EOF") {
			return fail(InvalidFormat, "", "truncated XML")
		}
		return fail(InvalidFormat, "", "malformed XML at line %d", se.Line)
	}
	return fail(InvalidFormat, "", "malformed XML")
}

// safeTag names an unknown tag in a reason only if it is short and plain.
func safeTag(name string) string {
	if len(name) > 16 {
		return ""
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return name
}

// ParseResponse reads an <mrs>. It is liberal, as the field notes ask: any
// root element carrying <ref> and <snu> (a proxy that renamed the root),
// unknown tags ignored. It still refuses what is not well-formed UTF-8 XML
// or is too large, and a missing ref or snu.
func ParseResponse(body []byte) (*Response, error) {
	if len(body) > MaxBody {
		return nil, fail(TooLong, "", "body of %d bytes exceeds %d", len(body), MaxBody)
	}
	if !utf8.Valid(body) {
		return nil, fail(InvalidFormat, "", "body is not UTF-8")
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	var root string
	vals := map[string]string{}
	depth := 0
	var cur string
	var text []byte
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				if root != "" {
					return nil, fail(InvalidFormat, "", "more than one root element")
				}
				root = t.Name.Local
			}
			cur, text = t.Name.Local, text[:0]
		case xml.CharData:
			if depth == 2 {
				text = append(text, t...)
			}
		case xml.EndElement:
			if depth == 2 {
				if _, dup := vals[cur]; !dup {
					vals[cur] = strings.TrimSpace(string(text))
				}
			}
			depth--
		}
	}
	if root == "" {
		return nil, fail(InvalidFormat, "", "no root element")
	}
	r := &Response{Ref: vals["ref"], Mre: -1}
	if r.Ref == "" {
		return nil, fail(RefMissing, "ref", "missing")
	}
	s, ok := vals["snu"]
	if !ok {
		return nil, fail(MandatoryMiss, "snu", "missing")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 99 {
		return nil, fail(WrongData, "snu", "not a number 0–99")
	}
	r.SNU = SNU(n)
	r.Ste, r.Cve, r.Cre, r.Tnu = vals["ste"], vals["cve"], vals["cre"], vals["tnu"]
	if v, ok := vals["mre"]; ok {
		if m, err := strconv.Atoi(v); err == nil && m >= 0 && m <= 3 {
			r.Mre = m
		}
	}
	if v, ok := vals["hbi"]; ok {
		if m, err := strconv.Atoi(v); err == nil && m >= 1 && m <= 1440 {
			r.Hbi = m
		}
	}
	return r, nil
}
