package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// Why a hand-written encoder: in an all-alarm storm every alarm is one
// frame per viewer class, and json.Marshal of the alarm view (reflection,
// the history expanded into Transitions, where and access) was an eighth
// of the hub's CPU and about 2 KB of garbage per alarm. appendAlarmJSON
// writes the same bytes json.Marshal writes for the view (where.go's view
// decides what a class sees), into a reused buffer, and reads an alarm
// snapshot's compact history directly (alarm.Snapshot). Whatever it does
// not handle (a value json.Marshal would refuse, a history entry carrying
// a raise or a subject) it leaves to json.Marshal, counted in
// frameFallbacks; TestFrameEncoderMatchesMarshal and FuzzFrameEncoder keep
// the two byte-for-byte equal.

// frameFallbacks counts frames the hand-written encoder left to
// json.Marshal (FrameFallbacks).
var frameFallbacks atomic.Uint64

// FrameFallbacks is how many stream frames were encoded by json.Marshal
// because the hand-written encoder does not handle them (none, for alarms
// the hub makes).
func FrameFallbacks() uint64 { return frameFallbacks.Load() }

// FrameFallbackCollector exports FrameFallbacks for /metrics: a frame the
// encoder did not handle still goes out (by json.Marshal) but costs more,
// and a count above zero means an alarm carries something the encoder
// should learn.
func FrameFallbackCollector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vaka_stream_frame_fallbacks_total",
		Help: "Staff stream frames encoded by json.Marshal because the hand-written frame encoder does not handle the alarm (still sent).",
	}, func() float64 { return float64(frameFallbacks.Load()) })
}

// frameBufs are reused encoding buffers.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// frameBlock is the size of the blocks frames are carved from; a frame
// larger than frameBlockMax gets an allocation of its own.
const (
	frameBlock    = 16 << 10
	frameBlockMax = 4 << 10
)

// frameArena hands out the memory of encoded frames from shared blocks:
// in an all-alarm storm every alarm is a frame of about 850 bytes per
// viewer class, and one allocation per frame was one more object for the
// GC per alarm. Each viewer class has its own arena, so its frames sit in
// its blocks in the order its frame cache keeps and evicts them: a block
// is freed when its last frame leaves the cache, about as soon as the
// frames would have been, and a cache pins at most one block more than
// its frames fill. A frame is never written to after it is handed out,
// and its capacity ends at its length, so an append to it copies.
type frameArena struct {
	mu  sync.Mutex
	cur []byte
}

// frameMem is one arena per viewer class (alarmFrame's c).
var frameMem [viewClasses]frameArena

// copy returns a copy of b that no one else uses.
func (fa *frameArena) copy(b []byte) []byte {
	if len(b) > frameBlockMax {
		return bytes.Clone(b)
	}
	fa.mu.Lock()
	if cap(fa.cur)-len(fa.cur) < len(b) {
		fa.cur = make([]byte, 0, frameBlock)
	}
	n := len(fa.cur)
	fa.cur = append(fa.cur, b...)
	out := fa.cur[n:len(fa.cur):len(fa.cur)]
	fa.mu.Unlock()
	return out
}

// alarmFrame returns a's SSE frame as a viewer of class c sees it,
// "event: alarm\ndata: <json>\n\n", in memory of its own (frameArena).
func (s *server) alarmFrame(a *alarm.Alarm, c int) ([]byte, error) {
	bp := frameBufs.Get().(*[]byte)
	b := append((*bp)[:0], "event: alarm\ndata: "...)
	b, ok := s.appendView(b, a, c)
	if !ok {
		frameBufs.Put(bp)
		frameFallbacks.Add(1)
		return encodeFrame(s.view(listed(a), c))
	}
	b = append(b, "\n\n"...)
	out := frameMem[c].copy(b)
	if cap(b) <= 1<<20 { // do not keep one huge frame's buffer
		*bp = b
		frameBufs.Put(bp)
	}
	return out, nil
}

