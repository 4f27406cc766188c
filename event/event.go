// Package event is Vaka's leaf domain package for what happened at a sensor:
// one canonical Event that every gateway, decoder, rule and store speaks.
//
// It imports only the standard library on purpose. The broker, the gateway,
// the HTTP API and the stores are adapters that depend on it, never the other
// way round, so the vocabulary of care (SCAIP device types and status codes)
// stays in one place and can later be forwarded to any SCAIP alarm centre.
package event

import (
	"fmt"
	"time"
)

// Version is the payload schema version carried in every event ("v").
// A receiver refuses a version it does not know instead of guessing.
const Version = 1

// DeviceType is a SCAIP device type code (dty), SS 91100:2014.
type DeviceType string

// SCAIP device types Vaka understands. The codes are the standard's, so an
// event can be forwarded to an alarm receiving centre without translation.
const (
	PersonalTrigger DeviceType = "0003" // wrist or pendant call button (trygghetslarm)
	FixedTrigger    DeviceType = "0004" // wall button, pull cord
	FallDetector    DeviceType = "0005"
	BedMonitor      DeviceType = "0012"
	MatSensor       DeviceType = "0013"
	DoorSensor      DeviceType = "0014"
	WanderSensor    DeviceType = "0015"
	Occupancy       DeviceType = "0018" // PIR / presence
	CommLink        DeviceType = "0032" // the gateway itself: communication link monitor
	ChairMonitor    DeviceType = "0044"
	Tracker         DeviceType = "0051" // GPS tracking device

	// Hazard detectors. SCAIP's device types as Vaka's vocabulary has them
	// (docs: /work/shared/scaip.md, domain.md) name no smoke, water or gas
	// detector, so these codes are Vaka's own and deliberately not four
	// digits: they can never be mistaken for, or collide with, a code of
	// SS 91100 Annex A. A SCAIP forwarder must map them (to the standard's
	// code once verified, or to 0004 fixed trigger with stc 0009).
	SmokeDetector     DeviceType = "V001"
	WaterLeakDetector DeviceType = "V002"
	GasDetector       DeviceType = "V003" // gas or carbon monoxide
)

var deviceTypeNames = map[DeviceType]string{
	PersonalTrigger: "personal_trigger",
	FixedTrigger:    "fixed_trigger",
	FallDetector:    "fall_detector",
	BedMonitor:      "bed_monitor",
	MatSensor:       "mat_sensor",
	DoorSensor:      "door_sensor",
	WanderSensor:    "wandering_sensor",
	Occupancy:       "occupancy_detector",
	CommLink:        "communication_link",
	ChairMonitor:    "chair_monitor",
	Tracker:         "tracking_device",

	SmokeDetector:     "smoke_detector",
	WaterLeakDetector: "water_leak_detector",
	GasDetector:       "gas_detector",
}

// Known reports whether d is a device type Vaka understands.
func (d DeviceType) Known() bool { _, ok := deviceTypeNames[d]; return ok }

// Name is the English machine name of the device type ("door_sensor").
func (d DeviceType) Name() string {
	if n, ok := deviceTypeNames[d]; ok {
		return n
	}
	return "unknown"
}

// ParseDeviceType accepts either the SCAIP code ("0014") or the machine name
// ("door_sensor"), so configs stay readable and payloads stay standard.
func ParseDeviceType(s string) (DeviceType, error) {
	if DeviceType(s).Known() {
		return DeviceType(s), nil
	}
	for d, n := range deviceTypeNames {
		if n == s {
			return d, nil
		}
	}
	return "", fmt.Errorf("event: unknown device type %q", s)
}

// IsTrigger reports whether the device is a call button of either kind.
func (d DeviceType) IsTrigger() bool { return d == PersonalTrigger || d == FixedTrigger }

// StatusCode is a SCAIP status code (stc).
type StatusCode string

// SCAIP status codes Vaka uses.
const (
	AutomaticAlarm     StatusCode = "0009"
	ManualAlarm        StatusCode = "0010"
	BatteryLow         StatusCode = "0016"
	IPConnectionFailed StatusCode = "0023"
	Offline            StatusCode = "0073"
	OpenTooLong        StatusCode = "0077"
	Presence           StatusCode = "0088" // staff at resident
	Restoral           StatusCode = "0094"
	Assistance         StatusCode = "0110"
	InterventionDone   StatusCode = "0111"
	LyingInBed         StatusCode = "0117"
	Movement           StatusCode = "0119"
	RadioTestMissing   StatusCode = "0123"

	// Codes an alarm unit sends about its own handling (SCAIP receiver,
	// package scaip): accepted, planned presence and test transmissions.
	AlarmAccepted    StatusCode = "0004"
	PlannedPresence  StatusCode = "0087"
	TestTransmission StatusCode = "0102"
	TestPeriodic     StatusCode = "0103"
)

