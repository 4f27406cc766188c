package store

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vaka-care/vaka/alarm"
)

// Why the journal encodes transitions itself: encoding/json walks each
// record by reflection and formats every time through MarshalJSON, and
// that was the largest part of a care alarm's CPU on the hub's path after
// the stream (issue 20: a storm of 10,000 alarms a second on one core).
// appendTransition writes the same bytes json.Marshal would for the
// common records (TestAppendTransitionMatchesMarshal and
// FuzzAppendTransition hold it to that); a record it does not cover (a
// position, a group, a history, a string it would have to escape) returns
// false and is encoded by encoding/json as before. The reader is
// encoding/json either way.

// appendTransition appends t's JSON to dst and reports whether it could;
// on false dst is returned as it was given.
func appendTransition(dst []byte, t *alarm.Transition) ([]byte, bool) {
	if t.Pos != nil {
		return dst, false
	}
	start := len(dst)
	var ok bool
	b := append(dst, `{"seq":`...)
	b = strconv.AppendUint(b, t.Seq, 10)
	b = append(b, `,"alarm":`...)
	if b, ok = appendStr(b, t.Alarm); !ok {
		return dst[:start], false
	}
	b = append(b, `,"action":`...)
	if b, ok = appendStr(b, string(t.Action)); !ok {
		return dst[:start], false
	}
	b = append(b, `,"at":`...)
	if b, ok = appendTime(b, t.At); !ok {
		return dst[:start], false
	}
	fields := [...]struct {
		key, val string
	}{{`,"by":`, t.By}, {`,"outcome":`, string(t.Outcome)}, {`,"note":`, t.Note}, {`,"event_id":`, t.EventID}}
	for _, f := range fields {
		if f.val == "" {
			continue
		}
		b = append(b, f.key...)
		if b, ok = appendStr(b, f.val); !ok {
			return dst[:start], false
		}
	}
	if t.Raise != nil {
		b = append(b, `,"raise":`...)
		if b, ok = appendAlarm(b, t.Raise); !ok {
			return dst[:start], false
		}
	}
	if s := t.Subj; s != nil {
		b = append(b, `,"s":`...)
		if b, ok = appendSubject(b, s); !ok {
			return dst[:start], false
		}
	}
	if t.Tier != 0 {
		b = append(b, `,"tier":`...)
		b = strconv.AppendInt(b, int64(t.Tier), 10)
	}
	if t.Receiver != "" {
		b = append(b, `,"receiver":`...)
		if b, ok = appendStr(b, t.Receiver); !ok {
			return dst[:start], false
		}
	}
	if len(t.To) > 0 {
		b = append(b, `,"to":[`...)
		for i, s := range t.To {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendStr(b, s); !ok {
				return dst[:start], false
			}
		}
		b = append(b, ']')
	}
	tail := [...]struct {
		key, val string
	}{{`,"phone":`, t.Phone}, {`,"channel":`, t.Channel}, {`,"from":`, t.From}}
	for _, f := range tail {
		if f.val == "" {
			continue
		}
		b = append(b, f.key...)
		if b, ok = appendStr(b, f.val); !ok {
			return dst[:start], false
		}
	}
	return append(b, '}'), true
}

// appendSubject writes alarm.Subject as encoding/json does.
func appendSubject(b []byte, s *alarm.Subject) ([]byte, bool) {
	var ok bool
	b = append(b, `{"k":`...)
	if b, ok = appendStr(b, string(s.Kind)); !ok {
		return b, false
	}
	b = append(b, `,"r":`...)
	if b, ok = appendStr(b, s.Rule); !ok {
		return b, false
	}
	b = append(b, `,"p":`...)
	b = strconv.AppendInt(b, int64(s.Priority), 10)
	b = append(b, `,"s":`...)
	if b, ok = appendStr(b, s.Site); !ok {
		return b, false
	}
	opt := [...]struct {
		key, val string
	}{{`,"g":`, s.Gateway}, {`,"d":`, s.Device}, {`,"t":`, string(s.DeviceType)}, {`,"c":`, string(s.Status)},
		{`,"u":`, s.Unit}, {`,"m":`, s.Room}, {`,"x":`, s.Resident}}
	for _, f := range opt {
		if f.val == "" {
			continue
		}
		b = append(b, f.key...)
		if b, ok = appendStr(b, f.val); !ok {
			return b, false
		}
	}
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, s.RaisedAt, 10)
	return append(b, '}'), true
}

