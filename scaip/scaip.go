// Package scaip reads and writes the XML of SCAIP (Social Care Alarm
// Internet Protocol, Swedish standard SS 91100:2014, carried on in
// CLC/TS 50134-9:2018): the <mrq> request an alarm unit sends and the <mrs>
// response a receiver answers with, and maps a request onto Vaka's
// canonical event.
//
// It is an adapter at the edge like trackers/: it imports only package
// event and the standard library. The SIP transport, the device registry
// and the durable acknowledgement live in the hub; this package only
// parses, checks and translates, and every refusal carries the SCAIP reply
// status (snu) to answer with and a reason that never quotes the message
// (which may hold a phone number or a position).
//
// Strict in what it accepts where the standard is (tags, lengths, character
// sets, one root, no duplicates), liberal where units in the field differ:
// codes may come without their leading zeros ("27" for "0027"), an XML
// declaration, comments, whitespace and a namespace attribute on the root
// are ignored, and ParseResponse takes any root element that carries
// <ref> and <snu>.
package scaip

import (
	"fmt"
	"strconv"
	"strings"
)

// ContentType is the SIP Content-Type of every SCAIP body.
const ContentType = "application/scaip+xml"

// MaxBody is the largest body accepted. The standard splits a message above
// 1,300 bytes; the margin is for an XML declaration and indentation, which
// cost nothing to accept. A larger body is answered snu 1 (too long).
const MaxBody = 2048

// SplitAt is where the standard splits a message into parts (<ame>).
const SplitAt = 1300

// SNU is the SCAIP reply status of a response.
type SNU int

// Reply statuses (SS 91100:2014, response status).
const (
	OK            SNU = 0
	TooLong       SNU = 1
	InvalidFormat SNU = 2
	WrongData     SNU = 3
	Hold          SNU = 4
	NotTreated    SNU = 5
	Busy          SNU = 6
	MandatoryMiss SNU = 7
	RefMissing    SNU = 10
	Undefined     SNU = 99
)

// Label is a short stable word for metrics.
func (s SNU) Label() string {
	switch s {
	case OK:
		return "ok"
	case TooLong:
		return "too_long"
	case InvalidFormat:
		return "invalid_format"
	case WrongData:
		return "wrong_data"
	case Hold:
		return "hold"
	case NotTreated:
		return "not_treated"
	case Busy:
		return "busy"
	case MandatoryMiss:
		return "mandatory_missing"
	case RefMissing:
		return "ref_missing"
	}
	return "undefined"
}

// MessageType is a request's mty.
type MessageType string

// Message types.
const (
	Message   MessageType = "ME" // an alarm or status message (the default)
	Reset     MessageType = "RE" // the sender aborts the event of this ref
	Info      MessageType = "IN" // new information on the event of this ref
	Heartbeat MessageType = "PI" // supervision of the line
)

// Error is a refused message: the snu to answer, the tag at fault and why.
// It never quotes the message's content.
type Error struct {
	SNU    SNU
	Tag    string
	Reason string
	// Ref is the request's ref when it could be read, so the answer can be
	// matched by the sender even for a refused message.
	Ref string
}

func (e *Error) Error() string {
	if e.Tag == "" {
		return "scaip: " + e.Reason
	}
	return fmt.Sprintf("scaip: <%s>: %s", e.Tag, e.Reason)
}

func fail(snu SNU, tag, format string, args ...any) *Error {
	return &Error{SNU: snu, Tag: tag, Reason: fmt.Sprintf(format, args...)}
}

// Position is the <lge> of a request: any of its three parts.
type Position struct {
	Geo string // "lat,lon" WGS-84, as sent
	Tim string // ISO 8601 with offset, as sent
	GGA string // an NMEA GGA sentence, as sent
}

// Request is a parsed <mrq>. Codes are normalised to the standard's width
// (dty, stc, ico and dco four digits, lco three); empty means absent.
type Request struct {
	Ref string
	Ver string // "01.00" when omitted
	Sco string
	Cha string // "1": callback requested
	Mty MessageType
	Hbo string // "1": the sender accepts a new heartbeat interval
	Cid string
	Dty string
	Did string
	Dco string
	Dte string
	Crd string
	Stc string
	Stt string
	Pri int // 0 when omitted
	Lco string
	Lva string
	Lte string
	Lge *Position
	Ico string
	Ite string
	Ame int // parts still to come; only 0 is supported
}

// CallbackRequested reports cha 1.
func (r *Request) CallbackRequested() bool { return r.Cha == "1" }

