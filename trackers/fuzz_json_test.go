package trackers

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeOsmAndJSON: a JSON body never panics; every report it yields
// has an id and becomes an event that validates; a refusal is an *Error
// that names a field, never a value; never more than MaxJSONReports.
func FuzzDecodeOsmAndJSON(f *testing.F) {
	for _, s := range loadCorpusSeeds(f, "testdata/osmand.json") {
		f.Add([]byte(s))
	}
	for _, s := range []string{`[]`, `{}`, `null`, `[{"id":"x"}]`, `{"location":[],"device_id":"x"}`,
		`{"location":{"coords":{"latitude":91,"longitude":0}},"device_id":"x"}`, `{"location":"x","device_id":1}`,
		`[{"id":"x","lat":1e400,"lon":2}]`, `{"location":{"battery":{"level":1e308}},"device_id":"x"}`} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		reps, err := DecodeOsmAndJSON(body)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error %T is not *Error", err)
			}
		}
		if len(reps) > MaxJSONReports {
			t.Fatalf("%d reports", len(reps))
		}
		for _, r := range reps {
			if r.ID == "" {
				t.Fatal("report without id")
			}
			ev, ok := r.Event("site-a", "", "klocka-1", now)
			if !ok {
				t.Fatalf("report without an event: %+v", r)
			}
			if err := ev.Validate(); err != nil {
				t.Fatalf("event does not validate: %v", err)
			}
		}
	})
}

// FuzzDecodeOwnTracksSealed: the encrypted envelope never panics, with or
// without a key; what opens decodes like a plain payload.
func FuzzDecodeOwnTracksSealed(f *testing.F) {
	for _, s := range loadCorpusSeeds(f, "testdata/owntracks.json") {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"_type":"encrypted","data":"AAAA"}`), true)
	f.Add([]byte(`{"_type":"encrypted","data":""}`), true)
	key := OwnTracksKey("mysecreTpass01")
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, payload []byte, withKey bool) {
		k := key
		if !withKey {
			k = nil
		}
		r, err := DecodeOwnTracksSealed(payload, k)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		if r.Kind == Encrypted {
			t.Fatal("an encrypted report came out sealed without an error")
		}
		if ev, ok := r.Event("site-a", "", "tel-1", now); ok {
			if err := ev.Validate(); err != nil {
				t.Fatalf("event does not validate: %v", err)
			}
		}
	})
}

// loadCorpusSeeds returns the bodies and payloads of a corpus file.
func loadCorpusSeeds(f *testing.F, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		for _, k := range []string{`"body": `, `"payload": `} {
			if v, ok := strings.CutPrefix(line, k); ok {
				if s, err := unquoteJSON(strings.TrimSuffix(v, ",")); err == nil && s != "" {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func unquoteJSON(s string) (string, error) {
	var out string
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}
