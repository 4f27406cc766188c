package trackers

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/vaka-care/vaka/event"
)

// OwnTracks topics: a client publishes on owntracks/<user>/<device>, and
// region transitions on owntracks/<user>/<device>/event.
const (
	OwnTracksRoot = "owntracks"
	// OwnTracksEventLeaf is the sub-topic of transitions.
	OwnTracksEventLeaf = "event"
)

// OwnTracksTopic is a parsed OwnTracks topic.
type OwnTracksTopic struct {
	User, Device string
	// Leaf is "" for the device's own topic (locations, LWT), "event" for
	// transitions, or another sub-topic (cmd, info, waypoints …).
	Leaf string
}

// ParseOwnTracksTopic splits owntracks/<user>/<device>[/<leaf>]. User and
// device must be valid Vaka names (letters, digits, - _ .).
func ParseOwnTracksTopic(topic string) (OwnTracksTopic, bool) {
	rest, ok := strings.CutPrefix(topic, OwnTracksRoot+"/")
	if !ok {
		return OwnTracksTopic{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return OwnTracksTopic{}, false
	}
	if event.ValidName(parts[0]) != nil || event.ValidName(parts[1]) != nil {
		return OwnTracksTopic{}, false
	}
	t := OwnTracksTopic{User: parts[0], Device: parts[1]}
	if len(parts) == 3 {
		if parts[2] == "" {
			return OwnTracksTopic{}, false
		}
		t.Leaf = parts[2]
	}
	return t, true
}

// Key is the "<user>/<device>" that the hub config maps to a device.
func (t OwnTracksTopic) Key() string { return t.User + "/" + t.Device }

type owntracksMsg struct {
	Type  *string  `json:"_type"`
	Lat   *float64 `json:"lat"`
	Lon   *float64 `json:"lon"`
	Acc   *float64 `json:"acc"`
	Alt   *float64 `json:"alt"`
	Vel   *float64 `json:"vel"`
	Batt  *float64 `json:"batt"`
	TID   *string  `json:"tid"`
	Tst   *float64 `json:"tst"`
	Event *string  `json:"event"`
	Data  *string  `json:"data"`
}

// DecodeOwnTracks parses one OwnTracks JSON message. Unknown fields are
// allowed (the app sends many); _type location and transition need lat,
// lon and tst; lwt needs nothing; other types decode to Kind Other.
func DecodeOwnTracks(payload []byte) (Report, error) {
	r := Report{Source: OwnTracks}
	if len(payload) > MaxPayload {
		return Report{}, bad("", "payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	var m owntracksMsg
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&m); err != nil {
		var ute *json.UnmarshalTypeError
		if errorsAs(err, &ute) && ute.Field != "" {
			return Report{}, bad(ute.Field, "wrong type, want %s", ute.Type)
		}
		return Report{}, bad("", "not a JSON object")
	}
	if rest := bytes.TrimSpace(payload[dec.InputOffset():]); len(rest) > 0 {
		return Report{}, bad("", "trailing data after the JSON object")
	}
	if m.Type == nil {
		return Report{}, bad("_type", "missing")
	}
	switch *m.Type {
	case "location":
		r.Kind = Location
	case "transition":
		r.Kind = Transition
	case "lwt":
		r.Kind = LWT
		return r, nil
	case "encrypted":
		if m.Data == nil || *m.Data == "" {
			return Report{}, bad("data", "missing in an encrypted message")
		}
		r.Kind, r.Sealed = Encrypted, *m.Data
		return r, nil
	default:
		r.Kind = Other
		return r, nil
	}
	if m.Lat == nil {
		return Report{}, bad("lat", "missing")
	}
	if m.Lon == nil {
		return Report{}, bad("lon", "missing")
	}
	if err := checkLatLon("lat", "lon", *m.Lat, *m.Lon); err != nil {
		return Report{}, err
	}
	acc, err := accuracy("acc", m.Acc)
	if err != nil {
		return Report{}, err
	}
	r.Position = &event.Position{Lat: *m.Lat, Lon: *m.Lon, Accuracy: acc}
	if m.Tst == nil {
		return Report{}, bad("tst", "missing")
	}
	if r.Time, err = epoch("tst", *m.Tst); err != nil {
		return Report{}, err
	}
	var ok bool
	if r.Battery, ok = battery(m.Batt); !ok {
		r.Ignored = append(r.Ignored, "batt")
	}
	if r.Altitude, ok = finite(m.Alt); !ok {
		r.Ignored = append(r.Ignored, "alt")
	}
	if r.Speed, ok = finite(m.Vel); !ok {
		r.Ignored = append(r.Ignored, "vel")
	}
	if m.TID != nil && len(*m.TID) <= 8 {
		r.TID = *m.TID
	}
	if r.Kind == Transition {
		if m.Event == nil || (*m.Event != "enter" && *m.Event != "leave") {
			return Report{}, bad("event", "want enter or leave")
		}
		r.Crossing = *m.Event
	}
	return r, nil
}
