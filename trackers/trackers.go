// Package trackers decodes what GPS trackers and phones already speak –
// OwnTracks JSON (over MQTT) and the Traccar/OsmAnd HTTP protocol – into
// Vaka events for the geofence and alarm rules.
//
// It is an adapter at the edge: it imports only the event package and the
// standard library. The hub maps a tracker to a registered device and runs
// the rules; this package only parses and translates.
//
// Accuracy is never invented: a fix without an accuracy (or with 0) keeps
// Accuracy 0, which the geofence rules treat as unknown and gate out.
package trackers

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"time"

	"github.com/vaka-care/vaka/event"
)

// MaxPayload is the largest OwnTracks payload or OsmAnd query accepted.
const MaxPayload = 4 << 10

// Source names the protocol a report came in by.
type Source string

// Sources.
const (
	OwnTracks Source = "owntracks"
	OsmAnd    Source = "osmand"
)

// Kind is what a report says.
type Kind string

// Kinds.
const (
	Location   Kind = "location"   // a fix (OwnTracks location, any OsmAnd report)
	Transition Kind = "transition" // OwnTracks region enter/leave, with the fix where it happened
	LWT        Kind = "lwt"        // OwnTracks Last Will: the client's link died
	Other      Kind = "other"      // an OwnTracks message Vaka has no use for (waypoints, cards …)
)

// Report is one decoded tracker message.
type Report struct {
	Source Source
	Kind   Kind
	// ID is the OsmAnd device id (the device's secret); empty for OwnTracks,
	// whose device is named by its topic.
	ID string
	// Time is the fix time at the source; zero when the report had none.
	Time     time.Time
	Position *event.Position // nil when the report carries no fix
	Altitude *float64        // metres
	Speed    *float64        // as sent: OwnTracks km/h, OsmAnd knots
	Battery  *int            // percent
	TID      string          // OwnTracks tracker id (two letters shown on the map)
	// Crossing is an OwnTracks transition's "enter" or "leave". Vaka runs its
	// own fences and uses the transition's fix, not the phone's verdict.
	Crossing string
	// Alarm is a Traccar alarm word (sos, fallDown …); empty for none.
	Alarm string
	// Sealed is the base64 data of an OwnTracks "_type": "encrypted"
	// payload (Kind Encrypted), for OpenOwnTracks.
	Sealed string
	// Decrypted is true for a report that arrived encrypted.
	Decrypted bool
	// Ignored lists optional fields dropped as unusable (a battery of 300 %),
	// so the position still counts. For logs: field names only.
	Ignored []string
}

// Error says why a report was refused. It names the field, never the value:
// a position is personal data and must not reach a log line.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return "trackers: " + e.Reason
	}
	return fmt.Sprintf("trackers: field %q: %s", e.Field, e.Reason)
}

