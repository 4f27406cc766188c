package zigbee2mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/vaka-care/vaka/event"
)

// MaxPayload bounds a zigbee2mqtt message; anything larger is refused
// unread (real state messages are a few hundred bytes).
const MaxPayload = 16 << 10

// maxUnmappedPerMessage bounds the unknown property names one message can
// report, so a hostile or broken payload cannot grow the driver's tables.
const maxUnmappedPerMessage = 16

// Reading is the part of a zigbee2mqtt state message Vaka uses. A nil
// field was absent from the message (or JSON null).
type Reading struct {
	Contact    *bool    // true = closed, false = open
	Occupancy  *bool    // PIR motion, or bed/chair/mat occupied
	Presence   *bool    // mmWave presence (someone in the room), e.g. Aqara FP1
	Action     *string  // "single", "1_double", "brightness_move_up", …
	Battery    *float64 // percent
	BatteryLow *bool
	Tamper     *bool
	// Alarm keys of SOS and panic devices (IAS zone alarm bits).
	SOS, Emergency, Panic *bool
	// Falls: a fall radar's enum ("none", "maybe_fall", "fall") or a flag.
	FallDownStatus *string
	Fall           *bool
	// Hazards.
	Smoke, WaterLeak, Gas, CarbonMonoxide *bool
	Vibration                             *bool
	// Unmapped names the properties that are neither mapped above nor
	// known to carry no alarm (sorted, at most maxUnmappedPerMessage).
	// They are counted per device: a new device may put an alarm under a
	// name Vaka does not know yet.
	Unmapped []string
}

// Errors of the decoders.
var (
	ErrTooLarge  = errors.New("zigbee2mqtt: payload too large")
	ErrMalformed = errors.New("zigbee2mqtt: malformed payload")
)

// informational are properties zigbee2mqtt devices publish that carry no
// alarm: measurements, settings, radio quality. They are proof of life
// and nothing more. Any other unmapped property is counted.
var informational = map[string]bool{
	"linkquality": true, "last_seen": true, "voltage": true, "battery_voltage": true, "device_temperature": true,
	"power_outage_count": true, "update": true, "update_available": true, "illuminance": true, "illuminance_lux": true,
	"illuminance_raw": true, "temperature": true, "humidity": true, "pressure": true, "trigger_count": true,
	"strength": true, "motion_speed": true, "motion_direction": true, "radar_sensitivity": true, "radar_scene": true,
	"tumble_switch": true, "fall_sensitivity": true, "tumble_alarm_time": true, "static_dwell_alarm": true,
	"presence_event": true, "detection_interval": true, "motion_sensitivity": true, "monitoring_mode": true,
	"approach_distance": true, "trouble": true, "ac_connected": true, "test": true, "battery_defect": true,
	"battery_state": true, "angle": true, "angle_x": true, "angle_y": true, "angle_z": true, "x_axis": true,
	"y_axis": true, "z_axis": true, "side": true, "occupancy_timeout": true, "sensitivity": true,
	"smoke_density": true, "smoke_density_dbm": true, "selftest": true, "buzzer": true, "heartbeat_indicator": true,
	"linkage_alarm": true, "led_indication": true, "action_group": true, "action_duration": true,
	"action_rate": true, "action_step_size": true, "action_transition_time": true, "action_level": true,
	"identify": true, "no_occupancy_since": true, "keep_time": true, "max_duration": true, "vibration_timeout": true,
	"alarm": true, "state": true, "brightness": true, "power_on_behavior": true, "operation_mode": true,
	"device_mode": true, "click_mode": true, "mute": true, "consumer_connected": true, "gas_density": true,
	"test_alarm": true, "self_test": true, "preheat": true, "self_test_result": true,
	"supervision_reports": true, "restore_reports": true, "ac_status": true,
}

// DecodeState parses a state message from zigbee2mqtt/<friendly_name>.
// Known fields of the wrong type, a non-object or invalid JSON are
// ErrMalformed. Other fields are listed in Reading.Unmapped unless known
// to be informational.
func DecodeState(p []byte) (Reading, error) {
	var r Reading
	if len(p) > MaxPayload {
		return r, ErrTooLarge
	}
	p = bytes.TrimSpace(p)
	if len(p) == 0 || p[0] != '{' {
		return r, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		return Reading{}, fmt.Errorf("%w: %s", ErrMalformed, jsonErrKind(err))
	}
	bools := map[string]**bool{
		"contact": &r.Contact, "occupancy": &r.Occupancy, "presence": &r.Presence, "battery_low": &r.BatteryLow,
		"tamper": &r.Tamper, "sos": &r.SOS, "emergency": &r.Emergency, "panic": &r.Panic, "fall": &r.Fall,
		"smoke": &r.Smoke, "water_leak": &r.WaterLeak, "gas": &r.Gas, "carbon_monoxide": &r.CarbonMonoxide,
		"vibration": &r.Vibration,
	}
	var click *string
	for k, raw := range m {
		var err error
		switch {
		case bools[k] != nil:
			err = json.Unmarshal(raw, bools[k])
		case k == "action":
			err = json.Unmarshal(raw, &r.Action)
		case k == "click": // zigbee2mqtt's legacy name for action
			err = json.Unmarshal(raw, &click)
		case k == "fall_down_status":
			err = json.Unmarshal(raw, &r.FallDownStatus)
		case k == "battery":
			err = json.Unmarshal(raw, &r.Battery)
		case informational[k]:
		default:
			if len(r.Unmapped) < maxUnmappedPerMessage {
				r.Unmapped = append(r.Unmapped, safeName(k))
			}
		}
		if err != nil {
			return Reading{}, fmt.Errorf("%w: field %s has the wrong type", ErrMalformed, safeName(k))
		}
	}
	if r.Action == nil {
		r.Action = click
	}
	sort.Strings(r.Unmapped)
	if r.Battery != nil && (math.IsNaN(*r.Battery) || *r.Battery < 0 || *r.Battery > 100) {
		r.Battery = nil // out of range: ignore the field, keep the rest
	}
	return r, nil
}

