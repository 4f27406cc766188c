package tillsyn

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Why supervision records encode themselves: a region's night journals
// 30,000 of them, most at three instants, and encoding/json (reflection,
// a MarshalJSON per time, a fresh buffer per record) was a fifth of a
// look-in's CPU and much of its garbage (BenchmarkTillsynRegionNight's
// profile). AppendJSON writes the bytes json.Marshal writes
// (TestAppendJSONMatchesMarshal and FuzzAppendJSON hold it to that); a
// record with a string it would have to escape (control characters, <, >,
// &, invalid UTF-8, U+2028/9) or a time outside what it covers reports
// false, and the caller uses encoding/json (EncodeJSON does both). The
// reader is encoding/json either way.

// AppendJSON appends r's JSON, as json.Marshal writes it, to dst and
// reports whether it could; on false dst is returned as it was given.
func AppendJSON(dst []byte, r *Record) ([]byte, bool) {
	start := len(dst)
	e := enc{b: dst, ok: true}
	e.raw(`{"site":`)
	e.str(r.Site)
	e.optStr(`,"unit":`, r.Unit)
	e.raw(`,"resident":`)
	e.str(r.Resident)
	e.raw(`,"night":`)
	e.str(r.Night)
	e.raw(`,"wall":`)
	e.str(r.Wall)
	e.raw(`,"planned":`)
	e.time(r.Planned)
	e.raw(`,"deadline":`)
	e.time(r.Deadline)
	if r.Replaces {
		e.raw(`,"replaces":true`)
	}
	e.optStr(`,"note":`, r.Note)
	e.raw(`,"at":`)
	e.time(r.At)
	e.raw(`,"outcome":`)
	e.str(string(r.Outcome))
	e.optStr(`,"cause":`, string(r.Cause))
	if len(r.Reasons) > 0 {
		e.raw(`,"reasons":[`)
		for i, s := range r.Reasons {
			if i > 0 {
				e.raw(",")
			}
			e.str(s)
		}
		e.raw("]")
	}
	e.raw(`,"evidence":`)
	if r.Evidence == nil {
		e.raw("null")
	} else {
		e.raw("[")
		for i := range r.Evidence {
			if i > 0 {
				e.raw(",")
			}
			e.evidence(&r.Evidence[i])
		}
		e.raw("]")
	}
	e.optStr(`,"led_to":`, r.LedTo)
	if !r.VisitBy.IsZero() {
		e.raw(`,"visit_by":`)
		e.time(r.VisitBy)
	}
	e.optStr(`,"alarm":`, r.Alarm)
	e.raw("}")
	if !e.ok {
		return dst[:start], false
	}
	return e.b, true
}

// EncodeJSON appends r's JSON to dst: AppendJSON when it can,
// encoding/json otherwise. The bytes are json.Marshal's either way.
func EncodeJSON(dst []byte, r *Record) ([]byte, error) {
	if b, ok := AppendJSON(dst, r); ok {
		return b, nil
	}
	body, err := json.Marshal(r)
	if err != nil {
		return dst, err
	}
	return append(dst, body...), nil
}

// enc appends JSON to b; once a value it does not cover is met, ok is
// false and the rest is skipped.
type enc struct {
	b  []byte
	ok bool
}

func (e *enc) raw(s string) { e.b = append(e.b, s...) }

func (e *enc) evidence(ev *Evidence) {
	e.raw(`{"device":`)
	e.str(ev.Device)
	e.raw(`,"role":`)
	e.str(string(ev.Role))
	e.raw(`,"said":`)
	e.str(ev.Said)
	if !ev.LastSeen.IsZero() {
		e.raw(`,"last_seen":`)
		e.time(ev.LastSeen)
	}
	if ev.Usable {
		e.raw(`,"usable":true`)
	} else {
		e.raw(`,"usable":false`)
	}
	e.optStr(`,"why":`, ev.Why)
	e.raw("}")
}

func (e *enc) optStr(key, s string) {
	if s == "" {
		return
	}
	e.raw(key)
	e.str(s)
}

// str quotes s as encoding/json does, for strings that need no escape
// but \" and \\: printable ASCII other than <, > and &, and valid UTF-8
// beyond ASCII other than U+2028 and U+2029. Anything else: not ok.
func (e *enc) str(s string) {
	if !e.ok {
		return
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			ascii = false
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			e.ok = false
			return
		}
	}
	if !ascii {
		if !utf8.ValidString(s) {
			e.ok = false
			return
		}
		for _, r := range s {
			if r == '\u2028' || r == '\u2029' {
				e.ok = false
				return
			}
		}
	}
	e.b = append(e.b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			e.b = append(e.b, '\\')
		}
		e.b = append(e.b, s[i])
	}
	e.b = append(e.b, '"')
}

// time writes t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds, quoted), for years 0–9999 and zone offsets of whole
// minutes under 24 hours; anything else (which MarshalJSON refuses or
// might write differently): not ok.
func (e *enc) time(t time.Time) {
	if !e.ok {
		return
	}
	if y := t.Year(); y < 0 || y > 9999 {
		e.ok = false
		return
	}
	if _, off := t.Zone(); off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		e.ok = false
		return
	}
	e.b = append(e.b, '"')
	e.b = t.AppendFormat(e.b, time.RFC3339Nano)
	e.b = append(e.b, '"')
}
