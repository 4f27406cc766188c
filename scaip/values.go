package scaip

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The value checks return errors that name the rule broken, never the value.

func alnum(lo, hi int) func(string) (string, error) {
	return func(v string) (string, error) {
		if len(v) < lo || len(v) > hi {
			return "", fmt.Errorf("must be %d–%d letters or digits", lo, hi)
		}
		for i := 0; i < len(v); i++ {
			c := v[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return "", fmt.Errorf("must be %d–%d letters or digits", lo, hi)
			}
		}
		return v, nil
	}
}

// digits accepts lo–hi ASCII digits and left-pads to pad (0: as sent).
func digits(lo, hi, pad int) func(string) (string, error) {
	return func(v string) (string, error) {
		if len(v) < lo || len(v) > hi {
			return "", fmt.Errorf("must be %d–%d digits", lo, hi)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return "", fmt.Errorf("must be %d–%d digits", lo, hi)
			}
		}
		if len(v) < pad {
			v = strings.Repeat("0", pad-len(v)) + v
		}
		return v, nil
	}
}

func digitRange(lo, hi byte) func(string) (string, error) {
	return func(v string) (string, error) {
		if len(v) != 1 || v[0] < '0'+lo || v[0] > '0'+hi {
			return "", fmt.Errorf("must be one digit %d–%d", lo, hi)
		}
		return v, nil
	}
}

func oneOf(allowed ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		for _, a := range allowed {
			if v == a {
				return v, nil
			}
		}
		return "", fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func version(v string) (string, error) {
	if len(v) != 5 || v[2] != '.' {
		return "", errors.New("must be NN.NN")
	}
	for _, i := range []int{0, 1, 3, 4} {
		if v[i] < '0' || v[i] > '9' {
			return "", errors.New("must be NN.NN")
		}
	}
	return v, nil
}

// printable is printable ASCII (space to tilde).
func printable(lo, hi int) func(string) (string, error) {
	return func(v string) (string, error) {
		if len(v) < lo || len(v) > hi {
			return "", fmt.Errorf("must be %d–%d printable ASCII characters", lo, hi)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return "", fmt.Errorf("must be printable ASCII")
			}
		}
		return v, nil
	}
}

// text is UTF-8 (checked before) of at most n characters, without control
// characters.
func text(n int) func(string) (string, error) {
	return func(v string) (string, error) {
		if utf8.RuneCountInString(v) > n {
			return "", fmt.Errorf("longer than %d characters", n)
		}
		for _, r := range v {
			if unicode.IsControl(r) && r != '\t' {
				return "", errors.New("control characters are not allowed")
			}
		}
		return v, nil
	}
}

// callerMedia are the caller-id prefixes the standard names, plus tel:,
// which units in the field use for the same thing as gsm:.
var callerMedia = []string{"gsm:", "sip:", "sip-pp:", "no-voice:", "tel:"}

func callerID(v string) (string, error) {
	if _, err := printable(1, 64)(v); err != nil {
		return "", errors.New("must be medium:id in at most 64 printable ASCII characters")
	}
	for _, m := range callerMedia {
		if strings.HasPrefix(v, m) {
			return v, nil
		}
	}
	return "", errors.New("must start with a medium (gsm:, sip:, sip-pp: or no-voice:)")
}

// MediumNumber returns the part of a caller id after its medium and
// whether it is something staff can call (not no-voice:).
func MediumNumber(crd string) (string, bool) {
	i := strings.IndexByte(crd, ':')
	if i < 0 {
		return "", false
	}
	m, n := crd[:i], crd[i+1:]
	return n, m != "no-voice" && n != ""
}

func geoText(v string) (string, error) {
	if _, _, err := parseGeo(v); err != nil {
		return "", err
	}
	return v, nil
}

func parseGeo(v string) (lat, lon float64, err error) {
	a, b, ok := strings.Cut(v, ",")
	if !ok || len(v) > 40 {
		return 0, 0, errors.New(`must be "lat,lon" in decimal degrees`)
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil || math.IsNaN(lat) || math.IsNaN(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return 0, 0, errors.New(`must be "lat,lon" in decimal degrees within range`)
	}
	return lat, lon, nil
}

// timLayouts are the ISO 8601 forms with an offset that units send.
var timLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "20060102T150405Z0700", "2006-01-02T15:04:05Z0700"}

func parseTim(v string) (time.Time, error) {
	for _, l := range timLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("must be an ISO 8601 time with a UTC offset")
}

func timText(v string) (string, error) {
	if len(v) > 40 {
		return "", errors.New("too long for a time")
	}
	if _, err := parseTim(v); err != nil {
		return "", err
	}
	return v, nil
}

func ggaText(v string) (string, error) {
	if _, err := printable(1, 100)(v); err != nil {
		return "", errors.New("must be one NMEA sentence")
	}
	if _, err := parseGGA(v); err != nil {
		return "", err
	}
	return v, nil
}

// ggaFix is what Vaka uses of a GGA sentence.
type ggaFix struct {
	Lat, Lon float64
	Valid    bool // fix quality > 0
	HDOP     float64
}

// parseGGA reads $xxGGA,hhmmss.ss,ddmm.mm,N,dddmm.mm,E,q,nn,hdop,alt,M,…[*cs].
// A checksum, when present, must match.
func parseGGA(s string) (ggaFix, error) {
	var f ggaFix
	bad := errors.New("not a valid NMEA GGA sentence")
	if len(s) < 7 || s[0] != '$' || s[3:6] != "GGA" {
		return f, bad
	}
	body := s[1:]
	if i := strings.IndexByte(body, '*'); i >= 0 {
		want, err := strconv.ParseUint(body[i+1:], 16, 8)
		if err != nil || len(body[i+1:]) != 2 {
			return f, bad
		}
		var sum byte
		for j := 0; j < i; j++ {
			sum ^= body[j]
		}
		if byte(want) != sum {
			return f, errors.New("NMEA checksum does not match")
		}
		body = body[:i]
	}
	p := strings.Split(body, ",")
	if len(p) < 9 {
		return f, bad
	}
	q, err := strconv.Atoi(p[6])
	if err != nil || q < 0 || q > 9 {
		return f, bad
	}
	f.Valid = q > 0
	if p[2] == "" && p[4] == "" {
		if f.Valid {
			return f, bad
		}
		return f, nil // no fix, said so
	}
	lat, err1 := nmeaDeg(p[2], 2)
	lon, err2 := nmeaDeg(p[4], 3)
	if err1 != nil || err2 != nil {
		return f, bad
	}
	switch p[3] {
	case "N":
	case "S":
		lat = -lat
	default:
		return f, bad
	}
	switch p[5] {
	case "E":
	case "W":
		lon = -lon
	default:
		return f, bad
	}
	if lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return f, bad
	}
	f.Lat, f.Lon = lat, lon
	if h, err := strconv.ParseFloat(p[8], 64); err == nil && h > 0 && h < 100 {
		f.HDOP = h
	}
	return f, nil
}

// nmeaDeg turns (d)ddmm.mmmm into degrees.
func nmeaDeg(v string, degDigits int) (float64, error) {
	if len(v) < degDigits+2 {
		return 0, errors.New("short")
	}
	d, err := strconv.Atoi(v[:degDigits])
	if err != nil || d < 0 {
		return 0, errors.New("degrees")
	}
	m, err := strconv.ParseFloat(v[degDigits:], 64)
	if err != nil || m < 0 || m >= 60 || math.IsNaN(m) {
		return 0, errors.New("minutes")
	}
	return float64(d) + m/60, nil
}
