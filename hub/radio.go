package hub

import (
	"slices"
	"strings"
	"time"

	"github.com/vaka-care/vaka/event"
)

// Radio is what a device's radio can promise its supervision. A period
// shorter than the radio's check-in can only end in a working device
// reported silent, night after night, until staff stop trusting the
// device_silent alarm; so the config check refuses it and says why.
type Radio struct {
	Name string
	// Min is the shortest supervision period the radio can deliver.
	Min time.Duration
	// Why explains Min to the technician reading the config error.
	Why string
	// Alarm is the default period for call buttons, fall and hazard
	// detectors; Idle for sensors that may rightly say nothing all night
	// (door, bed, mat, chair, motion).
	Alarm, Idle time.Duration
	// Links are the gateway links (communication_link device names) the
	// radio's devices are heard through: while the gateway reports one
	// down, their device_silent alarms are held back (rules.Device.Links).
	Links []string
}

// zigbeeLinks are the zigbee2mqtt driver's BridgeDevice and BrokerDevice.
var zigbeeLinks = []string{"zigbee2mqtt", "zigbee2mqtt-broker"}

// Radios are the radios a device's `radio:` may name. A device without
// one is supervised by its type's period alone (DefaultSupervision and the
// site's supervision), as a SCAIP or wired device that sends its own radio
// test every minute is.
//
// The figures are the documented defaults (docs/config.md):
//   - zigbee (battery end devices): they sleep and report only on a change
//     or at their own check-in, about hourly for Aqara/Xiaomi, Heiman and
//     SONOFF; some (Tuya TS0041) report nothing but presses. zigbee2mqtt
//     itself allows them 25 h before "offline". Nothing under 1 h can be
//     promised. Call buttons, fall and hazard detectors default to 2 h (one
//     missed check-in), idle sensors to 25 h, zigbee2mqtt's own figure, so a
//     quiet night never wakes staff; tighten per device (supervision: 2h)
//     for sensors known to check in hourly.
//   - zigbee_mains (routers: mains-powered sensors and plugs): zigbee2mqtt's
//     availability pings them every 10 min, so 10 min is the floor and
//     30 min the default.
var Radios = map[string]Radio{
	"zigbee": {Name: "zigbee", Min: time.Hour, Alarm: 2 * time.Hour, Idle: 25 * time.Hour, Links: zigbeeLinks,
		Why: "battery zigbee devices sleep and check in on their own schedule, about hourly at best"},
	"zigbee_mains": {Name: "zigbee_mains", Min: 10 * time.Minute, Alarm: 30 * time.Minute, Idle: 30 * time.Minute, Links: zigbeeLinks,
		Why: "zigbee2mqtt checks mains-powered zigbee devices every 10 minutes"},
}

// radioNames lists the radios for error messages.
func radioNames() string {
	names := make([]string, 0, len(Radios))
	for n := range Radios {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// idleType reports whether a device of type t may rightly stay quiet all
// night: its supervision must then rest on check-ins, not on activity.
func idleType(t event.DeviceType) bool {
	switch t {
	case event.DoorSensor, event.BedMonitor, event.MatSensor, event.ChairMonitor, event.Occupancy, event.WanderSensor:
		return true
	}
	return false
}

// supervisionOf is the device's supervision period and where it comes
// from: its own supervision, the site's period for its type, its radio's
// default, or the product default for its type. Zero means unsupervised.
func supervisionOf(s *Site, d *Device) (time.Duration, string) {
	t, _ := event.ParseDeviceType(d.Type)
	if d.Supervision != nil {
		return *d.Supervision, "its supervision"
	}
	for name, p := range s.Supervision {
		if pt, err := event.ParseDeviceType(name); err == nil && pt == t {
			return p, "the site's supervision." + name
		}
	}
	if r, ok := Radios[d.Radio]; ok {
		if idleType(t) {
			return r.Idle, "radio " + r.Name + "'s default"
		}
		return r.Alarm, "radio " + r.Name + "'s default"
	}
	return DefaultSupervision[t], "the default for " + t.Name()
}

// checkRadio refuses a supervision period the device's radio cannot
// deliver, naming the device's field (and so its file and line).
func checkRadio(s *Site, d *Device, path func(string) string) []error {
	var errs []error
	if p := d.Supervision; p != nil && (*p < 0 || *p > 0 && *p < 10*time.Second) {
		errs = append(errs, d.errorf(path, "supervision", "must be at least 10s; leave it out for the type's period"))
	}
	if d.Radio == "" {
		return errs
	}
	r, ok := Radios[d.Radio]
	if !ok {
		return append(errs, d.errorf(path, "radio", "unknown radio %q; known: %s (leave out for SCAIP or wired devices)", d.Radio, radioNames()))
	}
	p, from := supervisionOf(s, d)
	if p > 0 && p < r.Min {
		field := "radio"
		if d.Supervision != nil {
			field = "supervision"
		}
		errs = append(errs, d.errorf(path, field,
			"supervised every %v (%s), but %s: it would be reported silent while working. Set supervision: %v or more on the device",
			p, from, r.Why, r.Min))
	}
	return errs
}