// safeName is a property name or word fit for a log line and a metric:
// short, printable ASCII.
func safeName(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// jsonErrKind names a JSON error without echoing the payload.
func jsonErrKind(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + safeName(te.Field) + " has the wrong type"
	}
	return "invalid JSON"
}

// DecodeAvailability parses zigbee2mqtt/<friendly_name>/availability and
// zigbee2mqtt/bridge/state: "online"/"offline" (legacy) or
// {"state":"online"} (zigbee2mqtt ≥ 1.22).
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

// ActionClass is what an action word means for a call button.
type ActionClass int

// Action classes.
const (
	ActionUnknown ActionClass = iota // not a word Vaka knows: counted and logged, no alarm
	ActionPress                      // a press: an alarm on a call button or fall detector
	ActionIgnore                     // known and not a press: a release, the end of a long press
)

// pressWords are the action words zigbee-herdsman-converters uses for a
// press of a button, in any count or length. A person in distress may
// press once, many times ("many", "quadruple") or hold the key down
// ("hold", "brightness_move_up" on IKEA buttons): every one of them is a
// call. "on"/"off"/"toggle" are the two keys of on/off remotes.
var pressWords = map[string]bool{
	"single": true, "double": true, "triple": true, "quadruple": true, "quintuple": true, "many": true,
	"hold": true, "long": true, "long_press": true, "press": true, "pressed": true, "click": true,
	"on": true, "off": true, "toggle": true, "emergency": true, "panic": true, "sos": true,
	"brightness_move_up": true, "brightness_move_down": true, "brightness_step_up": true,
	"brightness_step_down": true, "arrow_left_click": true, "arrow_right_click": true,
	"arrow_left_hold": true, "arrow_right_hold": true, "shake": true,
}

// ignoreWords follow a press or are no press at all.
var ignoreWords = map[string]bool{
	"": true, "release": true, "hold_release": true, "brightness_stop": true, "brightness_move_stop": true,
	"arrow_left_release": true, "arrow_right_release": true, "long_release": true,
}