var statusNames = map[StatusCode]string{
	AutomaticAlarm:     "automatic_alarm",
	ManualAlarm:        "manual_alarm",
	BatteryLow:         "battery_low",
	IPConnectionFailed: "ip_connection_failure",
	Offline:            "offline",
	OpenTooLong:        "open_too_long",
	Presence:           "presence",
	Restoral:           "restoral",
	Assistance:         "assistance",
	InterventionDone:   "intervention_complete",
	LyingInBed:         "lying_in_bed",
	Movement:           "movement",
	RadioTestMissing:   "radio_test_missing",

	AlarmAccepted:    "accepted",
	PlannedPresence:  "planned_presence",
	TestTransmission: "test_transmission",
	TestPeriodic:     "test_transmission_periodic",
}

// Known reports whether s is a status code Vaka understands.
func (s StatusCode) Known() bool { _, ok := statusNames[s]; return ok }

// Name is the English machine name of the status code.
func (s StatusCode) Name() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "unknown"
}

// LocationCode is a SCAIP location code (lco).
type LocationCode string

// SCAIP location codes Vaka uses.
const (
	LocGeofence  LocationCode = "019"
	LocGPS       LocationCode = "035"
	LocFrontDoor LocationCode = "039"
)

// State is the sensor state a device reports. SCAIP has no word for "door
// open" or "bed empty"; these small words carry it without inventing codes.
type State string

// Sensor states.
const (
	StateNone     State = ""
	StateOpen     State = "open"     // door or window contact open
	StateClosed   State = "closed"   // contact closed
	StatePressed  State = "pressed"  // call button pressed
	StateOccupied State = "occupied" // bed/chair/mat occupied, or motion seen
	StateEmpty    State = "empty"    // bed/chair/mat left, no motion
	StateMotion   State = "motion"
	StateTamper   State = "tamper" // casing opened or device removed

	// A fall detected by a sensor (a fall radar's "fall" or "maybe_fall").
	StateFall State = "fall"
	// Hazards. With stc 0009 the hazard is present; with stc 0094
	// (restoral) the detector reports it gone.
	StateSmoke          State = "smoke"
	StateWaterLeak      State = "water_leak"
	StateGas            State = "gas"
	StateCarbonMonoxide State = "carbon_monoxide"
)

var knownStates = map[State]bool{StateNone: true, StateOpen: true, StateClosed: true,
	StatePressed: true, StateOccupied: true, StateEmpty: true, StateMotion: true, StateTamper: true,
	StateFall: true, StateSmoke: true, StateWaterLeak: true, StateGas: true, StateCarbonMonoxide: true}

// IsHazard reports whether s names a hazard (smoke, water, gas, CO): an
// alarm for the place and everyone in it, whatever device reported it.
func (s State) IsHazard() bool {
	return s == StateSmoke || s == StateWaterLeak || s == StateGas || s == StateCarbonMonoxide
}

// Position is a GPS fix. Accuracy is the radius in metres; 0 means unknown,
// which geofence rules must treat as untrustworthy, not as perfect.
type Position struct {
	Lat      float64 `json:"lat"`
	Lon      float64 `json:"lon"`
	Accuracy float64 `json:"acc,omitempty"`
	// Invalid marks a fix its device flagged as not valid (Traccar's
	// valid=false, a mock location): kept and shown, never used for a
	// geofence, so a stale or guessed fix cannot raise or clear a wander alarm.
	Invalid bool `json:"invalid,omitempty"`
	// LastKnown is set when the report had no fix and this is the device's
	// last valid fix, taken at that time (an SOS from indoors): staff must
	// see that the position may be old.
	LastKnown *time.Time `json:"last_known,omitempty"`
}

// Event is one thing a device reported, normalised.
//
// Site and Gateway are never trusted from the payload: the broker fills them
// from the authenticated topic. ID is unique per gateway, so the pair
// (Gateway, ID) de-duplicates redelivery after a lost link.
type Event struct {
	V        int        `json:"v"`
	ID       string     `json:"id"`
	Site     string     `json:"site,omitempty"`
	Gateway  string     `json:"gateway,omitempty"`
	Device   string     `json:"device"`
	Type     DeviceType `json:"dty"`
	Status   StatusCode `json:"stc,omitempty"`
	State    State      `json:"state,omitempty"`
	Resident string     `json:"resident,omitempty"` // pseudonymous id, never a name
	Unit     string     `json:"unit,omitempty"`
	Room     string     `json:"room,omitempty"`
	Time     time.Time  `json:"ts"` // at the source
	Position *Position  `json:"pos,omitempty"`
	Battery  *int       `json:"battery,omitempty"` // percent
	Seq      uint64     `json:"seq,omitempty"`     // per-gateway sequence, for ordering after a spool replay
}

// Key identifies the event for de-duplication.
func (e *Event) Key() string { return e.Site + "/" + e.Gateway + "/" + e.ID }
