package trackers

import (
	"bytes"
	"encoding/json"
	"math"
	"net/url"
	"strconv"

	"github.com/vaka-care/vaka/event"
)

// JSON bodies of the Traccar/OsmAnd protocol. Traccar Client has posted
// two shapes, and Traccar's OsmAnd decoder takes a body as JSON when its
// Content-Type starts with application/json:
//
//   - Traccar Client 9.x (on a background-geolocation library) posts one
//     object: {"location": {"timestamp": ISO 8601, "coords": {"latitude",
//     "longitude", "accuracy", "speed" (m/s, -1 unknown), "heading",
//     "altitude"}, "is_moving", "event", "battery": {"level" 0–1 (-1
//     unknown), "is_charging"}, "extras": {…}, "mock"}, "device_id": "…"}.
//     A location without "coords" has no fix (Traccar then uses the last
//     known position). The alarm is "location.alarm" or
//     "location.extras.alarm".
//   - The Traccar Client SDK (uploadJson) posts an array of flat objects
//     with the query parameters' names and meanings: [{"id", "lat", "lon",
//     "timestamp" (epoch s), "accuracy", "speed" (knots), "batt", "alarm" …}].
//
// Both are decoded into the same Report as a query string, so one set of
// rules (alarm words, accuracy, valid flag) applies to every shape.

// MaxJSONBody is the largest JSON body accepted: a phone that was offline
// sends its buffered positions in one array.
const MaxJSONBody = 256 << 10

// MaxJSONReports bounds the reports in one JSON body.
const MaxJSONReports = 500

// knotsPerMps converts the background-geolocation speed (m/s) to the
// knots OsmAnd reports use, so Report.Speed has one unit per protocol.
const knotsPerMps = 1.943844

// DecodeOsmAndJSON parses a JSON body into its reports, oldest first as
// sent. A refusal names the field (with the element's index for an array),
// never a value.
//
// An array is decoded element by element: a malformed element is refused
// (its error is returned along with the good reports), so one bad position
// in a phone's buffer never loses the SOS next to it.
func DecodeOsmAndJSON(body []byte) ([]Report, error) {
	if len(body) > MaxJSONBody {
		return nil, bad("", "body of %d bytes exceeds %d", len(body), MaxJSONBody)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, bad("", "empty JSON body")
	}
	if body[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(body, &elems); err != nil {
			return nil, bad("", "not a JSON array of reports")
		}
		if len(elems) == 0 {
			return nil, bad("", "empty array")
		}
		if len(elems) > MaxJSONReports {
			return nil, bad("", "%d reports in one body exceed %d", len(elems), MaxJSONReports)
		}
		var out []Report
		var first error
		for i, el := range elems {
			rs, err := decodeJSONObject(el)
			if err != nil {
				if first == nil {
					first = withIndex(err, i)
				}
				continue
			}
			out = append(out, rs...)
		}
		if len(out) > MaxJSONReports {
			return out[:MaxJSONReports], bad("", "more than %d reports in one body", MaxJSONReports)
		}
		return out, first
	}
	return decodeJSONObject(body)
}

func withIndex(err error, i int) error {
	if te, ok := err.(*Error); ok {
		f := "[" + strconv.Itoa(i) + "]"
		if te.Field != "" {
			f += "." + te.Field
		}
		return &Error{Field: f, Reason: te.Reason}
	}
	return err
}

// decodeJSONObject decodes one object: the location-object shape when it
// has "location", else a flat object of query parameters.
func decodeJSONObject(raw []byte) ([]Report, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return nil, bad("", "not a JSON object")
	}
	if loc, ok := top["location"]; ok && len(bytes.TrimSpace(loc)) > 0 && (bytes.TrimSpace(loc)[0] == '{' || bytes.TrimSpace(loc)[0] == '[') {
		return decodeLocationShape(top, loc)
	}
	v := url.Values{}
	for k, m := range top {
		if s, ok := scalar(m); ok {
			v.Set(k, s)
		}
	}
	r, err := DecodeOsmAnd(v)
	if err != nil {
		return nil, err
	}
	return []Report{r}, nil
}

// scalar turns a JSON string, number or bool into its query-string form;
// objects, arrays and null are skipped (as unknown parameters are).
func scalar(m json.RawMessage) (string, bool) {
	m = bytes.TrimSpace(m)
	if len(m) == 0 {
		return "", false
	}
	switch m[0] {
	case '"':
		var s string
		if json.Unmarshal(m, &s) != nil {
			return "", false
		}
		return s, true
	case 't', 'f':
		var b bool
		if json.Unmarshal(m, &b) != nil {
			return "", false
		}
		return strconv.FormatBool(b), true
	case '{', '[', 'n':
		return "", false
	default:
		var n json.Number
		if json.Unmarshal(m, &n) != nil {
			return "", false
		}
		return n.String(), true
	}
}