// ClassifyAction says whether w is a press. Besides the plain words it
// knows the numbered forms of multi-key buttons: "1_single" … "4_hold"
// (Tuya TS0041–TS0044), "button_2_double", the left/right/both forms of
// two-key switches ("single_left", "hold_both"), key-named words
// ("on_press", "up_hold" of the Hue dimmer) and any "…_release".
func ClassifyAction(w string) ActionClass {
	base := w
	if rest, ok := strings.CutPrefix(base, "button_"); ok {
		base = rest
	}
	if i := strings.IndexByte(base, '_'); i > 0 && i <= 2 && allDigits(base[:i]) {
		base = base[i+1:]
	}
	for _, suf := range []string{"_left", "_right", "_both", "_top", "_bottom"} {
		if b, ok := strings.CutSuffix(base, suf); ok && (pressWords[b] || ignoreWords[b]) {
			base = b
			break
		}
	}
	switch {
	case pressWords[base]:
		return ActionPress
	case ignoreWords[base], strings.HasSuffix(base, "_release"), strings.HasSuffix(base, "_stop"):
		return ActionIgnore
	}
	if i := strings.LastIndexByte(base, '_'); i > 0 {
		switch base[i+1:] {
		case "press", "hold", "click", "single", "double", "triple", "long":
			return ActionPress
		}
	}
	return ActionUnknown
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Words is a device's own action words (options press_actions and
// ignore_actions), for buttons whose words ClassifyAction does not know.
type Words struct {
	Press, Ignore map[string]bool
}

func (w Words) classify(a string) ActionClass {
	switch {
	case w.Press[a]:
		return ActionPress
	case w.Ignore[a]:
		return ActionIgnore
	}
	return ClassifyAction(a)
}

// last is what a device last reported, so that a full state message
// repeated for a battery update does not repeat a door opening.
type last struct {
	contact, occupancy, presence, batteryLow, tamper *bool
	sos, fall, vibration                             *bool
	hazard                                           map[event.State]bool
	battery                                          *int
	offline                                          bool
}

// carriesPresence is the device types for which occupancy and presence
// mean a person in a bed, chair, mat or room. For the others (a fall
// radar registered as fall_detector, a button) they are proof of life.
func carriesPresence(t event.DeviceType) bool {
	switch t {
	case event.Occupancy, event.WanderSensor, event.BedMonitor, event.ChairMonitor, event.MatSensor:
		return true
	}
	return false
}

// events turns a reading into events for a device of type t, updating l.
// unmapped returns the action and enum words it could not map (with the
// property, "action=arm_all_zones"), for counting.
func (l *last) events(t event.DeviceType, r Reading, w Words) (out []event.Event, unmapped []string) {
	changed := func(prev **bool, v *bool) bool {
		if v == nil {
			return false
		}
		c := *prev == nil || **prev != *v
		b := *v
		*prev = &b
		return c
	}
	// rose reports a false→true edge (or true in the first report).
	rose := func(prev **bool, v *bool) bool { return changed(prev, v) && *v }
	if changed(&l.contact, r.Contact) {
		st := event.StateOpen
		if *r.Contact {
			st = event.StateClosed // zigbee2mqtt: contact true = closed
		}
		out = append(out, event.Event{State: st})
	}
	if changed(&l.occupancy, r.Occupancy) && carriesPresence(t) {
		if ev, ok := presenceEvent(t, *r.Occupancy, false); ok {
			out = append(out, ev)
		}
	}
	if changed(&l.presence, r.Presence) && carriesPresence(t) {
		if ev, ok := presenceEvent(t, *r.Presence, true); ok {
			out = append(out, ev)
		}
	}
	press := false
	if r.Action != nil {
		switch w.classify(*r.Action) {
		case ActionPress:
			press = true
		case ActionUnknown:
			if t.IsTrigger() || t == event.FallDetector {
				unmapped = append(unmapped, "action="+safeName(*r.Action))
			}
		}
	}
	// SOS, emergency and panic are IAS alarm flags: zigbee2mqtt repeats
	// the last value in every report, so only the rise is a press.
	sos := anyTrue(r.SOS, r.Emergency, r.Panic)
	sosRose := rose(&l.sos, sos)
	if press && (t.IsTrigger() || t == event.FallDetector) || sosRose {
		// Every press is an alarm, even a repeated one: no change filter.
		// An SOS flag alarms whatever type the device is registered as.
		out = append(out, event.Event{State: event.StatePressed, Status: event.ManualAlarm})
	}
	fall := r.Fall
	if s := r.FallDownStatus; s != nil {
		var v bool
		switch *s {
		case "fall", "maybe_fall":
			// "maybe_fall" too: a nurse looking in on a false fall costs
			// minutes; a missed one may cost a night on the floor.
			v = true
		case "none", "":
		default:
			unmapped = append(unmapped, "fall_down_status="+safeName(*s))
		}
		fall = anyTrue(fall, &v)
	}
	if rose(&l.fall, fall) {
		out = append(out, event.Event{State: event.StateFall, Status: event.AutomaticAlarm})
	}
	for _, h := range [...]struct {
		st event.State
		v  *bool
	}{{event.StateSmoke, r.Smoke}, {event.StateWaterLeak, r.WaterLeak}, {event.StateGas, r.Gas}, {event.StateCarbonMonoxide, r.CarbonMonoxide}} {
		if h.v == nil {
			continue
		}
		was := l.hazard[h.st]
		switch {
		case *h.v && !was:
			out = append(out, event.Event{State: h.st, Status: event.AutomaticAlarm})
		case !*h.v && was:
			out = append(out, event.Event{State: h.st, Status: event.Restoral})
		}
		if l.hazard == nil {
			l.hazard = map[event.State]bool{}
		}
		l.hazard[h.st] = *h.v
	}
	if rose(&l.vibration, r.Vibration) {
		out = append(out, event.Event{State: event.StateMotion, Status: event.Movement})
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
	return out, unmapped
}

// presenceEvent maps occupancy (PIR: motion) or presence (mmWave: someone
// is there) for a device type that carries presence. A PIR's "no motion"
// after its timeout is no event: it says nothing about the room; a
// radar's "no presence" does (the room is empty).
func presenceEvent(t event.DeviceType, v, presence bool) (event.Event, bool) {
	room := t == event.Occupancy || t == event.WanderSensor
	switch {
	case room && v && presence:
		return event.Event{State: event.StateOccupied, Status: event.Movement}, true
	case room && v:
		return event.Event{State: event.StateMotion, Status: event.Movement}, true
	case room && !presence:
		return event.Event{}, false
	case v:
		return event.Event{State: event.StateOccupied}, true
	}
	return event.Event{State: event.StateEmpty}, true
}

// anyTrue folds optional flags: nil if all are absent, else whether any
// is true.
func anyTrue(vs ...*bool) *bool {
	var out *bool
	for _, v := range vs {
		if v == nil {
			continue
		}
		b := *v || (out != nil && *out)
		out = &b
	}
	return out
}