// appendAlarm writes a raise's alarm as encoding/json does, for an alarm
// as the hub raises it: no position, track, receipts, history or group
// (any of those: false, and the caller uses encoding/json).
func appendAlarm(b []byte, a *alarm.Alarm) ([]byte, bool) {
	if a.Position() != nil || len(a.Track()) > 0 || len(a.Deliveries) > 0 || len(a.History()) > 0 || a.Group() != nil {
		return b, false
	}
	var ok bool
	str := func(key, val string, omit bool) {
		if !ok || omit && val == "" {
			return
		}
		b = append(b, key...)
		b, ok = appendStr(b, val)
	}
	tm := func(key string, t time.Time) {
		if !ok {
			return
		}
		b = append(b, key...)
		b, ok = appendTime(b, t)
	}
	ptm := func(key string, t *time.Time) {
		if t != nil {
			tm(key, *t)
		}
	}
	num := func(key string, n int) {
		b = append(b, key...)
		b = strconv.AppendInt(b, int64(n), 10)
	}
	ok = true
	b = append(b, '{')
	str(`"id":`, a.ID, false)
	str(`,"kind":`, string(a.Kind), false)
	str(`,"rule":`, a.Rule, false)
	num(`,"priority":`, int(a.Priority))
	str(`,"site":`, a.Site, false)
	str(`,"gateway":`, a.Gateway, true)
	str(`,"device":`, a.Device, true)
	str(`,"dty":`, string(a.DeviceType), true)
	str(`,"stc":`, string(a.Status), true)
	str(`,"lco":`, string(a.Location), true)
	str(`,"unit":`, a.Unit, true)
	str(`,"room":`, a.Room, true)
	str(`,"resident":`, a.Resident, true)
	str(`,"resident_name":`, a.ResidentName(), true)
	str(`,"event_id":`, a.EventID, true)
	tm(`,"source_time":`, a.SourceTime)
	tm(`,"raised_at":`, a.RaisedAt)
	str(`,"state":`, string(a.State), false)
	str(`,"accepted_by":`, a.AcceptedBy(), true)
	ptm(`,"accepted_at":`, a.AcceptedAt())
	ptm(`,"presence_at":`, a.PresenceAt())
	str(`,"resolved_by":`, a.ResolvedBy(), true)
	ptm(`,"resolved_at":`, a.ResolvedAt())
	str(`,"outcome":`, string(a.Outcome()), true)
	str(`,"note":`, a.Note, true)
	num(`,"repeats":`, a.Repeats())
	ptm(`,"last_repeat_at":`, a.LastRepeatAt())
	ptm(`,"restored_at":`, a.RestoredAt())
	if a.Tier() != 0 {
		num(`,"tier":`, a.Tier())
	}
	if a.Reminders() != 0 {
		num(`,"reminders":`, a.Reminders())
	}
	tm(`,"updated_at":`, a.UpdatedAt)
	str(`,"crd":`, a.CallerID(), true)
	str(`,"cha":`, a.Callback(), true)
	str(`,"group_id":`, a.GroupID(), true)
	if a.HistoryOmitted() != 0 {
		num(`,"history_omitted":`, a.HistoryOmitted())
	}
	if !ok {
		return b, false
	}
	return append(b, '}'), true
}

// appendStr quotes s as encoding/json does, for strings of printable
// ASCII that need no escape but \" and \\, and valid UTF-8 beyond ASCII
// other than U+2028 and U+2029; anything else (control characters, <, >,
// &, invalid UTF-8) is left to encoding/json (false).
func appendStr(b []byte, s string) ([]byte, bool) {
	// One pass, plain runs copied whole: it was a scan, then an append per
	// byte (about 1 µs of a care alarm's journal record).
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainJSON[c] {
				i++
				continue
			}
			if c != '"' && c != '\\' {
				return b, false // a control byte or <, >, &: encoding/json's
			}
			b = append(b, s[start:i]...)
			b = append(b, '\\', c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			return b, false
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}

// plainJSON[c] says whether encoding/json writes the ASCII byte c as itself
// in a string (HTML-safe).
var plainJSON = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendTime writes t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds, quoted); the years and zones it refuses or might write
// differently are left to encoding/json (false).
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off%60 != 0 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// encodeTransition appends t's JSON to dst: appendTransition when it can,
// encoding/json otherwise.
func encodeTransition(dst []byte, t *alarm.Transition) ([]byte, error) {
	if b, ok := appendTransition(dst, t); ok {
		return b, nil
	}
	body, err := json.Marshal(t)
	if err != nil {
		return dst, err
	}
	return append(dst, body...), nil
}

// AppendTransitionJSON appends t's JSON to dst, the same bytes as
// json.Marshal(t), through the journal's own encoder where it can: the
// replicated journal (package cluster) writes the same records.
func AppendTransitionJSON(dst []byte, t *alarm.Transition) ([]byte, error) {
	return encodeTransition(dst, t)
}