type bgLocation struct {
	Timestamp *string `json:"timestamp"`
	Coords    *struct {
		Latitude  *float64 `json:"latitude"`
		Longitude *float64 `json:"longitude"`
		Accuracy  *float64 `json:"accuracy"`
		Speed     *float64 `json:"speed"`
		Heading   *float64 `json:"heading"`
		Altitude  *float64 `json:"altitude"`
	} `json:"coords"`
	Battery *struct {
		Level      *float64 `json:"level"`
		IsCharging *bool    `json:"is_charging"`
	} `json:"battery"`
	Mock   *bool                      `json:"mock"`
	Alarm  *string                    `json:"alarm"`
	Extras map[string]json.RawMessage `json:"extras"`
}

// decodeLocationShape decodes {"location": {…} or [{…}], "device_id": …}.
func decodeLocationShape(top map[string]json.RawMessage, loc json.RawMessage) ([]Report, error) {
	id, _ := scalar(top["device_id"])
	if id == "" {
		return nil, bad("device_id", "missing")
	}
	if len(id) > 128 || !printable(id) {
		return nil, bad("device_id", "longer than 128 characters or not printable")
	}
	var locs []json.RawMessage
	if bytes.TrimSpace(loc)[0] == '[' {
		if err := json.Unmarshal(loc, &locs); err != nil || len(locs) == 0 {
			return nil, bad("location", "not an array of locations")
		}
		if len(locs) > MaxJSONReports {
			return nil, bad("location", "%d locations exceed %d", len(locs), MaxJSONReports)
		}
	} else {
		locs = []json.RawMessage{loc}
	}
	out := make([]Report, 0, len(locs))
	var first error
	for i, l := range locs {
		r, err := decodeBGLocation(id, l)
		if err != nil {
			if len(locs) > 1 {
				err = withIndex(err, i)
			}
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, r)
	}
	return out, first
}

func decodeBGLocation(id string, raw json.RawMessage) (Report, error) {
	r := Report{Source: OsmAnd, Kind: Location, ID: id}
	var l bgLocation
	if err := json.Unmarshal(raw, &l); err != nil {
		var ute *json.UnmarshalTypeError
		if errorsAs(err, &ute) && ute.Field != "" {
			return Report{}, bad("location."+ute.Field, "wrong type, want %s", ute.Type)
		}
		return Report{}, bad("location", "not a JSON object")
	}
	if l.Timestamp != nil && *l.Timestamp != "" {
		t, err := parseTimestamp(*l.Timestamp)
		if err != nil {
			return Report{}, bad("location.timestamp", "want an ISO 8601 time")
		}
		r.Time = t
	}
	if c := l.Coords; c != nil {
		switch {
		case c.Latitude == nil:
			return Report{}, bad("location.coords.latitude", "missing")
		case c.Longitude == nil:
			return Report{}, bad("location.coords.longitude", "missing")
		}
		if err := checkLatLon("location.coords.latitude", "location.coords.longitude", *c.Latitude, *c.Longitude); err != nil {
			return Report{}, err
		}
		acc, err := accuracy("location.coords.accuracy", c.Accuracy)
		if err != nil {
			return Report{}, err
		}
		r.Position = &event.Position{Lat: *c.Latitude, Lon: *c.Longitude, Accuracy: acc}
		if l.Mock != nil && *l.Mock {
			// A mock location is set by an app on the phone, not measured.
			r.Position.Invalid = true
		}
		if c.Speed != nil && *c.Speed >= 0 && !math.IsInf(*c.Speed, 0) {
			kn := *c.Speed * knotsPerMps
			r.Speed = &kn
		}
		var ok bool
		if r.Altitude, ok = finite(c.Altitude); !ok {
			r.Ignored = append(r.Ignored, "altitude")
		}
	}
	if b := l.Battery; b != nil && b.Level != nil && *b.Level >= 0 {
		if *b.Level > 1 {
			r.Ignored = append(r.Ignored, "battery.level")
		} else {
			pct := *b.Level * 100
			var ok bool
			if r.Battery, ok = battery(&pct); !ok {
				r.Ignored = append(r.Ignored, "battery.level")
			}
		}
	}
	alarm := ""
	if l.Alarm != nil {
		alarm = *l.Alarm
	} else if a, ok := l.Extras["alarm"]; ok {
		alarm, _ = scalar(a)
	}
	if alarm != "" {
		if len(alarm) > 32 || !printable(alarm) {
			return Report{}, bad("location.alarm", "not an alarm word")
		}
		r.Alarm = alarm
	}
	return r, nil
}
