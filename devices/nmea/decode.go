package nmea

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	gonmea "github.com/adrianmo/go-nmea"

	"github.com/vaka-care/vaka/event"
)

// DefaultUERE is the user equivalent range error, in metres, that HDOP is
// multiplied by to give the accuracy radius. 5 m is a common figure for a
// single-frequency consumer receiver under open sky; it is a rough 1-sigma
// estimate, not a guarantee, and the hub's geofence rules treat it so.
const DefaultUERE = 5.0

// MaxLine bounds one sentence (NMEA 0183 allows 82 characters).
const MaxLine = 256

// Errors of Decoder.Line.
var (
	ErrBadSentence = errors.New("nmea: unparsable sentence")
	ErrNoFix       = errors.New("nmea: no fix")
	// ErrUnsupported is a sentence with a valid checksum of a type the
	// parser does not know (GBS, PUBX, vendor sentences): nothing was
	// corrupted, so it is counted apart from ErrBadSentence and never
	// logged as a fault.
	ErrUnsupported = errors.New("nmea: unsupported sentence type")
)

// Decoder turns $GPRMC/$GPGGA (and $GN…, $GL… talkers) into position
// events. GGA gives the fix quality and HDOP; RMC gives a valid position,
// date and time. A position is emitted from a valid RMC, with accuracy =
// HDOP × UERE from a GGA of the same epoch (±2 s) whose fix quality is not
// 0; without one the accuracy is 0, which means unknown.
type Decoder struct {
	UERE float64
	// MinInterval rate-limits positions by GPS time (a receiver sends one
	// a second); 0 emits every valid fix.
	MinInterval time.Duration

	gga      *gonmea.GGA
	ggaAt    time.Time
	lastEmit time.Time

	// Counters. Bad counts corrupt sentences (checksum, framing, fields
	// out of range); Unsupported valid ones of a type not parsed.
	Sentences, Bad, NoFix, Positions, Unsupported int64
}

// Line decodes one sentence. It returns a position event (without device
// and type), nil when the sentence carries nothing to send (another type,
// a GGA, a rate-limited fix), or an error wrapping ErrBadSentence (broken
// checksum, malformed field, too long), ErrUnsupported or ErrNoFix.
func (d *Decoder) Line(line string) (*event.Event, error) {
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, nil
	}
	d.Sentences++
	if len(line) > MaxLine {
		d.Bad++
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadSentence, MaxLine)
	}
	s, err := gonmea.Parse(line)
	var ns *gonmea.NotSupportedError
	if errors.As(err, &ns) {
		// go-nmea checks the checksum before it looks up the type.
		d.Unsupported++
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, safePrefix(ns.Prefix))
	}
	if err != nil {
		d.Bad++
		return nil, fmt.Errorf("%w: %v", ErrBadSentence, err)
	}
	switch v := s.(type) {
	case gonmea.GGA:
		if v.FixQuality == gonmea.Invalid {
			d.gga = nil
			d.NoFix++
			return nil, ErrNoFix
		}
		d.gga = &v
		d.ggaAt = clockOf(v.Time)
		return nil, nil
	case gonmea.RMC:
		if v.Validity != gonmea.ValidRMC {
			d.NoFix++
			return nil, ErrNoFix
		}
		if !validCoord(v.Latitude, 90) || !validCoord(v.Longitude, 180) {
			d.Bad++
			return nil, fmt.Errorf("%w: coordinates out of range", ErrBadSentence)
		}
		at := gonmea.DateTime(2000, v.Date, v.Time)
		if at.IsZero() {
			d.Bad++
			return nil, fmt.Errorf("%w: RMC without a valid date and time", ErrBadSentence)
		}
		if d.MinInterval > 0 && !d.lastEmit.IsZero() && at.Sub(d.lastEmit) < d.MinInterval && at.After(d.lastEmit) {
			return nil, nil
		}
		uere := d.UERE
		if uere <= 0 {
			uere = DefaultUERE
		}
		pos := &event.Position{Lat: v.Latitude, Lon: v.Longitude}
		if d.gga != nil && absDur(sinceMidnight(clockOf(v.Time), d.ggaAt)) <= 2*time.Second &&
			d.gga.HDOP > 0 && !math.IsNaN(d.gga.HDOP) && !math.IsInf(d.gga.HDOP, 0) {
			pos.Accuracy = math.Round(d.gga.HDOP*uere*10) / 10
		}
		d.lastEmit = at
		d.Positions++
		return &event.Event{Type: event.Tracker, Position: pos, Time: at}, nil
	}
	return nil, nil // another sentence type: not used
}

// safePrefix is a sentence type fit for an error message.
func safePrefix(p string) string {
	if len(p) > 8 {
		p = p[:8]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, p)
}

func validCoord(v, lim float64) bool { return !math.IsNaN(v) && v >= -lim && v <= lim }

// clockOf is a time of day as a time on day zero.
func clockOf(t gonmea.Time) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return time.Date(0, 1, 1, t.Hour, t.Minute, t.Second, t.Millisecond*1e6, time.UTC)
}

// sinceMidnight is a-b for two times of day, across midnight.
func sinceMidnight(a, b time.Time) time.Duration {
	d := a.Sub(b)
	for d > 12*time.Hour {
		d -= 24 * time.Hour
	}
	for d < -12*time.Hour {
		d += 24 * time.Hour
	}
	return d
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