// appendView appends the JSON of s.view(a, c) to b; false: it does not
// handle a and the caller must use json.Marshal.
func (s *server) appendView(b []byte, a *alarm.Alarm, c int) ([]byte, bool) {
	name, callerID := a.ResidentName(), a.CallerID()
	if c&viewNamed != 0 {
		if a.Resident != "" && s.o.ResidentName != nil {
			if n := s.o.ResidentName(a.Site, a.Resident); n != "" {
				name = n
			}
		}
	} else {
		callerID = "" // the name rule (where.go: view)
	}
	var w *Where
	var acc *AccessInfo
	if s.o.Where != nil {
		w = s.o.Where(a, c != 0)
	}
	if c&viewAccess != 0 && s.o.Access != nil {
		acc = s.o.Access(a)
	}
	e := jsonAppender{b: b}
	e.alarm(a, name, callerID, w, acc)
	return e.b, e.ok()
}

// jsonAppender appends JSON as encoding/json does (HTML-safe strings,
// its float format, RFC 3339 times); bad is set on anything it cannot
// write identically.
type jsonAppender struct {
	b   []byte
	bad bool
}

func (e *jsonAppender) ok() bool { return !e.bad }

// elem starts element i of an array.
func (e *jsonAppender) elem(i int) {
	if i == 0 {
		e.b = append(e.b, '[')
	} else {
		e.b = append(e.b, ',')
	}
}

func (e *jsonAppender) key(k string) {
	e.b = append(e.b, ',', '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
}

func (e *jsonAppender) firstKey(k string) {
	e.b = append(e.b, '{', '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
}

func (e *jsonAppender) strField(k, v string) {
	e.key(k)
	e.str(v)
}

func (e *jsonAppender) strOmit(k, v string) {
	if v != "" {
		e.strField(k, v)
	}
}

func (e *jsonAppender) intField(k string, v int64) {
	e.key(k)
	e.b = strconv.AppendInt(e.b, v, 10)
}

func (e *jsonAppender) intOmit(k string, v int64) {
	if v != 0 {
		e.intField(k, v)
	}
}

func (e *jsonAppender) timeField(k string, t time.Time) {
	e.key(k)
	e.time(t)
}

func (e *jsonAppender) timePtr(k string, t *time.Time) {
	if t != nil {
		e.timeField(k, *t)
	}
}

func (e *jsonAppender) time(t time.Time) {
	e.b = append(e.b, '"')
	b, err := t.AppendText(e.b) // what Time.MarshalJSON writes, unquoted
	if err != nil {
		e.bad = true
		return
	}
	e.b = append(b, '"')
}

func (e *jsonAppender) float(f float64) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		e.bad = true
		return
	}
	// encoding/json: plain notation, except exponents for very small and
	// very large magnitudes, with a one-digit negative exponent as e-7.
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	e.b = strconv.AppendFloat(e.b, f, format, -1, 64)
	if format == 'e' {
		n := len(e.b)
		if n >= 4 && e.b[n-4] == 'e' && e.b[n-3] == '-' && e.b[n-2] == '0' {
			e.b[n-2] = e.b[n-1]
			e.b = e.b[:n-1]
		}
	}
}

const hexDigits = "0123456789abcdef"

