package httpapi

import (
	"encoding/json"
	"log/slog"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// Where is an alarm's place as a person reads it: names instead of ids,
// the address to drive to, the device in words, and the safe area of a
// wander alarm. It is built at view time from the config (the stored
// alarm keeps only ids) and sent as the alarm's "where".
type Where struct {
	SiteName string `json:"site_name,omitempty"`
	UnitName string `json:"unit_name,omitempty"`
	RoomName string `json:"room_name,omitempty"`
	// Address is the home's or the unit's street address. A resident's
	// own home address goes only to roles that see names or door codes.
	Address    string     `json:"address,omitempty"`
	DeviceText *Words     `json:"device_text,omitempty"`
	Geofence   *GeoCircle `json:"geofence,omitempty"`
	// FloorPlan is the unit's own floor-plan image and the area it shows.
	FloorPlan *FloorPlan `json:"floor_plan,omitempty"`
	// MapTiles is the configured tile URL template ({z}/{x}/{y}); empty:
	// the map draws no tiles and calls nobody.
	MapTiles string `json:"map_tiles,omitempty"`
}

// Words is one text in Swedish and English.
type Words struct {
	SV string `json:"sv"`
	EN string `json:"en"`
}

// GeoCircle is a circular safe area.
type GeoCircle struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	RadiusM float64 `json:"radius_m"`
}

// FloorPlan is an image (served by the hub) and the latitude/longitude box
// its edges stand for, so a position can be drawn on it.
type FloorPlan struct {
	URL   string  `json:"url"`
	South float64 `json:"south"`
	West  float64 `json:"west"`
	North float64 `json:"north"`
	East  float64 `json:"east"`
}

// AccessInfo is how to get in: a key box, a door code, a note. It is sent
// as the alarm's "access" only to the roles in Options.AccessRoles (by
// default staff), on a copy made per request; it is never stored with the
// alarm, logged, exported to InfluxDB or counted in /metrics.
type AccessInfo struct {
	KeyBox   string `json:"key_box,omitempty"`
	DoorCode string `json:"door_code,omitempty"`
	Note     string `json:"note,omitempty"`
}

// LogValue keeps door codes out of logs even if someone logs the value.
func (AccessInfo) LogValue() slog.Value { return slog.StringValue("[access redacted]") }

// String likewise, for fmt.
func (AccessInfo) String() string { return "[access redacted]" }

// alarmView is the alarm as one viewer may see it: the stored alarm (or
// its named copy) with where and access beside it.
type alarmView struct {
	*alarm.Alarm
	Where  *Where      `json:"where,omitempty"`
	Access *AccessInfo `json:"access,omitempty"`
}

// MarshalJSON writes the alarm's own JSON (alarm.Wire) with where and
// access after it. Why a method: alarm.Alarm has a MarshalJSON (its
// seldom used fields are behind a pointer), which the view would
// otherwise take as its own and drop where and access.
func (v alarmView) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		*alarm.Wire
		Where  *Where      `json:"where,omitempty"`
		Access *AccessInfo `json:"access,omitempty"`
	}{v.Alarm.Wire(), v.Where, v.Access})
}

// Viewer classes: which personal data a view carries. The live stream
// caches one encoded frame per class and change.
const (
	viewNamed   = 1 << iota // resident's name
	viewAccess              // door and key information
	viewClasses = 4
)

// mayAccess reports whether p's role may see door codes and key boxes.
func (s *server) mayAccess(p principal) bool {
	if p.user == nil || s.o.Access == nil {
		return false
	}
	for _, r := range s.o.AccessRoles {
		if r == p.user.Role {
			return true
		}
	}
	return false
}

// class is what p may see.
func (s *server) class(p principal) int {
	c := 0
	if s.mayName(p) {
		c |= viewNamed
	}
	if s.mayAccess(p) {
		c |= viewAccess
	}
	return c
}

// view returns what a viewer of class c is sent for a.
func (s *server) view(a *alarm.Alarm, c int) any {
	if c&viewNamed != 0 {
		a = s.named(a)
	} else if a.CallerID() != "" {
		// A SCAIP unit's caller id is the resident's phone number: it
		// follows the name rule. Who may not see the name is still told
		// that a call-back was asked for (cha), not the number.
		c := *a
		c.SetCallerID("")
		a = &c
	}
	v := alarmView{Alarm: a}
	if s.o.Where != nil {
		v.Where = s.o.Where(a, c != 0)
	}
	if c&viewAccess != 0 {
		v.Access = s.o.Access(a)
	}
	if v.Where == nil && v.Access == nil {
		return a
	}
	return v
}

// DeviceWords names device types as staff say them (Swedish, English).
var DeviceWords = map[event.DeviceType]Words{
	event.PersonalTrigger:   {"larmknapp", "call button"},
	event.FixedTrigger:      {"väggknapp", "wall button"},
	event.FallDetector:      {"fallarm", "fall detector"},
	event.BedMonitor:        {"sänglarm", "bed sensor"},
	event.MatSensor:         {"larmmatta", "floor mat sensor"},
	event.DoorSensor:        {"dörrlarm", "door sensor"},
	event.WanderSensor:      {"passagelarm", "exit sensor"},
	event.Occupancy:         {"rörelsevakt", "motion sensor"},
	event.CommLink:          {"larmenhet", "gateway"},
	event.ChairMonitor:      {"stollarm", "chair sensor"},
	event.Tracker:           {"GPS-larm", "GPS tracker"},
	event.SmokeDetector:     {"brandvarnare", "smoke detector"},
	event.WaterLeakDetector: {"vattenlarm", "water leak detector"},
	event.GasDetector:       {"gasvarnare", "gas detector"},
}

// DeviceText is the device in words: its type, then where it sits or is
// worn ("larmknapp på handleden"). An unknown type gives "larm"/"alarm"
// rather than a code.
func DeviceText(t event.DeviceType, placementSV, placementEN string) *Words {
	if placementSV == "" && placementEN == "" {
		// Without a placement the words are the type's own: shared, not
		// allocated per stream frame (read only, like DeviceWords).
		return deviceTextOf[t]
	}
	w, ok := DeviceWords[t]
	if !ok {
		if placementSV == "" && placementEN == "" {
			return nil
		}
		w = Words{"larm", "alarm"}
	}
	if placementSV != "" {
		w.SV += " " + placementSV
	}
	if placementEN != "" {
		w.EN += " " + placementEN
	}
	return &w
}

// deviceTextOf is DeviceText without a placement, one *Words per type.
var deviceTextOf = func() map[event.DeviceType]*Words {
	m := make(map[event.DeviceType]*Words, len(DeviceWords))
	for t, w := range DeviceWords {
		m[t] = &w
	}
	return m
}()
