package zigbee2mqtt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// MaxBridgeDevices bounds zigbee2mqtt's retained bridge/devices message,
// which lists every paired device with its definition (about 5–20 KiB per
// device); a larger one is counted as malformed and not read.
const MaxBridgeDevices = 8 << 20

// BridgeEntry is the part of one bridge/devices entry Vaka reads
// (zigbee2mqtt lib/extension/bridge.ts): the friendly name and the
// definition's exposes, which say what the device can ever report.
type BridgeEntry struct {
	FriendlyName string `json:"friendly_name"`
	Definition   *struct {
		Vendor  string   `json:"vendor"`
		Model   string   `json:"model"`
		Exposes []Expose `json:"exposes"`
	} `json:"definition"`
}

// Expose is one exposed property, or a composite/specific group of them
// (features).
type Expose struct {
	Type     string          `json:"type"`
	Property string          `json:"property"`
	Values   json.RawMessage `json:"values"` // enum values: strings
	Features []Expose        `json:"features"`
}

// DecodeBridgeDevices parses zigbee2mqtt/bridge/devices.
func DecodeBridgeDevices(p []byte) ([]BridgeEntry, error) {
	if len(p) > MaxBridgeDevices {
		return nil, ErrTooLarge
	}
	p = bytes.TrimSpace(p)
	if len(p) == 0 || p[0] != '[' {
		return nil, fmt.Errorf("%w: bridge/devices is not a JSON array", ErrMalformed)
	}
	var out []BridgeEntry
	if err := json.Unmarshal(p, &out); err != nil {
		return nil, fmt.Errorf("%w: bridge/devices: %s", ErrMalformed, jsonErrKind(err))
	}
	return out, nil
}

// properties flattens exposes to property → enum values (nil for others).
func properties(ex []Expose, out map[string][]string, depth int) {
	if depth > 4 {
		return // composites nest one or two levels; more is not a definition
	}
	for _, e := range ex {
		if e.Property != "" {
			var vs []string
			_ = json.Unmarshal(e.Values, &vs) // numeric or absent values: none
			out[e.Property] = append(out[e.Property], vs...)
		}
		properties(e.Features, out, depth+1)
	}
}

// need says, per device type, which exposed properties let the device do
// what it is registered for, and what it cannot do without them.
func need(t event.DeviceType) (props []string, what string) {
	switch {
	case t.IsTrigger():
		return []string{"action", "sos", "emergency", "panic"}, "raise a call"
	case t == event.FallDetector:
		return []string{"fall_down_status", "fall", "action", "sos", "emergency", "panic"}, "raise a fall alarm"
	case t == event.DoorSensor:
		return []string{"contact"}, "report the door"
	case t == event.BedMonitor, t == event.MatSensor, t == event.ChairMonitor:
		return []string{"occupancy", "presence"}, "report occupied or empty"
	case t == event.Occupancy, t == event.WanderSensor:
		return []string{"occupancy", "presence", "vibration"}, "report movement"
	case t == event.SmokeDetector:
		return []string{"smoke"}, "raise a smoke alarm"
	case t == event.WaterLeakDetector:
		return []string{"water_leak"}, "raise a water leak alarm"
	case t == event.GasDetector:
		return []string{"gas", "carbon_monoxide"}, "raise a gas alarm"
	}
	return nil, ""
}

// checkDevice says what is wrong with configured device x given its
// bridge/devices entry (nil: not paired), or "" if nothing.
func checkDevice(x *dev, bd *BridgeEntry) string {
	if bd == nil {
		return x.d.ID + ": not paired in zigbee2mqtt (no device named " + safeName(x.d.Options["friendly_name"]) + ")"
	}
	if bd.Definition == nil {
		return x.d.ID + ": zigbee2mqtt has no definition for it (unsupported, or its interview did not complete)"
	}
	props, what := need(x.typ)
	if props == nil {
		return ""
	}
	have := map[string][]string{}
	properties(bd.Definition.Exposes, have, 0)
	for _, p := range props {
		vs, ok := have[p]
		if !ok {
			continue
		}
		if p != "action" {
			return ""
		}
		// An action enum alarms only if one of its words is a press.
		for _, v := range vs {
			if x.words.classify(v) == ActionPress {
				return ""
			}
		}
	}
	model := safeName(bd.Definition.Vendor + " " + bd.Definition.Model)
	if vs, ok := have["action"]; ok && (x.typ.IsTrigger() || x.typ == event.FallDetector) {
		if len(vs) > 8 {
			vs = vs[:8]
		}
		return fmt.Sprintf("%s (%s): its action words (%s) hold no press, and it exposes no sos, emergency or panic: it cannot %s; add press_actions",
			x.d.ID, model, safeName(strings.Join(vs, ",")), what)
	}
	return fmt.Sprintf("%s (%s): exposes none of %s: it cannot %s", x.d.ID, model, strings.Join(props, ", "), what)
}

// Problem is a configured device that cannot do what its type promises,
// as found against zigbee2mqtt's bridge/devices list.
type Problem struct {
	Device string // the configured device's id
	Msg    string // what is wrong and, where known, what to do; starts with the id
}

// CheckBridgeDevices checks devs (devices of this driver, as configured)
// against a bridge/devices list: the same check the running driver makes
// on every retained list, offered to `vaka check --zigbee-devices` so a
// technician learns that a call button cannot alarm before leaving the
// home, not from a technical alarm afterwards. Problems are sorted by
// message; an error means devs themselves are not valid for the driver.
func CheckBridgeDevices(devs []devices.Device, list []BridgeEntry) ([]Problem, error) {
	d, err := New(DefaultOpts, devs, nil)
	if err != nil {
		return nil, err
	}
	return d.check(list), nil
}

// check runs checkDevice for every configured device against list.
func (d *Driver) check(list []BridgeEntry) []Problem {
	byName := make(map[string]*BridgeEntry, len(list))
	for i := range list {
		byName[list[i].FriendlyName] = &list[i]
	}
	var problems []Problem
	for fn, x := range d.devs {
		if p := checkDevice(x, byName[fn]); p != "" {
			problems = append(problems, Problem{Device: x.d.ID, Msg: p})
		}
	}
	slices.SortFunc(problems, func(a, b Problem) int { return strings.Compare(a.Msg, b.Msg) })
	return problems
}

// bridgeDevices checks every configured device against zigbee2mqtt's
// retained device list, so a call button that can never alarm (a remote
// whose words are not presses, a device that was never paired) is known
// before anyone relies on it: logged once per problem, kept for the
// heartbeat (InputStats.Problems), which makes the hub raise a technical
// alarm.
func (d *Driver) bridgeDevices(topic string, payload []byte) {
	d.msgs.Add(1)
	list, err := DecodeBridgeDevices(payload)
	if err != nil {
		n := d.malformed.Add(1)
		d.log.Warn("zigbee2mqtt: bridge device list skipped", "topic", topic, "bytes", len(payload), "err", err, "malformed_total", n)
		return
	}
	var problems []string
	for _, p := range d.check(list) {
		problems = append(problems, p.Msg)
	}
	if len(problems) > devices.MaxInputWords {
		problems = problems[:devices.MaxInputWords]
	}
	d.bmu.Lock()
	old := d.problems
	d.problems = problems
	d.bmu.Unlock()
	for _, p := range problems {
		if !slices.Contains(old, p) {
			d.log.Error("zigbee2mqtt: a configured device cannot work as configured", "problem", p)
		}
	}
	if len(problems) == 0 && len(old) > 0 {
		d.log.Info("zigbee2mqtt: every configured device now fits its zigbee2mqtt definition")
	}
}