// AcceptsInterval reports hbo 1: the receiver may set hbi.
func (r *Request) AcceptsInterval() bool { return r.Hbo == "1" }

// Response is an <mrs>. Optional numeric tags are written only when set:
// Mre and Hbi use -1 and 0 for "absent" through their constructors' zero
// values (see NewResponse).
type Response struct {
	Ref string
	SNU SNU
	Ste string // status text, ASCII ≤ 128
	Cve string // version to use
	Mre int    // -1 absent, else 0 no voice … 3
	Cre string // callback answer 01–62
	Tnu string
	Hbi int // minutes 1–1440; 0 absent
}

// NewResponse is a response to ref with snu and no optional tags but mre 0
// (Vaka takes no voice).
func NewResponse(ref string, snu SNU) Response { return Response{Ref: ref, SNU: snu, Mre: 0} }

// Marshal writes the response strictly: only the standard's tags, in the
// standard's order, status text reduced to printable ASCII of at most 128
// characters.
func (r *Response) Marshal() []byte {
	var b strings.Builder
	b.Grow(96)
	b.WriteString("<mrs>")
	put := func(tag, v string) {
		b.WriteString("<" + tag + ">")
		b.WriteString(escape(v))
		b.WriteString("</" + tag + ">")
	}
	put("ref", r.Ref)
	put("snu", strconv.Itoa(int(r.SNU)))
	if r.Ste != "" {
		put("ste", asciiText(r.Ste, 128))
	}
	if r.Cve != "" {
		put("cve", r.Cve)
	}
	if r.Mre >= 0 && r.Mre <= 3 {
		put("mre", strconv.Itoa(r.Mre))
	}
	if r.Cre != "" {
		put("cre", r.Cre)
	}
	if r.Tnu != "" {
		put("tnu", r.Tnu)
	}
	if r.Hbi >= 1 && r.Hbi <= 1440 {
		put("hbi", strconv.Itoa(r.Hbi))
	}
	b.WriteString("</mrs>")
	return []byte(b.String())
}

// Marshal writes the request (for Vaka's own sender and `vaka scaip
// send`), only the tags that are set, in the order of the standard's table.
func (r *Request) Marshal() []byte { return r.appendMarshal(nil) }

// appendMarshal appends the request's XML to dst: EventID hashes it into
// a buffer on its stack for every message received, so no tag makes a
// string of its own.
func (r *Request) appendMarshal(b []byte) []byte {
	b = append(b, "<mrq>"...)
	put := func(tag, v string) {
		if v == "" {
			return
		}
		b = append(append(append(b, '<'), tag...), '>')
		b = appendEscaped(b, v)
		b = append(append(append(b, "</"...), tag...), '>')
	}
	put("ref", r.Ref)
	put("ver", r.Ver)
	put("sco", r.Sco)
	put("cha", r.Cha)
	if r.Mty != "" && r.Mty != Message {
		put("mty", string(r.Mty))
	}
	put("hbo", r.Hbo)
	put("cid", r.Cid)
	put("dty", r.Dty)
	put("did", r.Did)
	put("dco", r.Dco)
	put("dte", r.Dte)
	put("crd", r.Crd)
	put("stc", r.Stc)
	put("stt", r.Stt)
	if r.Pri != 0 {
		put("pri", strconv.Itoa(r.Pri))
	}
	put("lco", r.Lco)
	put("lva", r.Lva)
	put("lte", r.Lte)
	if p := r.Lge; p != nil && (p.Geo != "" || p.Tim != "" || p.GGA != "") {
		b = append(b, "<lge>"...)
		put("geo", p.Geo)
		put("tim", p.Tim)
		put("gga", p.GGA)
		b = append(b, "</lge>"...)
	}
	put("ico", r.Ico)
	put("ite", r.Ite)
	return append(b, "</mrq>"...)
}

// appendEscaped appends s with XML's five special characters escaped, as
// escape does.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\'':
			b = append(b, "&apos;"...)
		case '"':
			b = append(b, "&quot;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func escape(s string) string {
	if !strings.ContainsAny(s, "<>&'\"") {
		return s
	}
	return xmlEscaper.Replace(s)
}

// xmlEscaper is built once: a Replacer builds its lookup table (6.4 KB) on
// first use, which per refused message was most of the hub's garbage
// under a flood of malformed messages.
var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", "\"", "&quot;")

// asciiText keeps printable ASCII (replacing anything else by '?') and at
// most n characters.
func asciiText(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}
