package trackers

import (
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/trackers/trackerstest"
)

// The conformance corpus in testdata/ (see its README), read through the
// type the hub's end-to-end tests share.
type corpusSample = trackerstest.Sample

func loadCorpus(t *testing.T, name string) []corpusSample {
	return trackerstest.Load(t, "testdata", name)
}

// alarmRule is the rule a decoded report's alarm word leads to.
func alarmRule(r Report) string {
	switch r.Alarm {
	case AlarmSOS:
		return "call_button"
	case AlarmFall:
		return "fall"
	}
	return ""
}

func checkPosition(t *testing.T, r Report, e trackerstest.Expect) {
	t.Helper()
	p := r.Position
	switch e.Position {
	case "fix":
		if p == nil || p.Invalid || math.Abs(p.Lat-*e.Lat) > 1e-9 || math.Abs(p.Lon-*e.Lon) > 1e-9 {
			t.Errorf("position %+v, want a valid fix at %v,%v", p, *e.Lat, *e.Lon)
		}
	case "not_valid":
		if p == nil || !p.Invalid {
			t.Errorf("position %+v, want a fix marked not valid", p)
		}
	case "last_known", "none":
		if p != nil {
			t.Errorf("position %+v, want none in the report", p)
		}
	default:
		t.Fatalf("unknown expect.position %q", e.Position)
	}
	if e.Battery != nil && (r.Battery == nil || *r.Battery != *e.Battery) {
		t.Errorf("battery %v, want %d", r.Battery, *e.Battery)
	}
}

// The OsmAnd/Traccar corpus at the decoder: a 400 sample is refused with a
// field-naming *Error, any other decodes to what the nurse needs.
func TestCorpusOsmAndDecode(t *testing.T) {
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	for _, s := range loadCorpus(t, "osmand.json") {
		t.Run(s.Name, func(t *testing.T) {
			var reps []Report
			var err error
			switch {
			case strings.HasPrefix(s.ContentType, "application/json"):
				reps, err = DecodeOsmAndJSON([]byte(s.Body))
			default:
				raw := s.Query
				if s.Body != "" {
					raw = s.Body
				}
				v, perr := url.ParseQuery(raw)
				if perr != nil {
					t.Fatal(perr)
				}
				var r Report
				if r, err = DecodeOsmAnd(v); err == nil {
					reps = []Report{r}
				}
			}
			if s.Expect.Status == 400 {
				var te *Error
				if !errors.As(err, &te) {
					t.Fatalf("error %v, want a refusal naming the field", err)
				}
			} else if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want := s.Expect.Reports
			if want == 0 && s.Expect.Status != 400 {
				want = 1
			}
			if len(reps) != want {
				t.Fatalf("%d reports, want %d", len(reps), want)
			}
			if len(reps) == 0 {
				return
			}
			// The alarm is wherever it is in the body; the position checked
			// is the alarm's report, else the last.
			r := reps[len(reps)-1]
			for _, x := range reps {
				if alarmRule(x) != "" {
					r = x
				}
			}
			if s.Expect.Status == 200 || s.Expect.Status == 400 {
				if got := alarmRule(r); got != s.Expect.Alarm {
					t.Errorf("alarm %q, want %q", got, s.Expect.Alarm)
				}
				checkPosition(t, r, s.Expect)
			}
			if s.UpstreamID != "" && r.ID != s.UpstreamID {
				t.Errorf("id %q, want %q", r.ID, s.UpstreamID)
			}
			for _, x := range reps {
				ev, ok := x.Event("s", "", "d-1", now)
				if !ok {
					t.Fatalf("report %+v made no event", x)
				}
				if err := ev.Validate(); err != nil {
					t.Fatalf("event does not validate: %v", err)
				}
			}
		})
	}
}

// The OwnTracks corpus at the decoder, encrypted samples included.
func TestCorpusOwnTracksDecode(t *testing.T) {
	for _, s := range loadCorpus(t, "owntracks.json") {
		t.Run(s.Name, func(t *testing.T) {
			if _, ok := ParseOwnTracksTopic(s.Topic); !ok {
				t.Fatalf("topic %q", s.Topic)
			}
			var key *[OwnTracksKeySize]byte
			if s.Key != "" {
				key = OwnTracksKey(s.Key)
			}
			r, err := DecodeOwnTracksSealed([]byte(s.Payload), key)
			switch s.Expect.Result {
			case "ok":
				if err != nil || (r.Kind != Location && r.Kind != Transition) {
					t.Fatalf("kind %q err %v, want a location or transition", r.Kind, err)
				}
				checkPosition(t, r, s.Expect)
			case "ignored":
				if err != nil || r.Kind == Location || r.Kind == Transition || r.Kind == Encrypted {
					t.Fatalf("kind %q err %v, want one Vaka ignores", r.Kind, err)
				}
			case "no_key":
				if !errors.Is(err, ErrNoKey) {
					t.Fatalf("err %v, want ErrNoKey", err)
				}
			case "refused":
				var te *Error
				if !errors.As(err, &te) || errors.Is(err, ErrNoKey) {
					t.Fatalf("err %v, want a refusal", err)
				}
			default:
				t.Fatalf("unknown expect.result %q", s.Expect.Result)
			}
			if s.Cleartext != "" {
				if r.Kind == LWT || r.Kind == Location || r.Kind == Transition {
					if !r.Decrypted {
						t.Error("not marked decrypted")
					}
				}
				var env struct{ Data string }
				_ = json.Unmarshal([]byte(s.Payload), &env)
				msg, err := OpenOwnTracks(env.Data, OwnTracksKey(s.Key))
				if err != nil || string(msg) != s.Cleartext {
					t.Errorf("opened %q (%v), want the stated cleartext", msg, err)
				}
			}
			if err != nil && strings.Contains(err.Error(), "58.35") {
				t.Errorf("error %q leaks content", err)
			}
		})
	}
}
