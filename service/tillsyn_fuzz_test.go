package service

import (
	"strings"
	"testing"
)

// FuzzParseVisit: a visit body from a phone never panics the parser, and
// what it accepts names a site and a resident.
func FuzzParseVisit(f *testing.F) {
	f.Add(`{"site":"solrosen","resident":"r-7f3a"}`)
	f.Add(`{"site":"s","resident":"r","at":"2026-11-24T02:30:00+01:00","note":"sov"}`)
	f.Add(`{"site":"s","resident":"r","colour":"red"}`)
	f.Add(`{"site":"s"}{"resident":"r"}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := parseVisit(strings.NewReader(body))
		if err == nil && (req.Site == "" || req.Resident == "") {
			t.Fatalf("accepted %q as %+v", body, req)
		}
	})
}
