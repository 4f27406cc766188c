package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// MaxPayload is the largest event payload accepted. A real event is a few
// hundred bytes; anything near this is a bug or an attack.
const MaxPayload = 8 << 10

// ReplyCode is the SCAIP reply status (snu) the hub answers a refused event with.
type ReplyCode int

// SCAIP reply status codes.
const (
	ReplyOK            ReplyCode = 0
	ReplyTooLong       ReplyCode = 1
	ReplyInvalidFormat ReplyCode = 2
	ReplyWrongData     ReplyCode = 3
	ReplyNotTreated    ReplyCode = 5
	// ReplyBusy (SCAIP "busy: retry later") answers an event the hub
	// evaluated but could not make durable (its journal cannot write):
	// the sender must keep it and send it again.
	ReplyBusy            ReplyCode = 6
	ReplyMandatoryMissed ReplyCode = 7
)

// Reply is the hub's answer to a refused event, published on the gateway's
// reply topic as JSON, so a gateway (or a third-party integrator) learns
// why instead of wondering where its alarm went.
type Reply struct {
	ID     string    `json:"id,omitempty"`
	Code   ReplyCode `json:"snu"`
	Reason string    `json:"reason,omitempty"`
	// Evaluated is true when the event was still acted on despite the
	// complaint (an unregistered device's call button raises its alarm).
	Evaluated bool `json:"evaluated,omitempty"`
}

// DecodeError says why a payload was refused, in words safe to log: it never
// carries payload content, which may hold personal data.
type DecodeError struct {
	Code   ReplyCode
	Field  string
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "event: " + e.Reason
	}
	return fmt.Sprintf("event: field %q: %s", e.Field, e.Reason)
}

// Reason is a short stable label for metrics ("invalid_format").
func (e *DecodeError) Label() string {
	switch e.Code {
	case ReplyTooLong:
		return "too_long"
	case ReplyInvalidFormat:
		return "invalid_format"
	case ReplyMandatoryMissed:
		return "missing_field"
	default:
		return "wrong_data"
	}
}

func bad(code ReplyCode, field, format string, args ...any) *DecodeError {
	return &DecodeError{Code: code, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Decode parses one event payload received on the topic of (site, gateway).
// Site and gateway come from the authenticated topic; a payload that names
// another site or gateway is refused rather than trusted.
func Decode(site, gateway string, payload []byte) (Event, error) {
	var ev Event
	if len(payload) > MaxPayload {
		return ev, bad(ReplyTooLong, "", "payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	if !decodeFast(payload, &ev) {
		// A variable of its own: json.Decoder keeps what it is given
		// reachable, so handing it &ev would move ev to the heap on the
		// fast path too (one allocation per event).
		var full Event
		if err := decodeJSON(payload, &full); err != nil {
			return Event{}, err
		}
		ev = full
	}
	if ev.Site != "" && ev.Site != site {
		return Event{}, bad(ReplyWrongData, "site", "does not match the topic")
	}
	if ev.Gateway != "" && ev.Gateway != gateway {
		return Event{}, bad(ReplyWrongData, "gateway", "does not match the topic")
	}
	ev.Site, ev.Gateway = site, gateway
	if err := ev.Validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// decodeJSON is the full decoder: encoding/json, unknown fields refused,
// every refusal worded without payload content.
func decodeJSON(payload []byte, ev *Event) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ev); err != nil {
		var ute *json.UnmarshalTypeError
		var ste *json.SyntaxError
		switch {
		case errors.As(err, &ute):
			return bad(ReplyWrongData, ute.Field, "wrong type, want %s", ute.Type)
		case errors.As(err, &ste):
			return bad(ReplyInvalidFormat, "", "invalid JSON at byte %d", ste.Offset)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return bad(ReplyInvalidFormat, "", "empty or truncated JSON")
		default:
			// Unknown fields and time parse errors land here; the message
			// names the field, never its value.
			return bad(ReplyWrongData, "", "%s", safeJSONError(err))
		}
	}
	if rest := bytes.TrimSpace(payload[dec.InputOffset():]); len(rest) > 0 {
		return bad(ReplyInvalidFormat, "", "trailing data after the JSON object")
	}
	return nil
}

// safeJSONError keeps encoding/json's message only where it names a field and
// not a value (unknown field, time parsing), so logs stay free of payload data.
func safeJSONError(err error) string {
	msg := err.Error()
	const unknown = "json: unknown field "
	if len(msg) > len(unknown) && msg[:len(unknown)] == unknown && len(msg) < 100 {
		return "unknown field " + msg[len(unknown):]
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return "field \"ts\" is not an RFC 3339 time"
	}
	return "malformed value"
}

// Validate checks the fields every event must carry.
func (e *Event) Validate() error {
	if e.V != Version {
		if e.V == 0 {
			return bad(ReplyMandatoryMissed, "v", "missing schema version, want %d", Version)
		}
		return bad(ReplyWrongData, "v", "unsupported schema version %d, want %d", e.V, Version)
	}
	if e.ID == "" {
		return bad(ReplyMandatoryMissed, "id", "missing")
	}
	if len(e.ID) > maxIDLength {
		return bad(ReplyWrongData, "id", "longer than %d characters", maxIDLength)
	}
	for _, r := range e.ID {
		// An id is a key, logged and stored: keep free text (and with it
		// personal data) out of it.
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
			return bad(ReplyWrongData, "id", "use letters, digits, '-', '_', '.' or ':'")
		}
	}
	if e.Device == "" {
		return bad(ReplyMandatoryMissed, "device", "missing")
	}
	if err := ValidName(e.Device); err != nil {
		return bad(ReplyWrongData, "device", "%v", err)
	}
	if e.Type == "" {
		return bad(ReplyMandatoryMissed, "dty", "missing")
	}
	if !e.Type.Known() {
		return bad(ReplyWrongData, "dty", "unknown SCAIP device type")
	}
	if e.Status != "" && !e.Status.Known() {
		return bad(ReplyWrongData, "stc", "unknown SCAIP status code")
	}
	if !knownStates[e.State] {
		return bad(ReplyWrongData, "state", "unknown state")
	}
	if e.Time.IsZero() {
		return bad(ReplyMandatoryMissed, "ts", "missing")
	}
	for _, f := range [...]struct{ name, v string }{{"resident", e.Resident}, {"unit", e.Unit}, {"room", e.Room}} {
		if f.v != "" && ValidName(f.v) != nil {
			return bad(ReplyWrongData, f.name, "must be an identifier (letters, digits, - _ .), never a name")
		}
	}
	if p := e.Position; p != nil {
		if math.IsNaN(p.Lat) || p.Lat < -90 || p.Lat > 90 {
			return bad(ReplyWrongData, "pos.lat", "out of range")
		}
		if math.IsNaN(p.Lon) || p.Lon < -180 || p.Lon > 180 {
			return bad(ReplyWrongData, "pos.lon", "out of range")
		}
		if math.IsNaN(p.Accuracy) || p.Accuracy < 0 {
			return bad(ReplyWrongData, "pos.acc", "negative")
		}
	}
	if b := e.Battery; b != nil && (*b < 0 || *b > 100) {
		return bad(ReplyWrongData, "battery", "must be 0–100")
	}
	return nil
}

// Encode is the inverse of Decode: the wire form of an event.
func Encode(e *Event) ([]byte, error) {
	if e.V == 0 {
		e.V = Version
	}
	return json.Marshal(e)
}