func bad(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ErrUnknown is what a sink returns for a tracker that maps to no
// registered device (an unknown OsmAnd id or OwnTracks topic).
var ErrUnknown = errors.New("trackers: no registered device for this tracker")

// ErrNotStored is returned for a report the hub evaluated but could not
// make durable (its journal cannot write). The tracker must send it again:
// it is never told a report was kept when it was not.
var ErrNotStored = errors.New("trackers: report not stored, send it again")

// Alarm words of the Traccar protocol, and what Vaka makes of them.
const (
	AlarmSOS        = "sos"
	AlarmFall       = "fallDown"
	AlarmLowBattery = "lowBattery"
	AlarmPowerOff   = "powerOff"
	AlarmRemoving   = "removing"
	AlarmTampering  = "tampering"
)

// KnownAlarm reports whether w is a Traccar alarm word Vaka acts on. Others
// (geofenceEnter, geofenceExit, overspeed …) are accepted and ignored: Vaka
// runs its own fences with a hold and an accuracy gate.
func KnownAlarm(w string) bool {
	switch w {
	case AlarmSOS, AlarmFall, AlarmLowBattery, AlarmPowerOff, AlarmRemoving, AlarmTampering:
		return true
	}
	return false
}

// Event turns the report into the event of a registered device, received
// by the hub at received. It returns false for reports that carry nothing
// to evaluate (an LWT, a waypoint list). A location without a fix, alarm or
// battery (cell or wifi data only) is still an event: a sign of life for
// device supervision.
//
// The alarm words map to SCAIP: sos → 0010 manual alarm, fallDown → 0009
// automatic alarm (a fall), lowBattery → 0016, powerOff, removing and
// tampering → the tamper state (a technical alarm). The event's type stays
// 0051 tracking device; the rules raise call and fall alarms from it.
func (r *Report) Event(site, gateway, device string, received time.Time) (event.Event, bool) {
	if r.Kind != Location && r.Kind != Transition {
		return event.Event{}, false
	}
	ev := event.Event{V: event.Version, Site: site, Gateway: gateway, Device: device, Type: event.Tracker,
		Time: r.Time, Battery: r.Battery}
	if r.Position != nil {
		p := *r.Position
		ev.Position = &p
	}
	switch r.Alarm {
	case AlarmSOS:
		ev.Status = event.ManualAlarm
	case AlarmFall:
		ev.Status = event.AutomaticAlarm
	case AlarmLowBattery:
		ev.Status = event.BatteryLow
	case AlarmPowerOff, AlarmRemoving, AlarmTampering:
		ev.State = event.StateTamper
	}
	if ev.Time.IsZero() {
		ev.Time = received
	}
	ev.ID = r.eventID(device, ev.Time)
	return ev, true
}

// eventID is stable for one report, so a redelivered OwnTracks message or a
// resent OsmAnd request is de-duplicated by the hub: source, device, fix
// time and (for OsmAnd) the alarm word.
func (r *Report) eventID(device string, t time.Time) string {
	prefix := "ot"
	if r.Source == OsmAnd {
		prefix = "osm"
	}
	if r.Kind == Transition {
		prefix += "t"
	}
	ts := strconv.FormatInt(t.UnixMilli(), 10)
	suffix := ""
	if r.Alarm != "" && KnownAlarm(r.Alarm) {
		suffix = ":" + r.Alarm
	}
	id := prefix + ":" + device + ":" + ts + suffix
	if len(id) > 64 {
		h := fnv.New64a()
		h.Write([]byte(device))
		id = fmt.Sprintf("%s:%016x:%s%s", prefix, h.Sum64(), ts, suffix)
	}
	return id
}

// checkLatLon validates a fix's coordinates.
func checkLatLon(latField, lonField string, lat, lon float64) error {
	if math.IsNaN(lat) || math.IsInf(lat, 0) || lat < -90 || lat > 90 {
		return bad(latField, "out of range")
	}
	if math.IsNaN(lon) || math.IsInf(lon, 0) || lon < -180 || lon > 180 {
		return bad(lonField, "out of range")
	}
	return nil
}

// accuracy keeps an unknown accuracy unknown: 0, negative or absent is 0.
func accuracy(field string, v *float64) (float64, error) {
	if v == nil {
		return 0, nil
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) {
		return 0, bad(field, "not a number")
	}
	if *v < 0 {
		return 0, nil // some clients send -1 for "unknown"
	}
	return *v, nil
}

// battery accepts 0–100 (a float is rounded); anything else is dropped.
func battery(v *float64) (*int, bool) {
	if v == nil {
		return nil, true
	}
	if math.IsNaN(*v) || *v < 0 || *v > 100 {
		return nil, false
	}
	b := int(math.Round(*v))
	return &b, true
}

// finite drops an optional value that is not a finite number.
func finite(v *float64) (*float64, bool) {
	if v == nil {
		return nil, true
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) {
		return nil, false
	}
	return v, true
}

// epoch turns epoch seconds (or milliseconds, when the number is too large
// to be seconds) into a time; a zero or negative value is an error.
func epoch(field string, v float64) (time.Time, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return time.Time{}, bad(field, "not a positive epoch time")
	}
	if v >= 1e11 { // milliseconds (1e11 s is the year 5138)
		v /= 1000
	}
	if v >= 1e11 {
		return time.Time{}, bad(field, "out of range")
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}
