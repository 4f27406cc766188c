package zigbee2mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/vaka-care/vaka/event"
)

// MaxPayload bounds a zigbee2mqtt message; anything larger is refused
// unread (real state messages are a few hundred bytes).
const MaxPayload = 16 << 10

// Reading is the part of a zigbee2mqtt state message Vaka uses. A nil
// field was absent from the message.
type Reading struct {
	Contact    *bool    `json:"contact"`   // true = closed, false = open
	Occupancy  *bool    `json:"occupancy"` // PIR motion, or bed/chair/mat occupied
	Action     *string  `json:"action"`    // "single", "double", "long", …
	Battery    *float64 `json:"battery"`   // percent
	BatteryLow *bool    `json:"battery_low"`
	Tamper     *bool    `json:"tamper"`
}

// Errors of the decoders.
var (
	ErrTooLarge  = errors.New("zigbee2mqtt: payload too large")
	ErrMalformed = errors.New("zigbee2mqtt: malformed payload")
)

// DecodeState parses a state message from zigbee2mqtt/<friendly_name>.
// Unknown fields are ignored (devices carry many); a field of the wrong
// type, a non-object or invalid JSON is ErrMalformed.
func DecodeState(p []byte) (Reading, error) {
	var r Reading
	if len(p) > MaxPayload {
		return r, ErrTooLarge
	}
	p = bytes.TrimSpace(p)
	if len(p) == 0 || p[0] != '{' {
		return r, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(p, &r); err != nil {
		return Reading{}, fmt.Errorf("%w: %s", ErrMalformed, jsonErrKind(err))
	}
	if r.Battery != nil && (math.IsNaN(*r.Battery) || *r.Battery < 0 || *r.Battery > 100) {
		r.Battery = nil // out of range: ignore the field, keep the rest
	}
	return r, nil
}

// jsonErrKind names a JSON error without echoing the payload.
func jsonErrKind(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " has the wrong type"
	}
	return "invalid JSON"
}

// DecodeAvailability parses zigbee2mqtt/<friendly_name>/availability:
// "online"/"offline" (legacy) or {"state":"online"} (zigbee2mqtt ≥ 1.22).
func DecodeAvailability(p []byte) (online bool, err error) {
	if len(p) > MaxPayload {
		return false, ErrTooLarge
	}
	s := strings.TrimSpace(string(p))
	if strings.HasPrefix(s, "{") {
		var v struct {
			State string `json:"state"`
		}
		if json.Unmarshal([]byte(s), &v) != nil {
			return false, fmt.Errorf("%w: invalid JSON", ErrMalformed)
		}
		s = v.State
	}
	switch s {
	case "online":
		return true, nil
	case "offline":
		return false, nil
	}
	return false, fmt.Errorf("%w: availability is neither online nor offline", ErrMalformed)
}

// pressActions are the action values that mean a call button was pressed.
// "release" and the like follow a press and are not a second alarm.
var pressActions = map[string]bool{
	"single": true, "double": true, "triple": true, "long": true, "hold": true,
	"press": true, "on": true, "emergency": true, "sos": true,
}

// last is what a device last reported, so that a full state message
// repeated for a battery update does not repeat a door opening.
type last struct {
	contact, occupancy, batteryLow, tamper *bool
	battery                                *int
	offline                                bool
}

// events turns a reading into events for a device of type t, updating l.
func (l *last) events(t event.DeviceType, r Reading) []event.Event {
	var out []event.Event
	changed := func(prev **bool, v *bool) bool {
		if v == nil {
			return false
		}
		c := *prev == nil || **prev != *v
		b := *v
		*prev = &b
		return c
	}
	if changed(&l.contact, r.Contact) {
		st := event.StateOpen
		if *r.Contact {
			st = event.StateClosed // zigbee2mqtt: contact true = closed
		}
		out = append(out, event.Event{State: st})
	}
	if changed(&l.occupancy, r.Occupancy) {
		switch {
		case t == event.Occupancy && *r.Occupancy:
			out = append(out, event.Event{State: event.StateMotion, Status: event.Movement})
		case t == event.Occupancy:
			// "no motion" after the sensor's timeout: not an event.
		case *r.Occupancy:
			out = append(out, event.Event{State: event.StateOccupied})
		default:
			out = append(out, event.Event{State: event.StateEmpty})
		}
	}
	if r.Action != nil && pressActions[*r.Action] {
		// Every press is an alarm, even a repeated one: no change filter.
		if t.IsTrigger() || t == event.FallDetector {
			out = append(out, event.Event{State: event.StatePressed, Status: event.ManualAlarm})
		}
	}
	if changed(&l.tamper, r.Tamper) && *r.Tamper {
		out = append(out, event.Event{State: event.StateTamper})
	}
	low := changed(&l.batteryLow, r.BatteryLow) && *r.BatteryLow
	if r.Battery != nil {
		b := int(math.Round(*r.Battery))
		if l.battery == nil || *l.battery != b || low {
			l.battery = &b
			bb := b
			ev := event.Event{Battery: &bb}
			if low {
				ev.Status = event.BatteryLow
				low = false
			}
			out = append(out, ev)
		}
	}
	if low {
		out = append(out, event.Event{Status: event.BatteryLow})
	}
	return out
}
