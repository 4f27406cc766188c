package trackers

import (
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vaka-care/vaka/event"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// DecodeOsmAnd parses the query or form parameters of one OsmAnd/Traccar
// report: id (or deviceid), lat and lon (or location=lat,lon), timestamp
// (epoch seconds or milliseconds, or RFC 3339), and optional speed,
// altitude, accuracy, batt and alarm. Unknown parameters (bearing, hdop,
// charge …) are ignored, as Traccar does.
//
// A report without a position is accepted, as Traccar accepts one: a
// watch indoors sends cell or wifi data only, and its SOS must still raise
// (the hub attaches the device's last known fix, marked as such); without
// an alarm it is a sign of life for supervision. valid=false (Traccar:
// anything but "true" or "1") keeps the fix but marks it Invalid, so it is
// shown and never moves a geofence.
func DecodeOsmAnd(v url.Values) (Report, error) {
	r := Report{Source: OsmAnd, Kind: Location}
	size := 0
	for k, vs := range v {
		size += len(k)
		for _, s := range vs {
			size += len(s)
		}
	}
	if size > MaxPayload {
		return Report{}, bad("", "request of %d bytes exceeds %d", size, MaxPayload)
	}
	r.ID = v.Get("id")
	if r.ID == "" {
		r.ID = v.Get("deviceid")
	}
	if r.ID == "" {
		return Report{}, bad("id", "missing")
	}
	if len(r.ID) > 128 || !printable(r.ID) {
		return Report{}, bad("id", "longer than 128 characters or not printable")
	}
	lat, lon := v.Get("lat"), v.Get("lon")
	if loc := v.Get("location"); loc != "" && lat == "" && lon == "" {
		var ok bool
		if lat, lon, ok = strings.Cut(loc, ","); !ok {
			return Report{}, bad("location", "want lat,lon")
		}
	}
	switch {
	case lat == "" && lon == "":
	case lat == "":
		return Report{}, bad("lat", "missing")
	case lon == "":
		return Report{}, bad("lon", "missing")
	default:
		la, err1 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
		lo, err2 := strconv.ParseFloat(strings.TrimSpace(lon), 64)
		if err1 != nil {
			return Report{}, bad("lat", "not a number")
		}
		if err2 != nil {
			return Report{}, bad("lon", "not a number")
		}
		if err := checkLatLon("lat", "lon", la, lo); err != nil {
			return Report{}, err
		}
		acc, err := optFloat(v, "accuracy")
		if err != nil {
			return Report{}, err
		}
		a, err := accuracy("accuracy", acc)
		if err != nil {
			return Report{}, err
		}
		r.Position = &event.Position{Lat: la, Lon: lo, Accuracy: a}
		if vs, ok := v["valid"]; ok && len(vs) > 0 && !(strings.EqualFold(vs[0], "true") || vs[0] == "1") {
			r.Position.Invalid = true
		}
	}
	if ts := v.Get("timestamp"); ts != "" {
		t, err := parseTimestamp(ts)
		if err != nil {
			return Report{}, err
		}
		r.Time = t
	}
	var err error
	if r.Speed, err = optFloat(v, "speed"); err != nil {
		return Report{}, err
	}
	if r.Altitude, err = optFloat(v, "altitude"); err != nil {
		return Report{}, err
	}
	batt, err := optFloat(v, "batt")
	if err != nil {
		r.Ignored = append(r.Ignored, "batt")
	} else {
		var ok bool
		if r.Battery, ok = battery(batt); !ok {
			r.Ignored = append(r.Ignored, "batt")
		}
	}
	if a := v.Get("alarm"); a != "" {
		if len(a) > 32 || !printable(a) {
			return Report{}, bad("alarm", "not an alarm word")
		}
		r.Alarm = a
	}
	return r, nil
}

// optFloat parses an optional finite number.
func optFloat(v url.Values, name string) (*float64, error) {
	s := v.Get(name)
	if s == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, bad(name, "not a number")
	}
	return &f, nil
}

// parseTimestamp accepts epoch seconds or milliseconds (integer or
// fractional), RFC 3339, and Traccar's "2006-01-02 15:04:05" (UTC).
func parseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return epoch("timestamp", f)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 5000 {
				return time.Time{}, bad("timestamp", "out of range")
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, bad("timestamp", "want epoch seconds or an ISO 8601 time")
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
