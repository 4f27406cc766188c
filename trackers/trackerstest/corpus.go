// Package trackerstest reads the trackers' conformance corpus
// (trackers/testdata, see its README): samples as the upstream projects
// write them, each with what a nurse must get. The trackers package tests
// its decoders on it and the hub runs the same files end to end, so both
// read it through this one type.
package trackerstest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Expect is what a sample must give.
type Expect struct {
	Status   int      `json:"status"`
	Result   string   `json:"result"`
	Alarm    string   `json:"alarm"`
	Position string   `json:"position"`
	Lat      *float64 `json:"lat"`
	Lon      *float64 `json:"lon"`
	Battery  *int     `json:"battery"`
	Reports  int      `json:"reports"`
}

// Sample is one request or message of the corpus.
type Sample struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	Method      string `json:"method"`
	ContentType string `json:"content_type"`
	Query       string `json:"query"`
	Body        string `json:"body"`
	UpstreamID  string `json:"upstream_id"`
	PriorFix    bool   `json:"prior_fix"`
	Topic       string `json:"topic"`
	Payload     string `json:"payload"`
	Key         string `json:"key"`
	Cleartext   string `json:"cleartext"`
	Expect      Expect `json:"expect"`
	Nurse       string `json:"nurse"`
}

// Load reads the corpus file name from the testdata directory dir. Every
// sample must cite its source and say what the nurse gets.
func Load(t testing.TB, dir, name string) []Sample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []Sample
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, s := range out {
		if s.Source == "" || s.Nurse == "" || s.Expect.Position == "" {
			t.Fatalf("%s: a sample needs its source, what the nurse gets and the position", s.Name)
		}
	}
	return out
}