// str appends s quoted as encoding/json does by default: <, > and & as
// \u003c…, U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
func (e *jsonAppender) str(s string) {
	b := append(e.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	e.b = append(b, '"')
}

// jsonPlain[c] says whether encoding/json writes the ASCII byte c as
// itself in a string (HTML-safe): one load per byte on the stream's hot
// path instead of six comparisons.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// alarm appends the alarm with the view's name and caller id, then where
// and access: the field order of alarm.Alarm and alarmView.
func (e *jsonAppender) alarm(a *alarm.Alarm, name, callerID string, w *Where, acc *AccessInfo) {
	e.firstKey("id")
	e.str(a.ID)
	e.strField("kind", string(a.Kind))
	e.strField("rule", a.Rule)
	e.intField("priority", int64(a.Priority))
	e.strField("site", a.Site)
	e.strOmit("gateway", a.Gateway)
	e.strOmit("device", a.Device)
	e.strOmit("dty", string(a.DeviceType))
	e.strOmit("stc", string(a.Status))
	e.strOmit("lco", string(a.Location))
	e.strOmit("unit", a.Unit)
	e.strOmit("room", a.Room)
	e.strOmit("resident", a.Resident)
	e.strOmit("resident_name", name)
	e.strOmit("event_id", a.EventID)
	e.timeField("source_time", a.SourceTime)
	e.timeField("raised_at", a.RaisedAt)
	e.strField("state", string(a.State))
	e.strOmit("accepted_by", a.AcceptedBy())
	e.timePtr("accepted_at", a.AcceptedAt())
	e.timePtr("presence_at", a.PresenceAt())
	e.strOmit("resolved_by", a.ResolvedBy())
	e.timePtr("resolved_at", a.ResolvedAt())
	e.strOmit("outcome", string(a.Outcome()))
	e.strOmit("note", a.Note)
	e.intField("repeats", int64(a.Repeats()))
	e.timePtr("last_repeat_at", a.LastRepeatAt())
	e.timePtr("restored_at", a.RestoredAt())
	if a.Position() != nil {
		e.key("pos")
		e.position(a.Position())
	}
	if len(a.Track()) > 0 {
		e.key("track")
		for i := range a.Track() {
			e.elem(i)
			e.position(&a.Track()[i])
		}
		e.b = append(e.b, ']')
	}
	e.intOmit("tier", int64(a.Tier()))
	if len(a.Deliveries) > 0 {
		e.key("deliveries")
		for i := range a.Deliveries {
			e.elem(i)
			d := &a.Deliveries[i]
			e.firstKey("user")
			e.str(d.User)
			e.strOmit("phone", d.Phone)
			e.timeField("at", d.At)
			e.intField("tier", int64(d.Tier))
			e.strOmit("channel", d.Channel)
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	e.intOmit("reminders", int64(a.Reminders()))
	e.timeField("updated_at", a.UpdatedAt)
	if n := a.HistoryLen(); n > 0 {
		e.key("history")
		for i := range n {
			e.elem(i)
			t := a.HistoryEntry(i)
			e.transition(&t)
		}
		e.b = append(e.b, ']')
	}
	e.strOmit("crd", callerID)
	e.strOmit("cha", a.Callback())
	if a.Group() != nil {
		e.key("group")
		e.group(a.Group())
	}
	e.strOmit("group_id", a.GroupID())
	e.intOmit("history_omitted", int64(a.HistoryOmittedCount()))
	if w != nil {
		e.key("where")
		e.where(w)
	}
	if acc != nil {
		e.key("access")
		e.b = append(e.b, '{')
		n := len(e.b)
		e.strOmit("key_box", acc.KeyBox)
		e.strOmit("door_code", acc.DoorCode)
		e.strOmit("note", acc.Note)
		e.closeObject(n)
	}
	e.b = append(e.b, '}')
}

// closeObject ends an object opened with '{' whose fields (from n on)
// were written each with a leading comma: the first comma goes.
func (e *jsonAppender) closeObject(n int) {
	if len(e.b) > n {
		e.b = slices.Delete(e.b, n, n+1)
	}
	e.b = append(e.b, '}')
}

func (e *jsonAppender) position(p *event.Position) {
	e.firstKey("lat")
	e.float(p.Lat)
	e.key("lon")
	e.float(p.Lon)
	if p.Accuracy != 0 {
		e.key("acc")
		e.float(p.Accuracy)
	}
	if p.Invalid {
		e.key("invalid")
		e.b = append(e.b, "true"...)
	}
	e.timePtr("last_known", p.LastKnown)
	e.b = append(e.b, '}')
}

func (e *jsonAppender) transition(t *alarm.Transition) {
	if t.Raise != nil || t.Subj != nil {
		e.bad = true // never in an alarm's history; json.Marshal writes them
		return
	}
	e.firstKey("seq")
	e.b = strconv.AppendUint(e.b, t.Seq, 10)
	e.strField("alarm", t.Alarm)
	e.strField("action", string(t.Action))
	e.timeField("at", t.At)
	e.strOmit("by", t.By)
	e.strOmit("outcome", string(t.Outcome))
	e.strOmit("note", t.Note)
	e.strOmit("event_id", t.EventID)
	if t.Pos != nil {
		e.key("pos")
		e.position(t.Pos)
	}
	e.intOmit("tier", int64(t.Tier))
	e.strOmit("receiver", t.Receiver)
	if len(t.To) > 0 {
		e.key("to")
		for i, s := range t.To {
			e.elem(i)
			e.str(s)
		}
		e.b = append(e.b, ']')
	}
	e.strOmit("phone", t.Phone)
	e.strOmit("channel", t.Channel)
	e.strOmit("from", t.From)
	e.b = append(e.b, '}')
}

func (e *jsonAppender) group(g *alarm.Group) {
	e.firstKey("key")
	e.str(g.Key)
	if len(g.By) > 0 {
		e.key("by")
		keys := make([]string, 0, len(g.By)) // group alarms only: rare
		for k := range g.By {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i == 0 {
				e.b = append(e.b, '{')
			} else {
				e.b = append(e.b, ',')
			}
			e.str(k)
			e.b = append(e.b, ':')
			e.str(g.By[k])
		}
		e.b = append(e.b, '}')
	}
	e.intField("count", int64(g.Count))
	e.key("members")
	if g.Members == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i := range g.Members {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			m := &g.Members[i]
			e.firstKey("alarm")
			e.str(m.Alarm)
			e.strField("rule", m.Rule)
			e.strOmit("device", m.Device)
			e.strOmit("gateway", m.Gateway)
			e.timeField("since", m.Since)
			e.timePtr("restored_at", m.Restored)
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, '}')
}

func (e *jsonAppender) where(w *Where) {
	e.b = append(e.b, '{')
	n := len(e.b)
	e.strOmit("site_name", w.SiteName)
	e.strOmit("unit_name", w.UnitName)
	e.strOmit("room_name", w.RoomName)
	e.strOmit("address", w.Address)
	if w.DeviceText != nil {
		e.key("device_text")
		e.firstKey("sv")
		e.str(w.DeviceText.SV)
		e.strField("en", w.DeviceText.EN)
		e.b = append(e.b, '}')
	}
	if g := w.Geofence; g != nil {
		e.key("geofence")
		e.firstKey("lat")
		e.float(g.Lat)
		e.key("lon")
		e.float(g.Lon)
		e.key("radius_m")
		e.float(g.RadiusM)
		e.b = append(e.b, '}')
	}
	if f := w.FloorPlan; f != nil {
		e.key("floor_plan")
		e.firstKey("url")
		e.str(f.URL)
		e.key("south")
		e.float(f.South)
		e.key("west")
		e.float(f.West)
		e.key("north")
		e.float(f.North)
		e.key("east")
		e.float(f.East)
		e.b = append(e.b, '}')
	}
	e.strOmit("map_tiles", w.MapTiles)
	e.closeObject(n)
}

// marshalView is what json.Marshal makes of the view: the reference the
// tests compare appendView with.
func (s *server) marshalView(a *alarm.Alarm, c int) ([]byte, error) {
	return json.Marshal(s.view(listed(a), c))
}

// listed is a with its History listed, as json.Marshal needs it: a
// snapshot's compact history is expanded by Clone; any other alarm is
// itself.
func listed(a *alarm.Alarm) *alarm.Alarm {
	if a.History() == nil && a.HistoryLen() > 0 {
		return a.Clone()
	}
	return a
}

// cachedFrame is a's frame for class c from the class's frame cache,
// encoded (alarmFrame) on the first ask.
func (s *server) cachedFrame(a *alarm.Alarm, c int) ([]byte, error) {
	fc := &s.frames[c]
	if b, ok := fc.lookup(a); ok {
		return b, nil
	}
	b, err := s.alarmFrame(a, c)
	if err != nil {
		return nil, err
	}
	fc.store(a, b)
	return b, nil
}
