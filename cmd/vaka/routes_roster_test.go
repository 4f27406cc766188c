package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/internal/testenv"
)

// rosterConfig writes a hub config with staff natt1..natt3, dag1, a lead
// and an admin, a roster file, and the given routing section.
func rosterConfig(t *testing.T, routing, rosterCSV string) string {
	t.Helper()
	dir := t.TempDir()
	h := testenv.Hash(t, "x-secret-1")
	var users strings.Builder
	for _, u := range [][2]string{{"natt1", "staff"}, {"natt2", "staff"}, {"natt3", "staff"}, {"dag1", "staff"}, {"lead", "lead"}, {"admin", "admin"}, {"tekn", "technician"}} {
		fmt.Fprintf(&users, "  - {username: %s, name: %s, role: %s, password_hash: %q}\n", u[0], u[0], u[1], h)
	}
	cfg := fmt.Sprintf("data_dir: %s\nmqtt: {tcp: \"127.0.0.1:0\"}\nhttp: {address: \"127.0.0.1:0\"}\nroster: {file: roster.csv}\n"+
		"sites:\n  - id: solrosen\n    night: {start: \"22:00\", end: \"07:00\"}\n    units: [{id: avd-a}, {id: avd-b}]\nusers:\n%s%s",
		filepath.Join(dir, "data"), users.String(), routing)
	if err := os.WriteFile(filepath.Join(dir, "roster.csv"), []byte(rosterCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const testRoster = `user,site,unit,date,start,end
natt1,solrosen,avd-a,daily,22:00,07:00
natt2,solrosen,avd-b,daily,22:00,07:00
natt3,solrosen,avd-a,2026-10-24,22:00,07:00
dag1,solrosen,,daily,07:00,22:00
`

func routesOut(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"routes", "test"}, args...), nil, &stdout, &stderr); code != 0 {
		t.Fatalf("routes test %v: exit %d: %s", args, code, stderr.String())
	}
	return stdout.String()
}

// Without a routing section, a care alarm wakes the staff on duty by the
// roster for its unit at its time (the DST nights included), never the
// lead, the admin or the technician; with nobody on duty, every staff
// member.
func TestRoutesTestDefaultRouteUsesRoster(t *testing.T) {
	path := rosterConfig(t, "", testRoster)
	for _, c := range []struct {
		at, unit, want string
	}{
		// Spring night: 02:30+02:00 is 01:30 CET, before the clocks jump.
		{"2026-03-29T02:30+02:00", "avd-a", "alla     natt1  (on duty by the roster)"},
		{"2026-03-29T02:30+02:00", "avd-b", "alla     natt2  (on duty by the roster)"},
		{"2026-03-29T06:59+02:00", "avd-a", "alla     natt1  (on duty by the roster)"},
		{"2026-03-29T07:00+02:00", "avd-a", "alla     dag1  (on duty by the roster)"},
		// Autumn night: 06:30 CET is 10.5 h after 22:00 CEST.
		{"2026-10-25T06:30+01:00", "avd-a", "alla     natt1, natt3  (on duty by the roster)"},
		{"2026-10-25T23:00+01:00", "avd-a", "alla     natt1  (on duty by the roster)"},
	} {
		out := routesOut(t, "--config", path, "--at", c.at, "site=solrosen", "unit="+c.unit, "kind=call")
		if !hasWords(out, c.want) {
			t.Errorf("at %s unit %s:\n%s\nwant a line with %q", c.at, c.unit, out, c.want)
		}
		for _, never := range []string{"lead", "admin", "tekn"} {
			if strings.Contains(out, never) {
				t.Errorf("at %s: %s is woken:\n%s", c.at, never, out)
			}
		}
	}
	// Another site has no roster: every staff member, said so.
	out := routesOut(t, "--config", path, "--at", "2026-01-15T03:00+01:00", "site=annan", "kind=call")
	if !hasWords(out, "natt1, natt2, natt3, dag1  (nobody on duty by the roster: everyone listed)") {
		t.Errorf("fallback:\n%s", out)
	}
	if !strings.Contains(out, "alarm {site=annan kind=call} at 2026-01-15 03:00 CET") {
		t.Errorf("header:\n%s", out)
	}
}

// A route tree can name the roster: night alarms to whoever is on duty,
// escalating to the lead.
func TestRoutesTestRosterReceiverInTree(t *testing.T) {
	routing := `routing:
  receivers:
    - {name: natt, roster: on_duty}
    - {name: lead, users: [lead]}
  route:
    receiver: natt
    escalate: [lead]
`
	path := rosterConfig(t, routing, testRoster)
	out := routesOut(t, "--config", path, "--at", "2026-03-29T02:30+02:00", "site=solrosen", "unit=avd-b", "kind=fall")
	for _, want := range []string{"now       tier 0  natt  natt2  (on duty by the roster)", "after 1m0s  tier 1  lead  lead"} {
		if !hasWords(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	// Nobody on duty and no fallback users: said loudly.
	out = routesOut(t, "--config", path, "--at", "2026-01-15T03:00+01:00", "site=annan", "kind=fall")
	if !strings.Contains(out, "NOBODY: nobody on duty") {
		t.Errorf("empty roster:\n%s", out)
	}
}

// A roster file error names the roster file, its line and column.
func TestRosterFileErrorNamesFileLineField(t *testing.T) {
	path := rosterConfig(t, "", "user,site,unit,date,start,end\nnatt1,solrosen,avd-a,daily,22:00,07:00\nnatt2,solrosen,avd-a,daily,22:60,07:00\n")
	var stdout, stderr bytes.Buffer
	code := run([]string{"routes", "test", "--config", path, "site=solrosen"}, nil, &stdout, &stderr)
	want := filepath.Join(filepath.Dir(path), "roster.csv") + ":3: field start: want HH:MM"
	if code == 0 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q, want %q", code, stderr.String(), want)
	}
	path = rosterConfig(t, "", "user,site,unit,date,start,end\nghost,solrosen,avd-a,daily,22:00,07:00\n")
	stderr.Reset()
	code = run([]string{"routes", "test", "--config", path, "site=solrosen"}, nil, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), filepath.Join(filepath.Dir(path), "roster.csv")+":2: field user: \"ghost\" is no account") {
		t.Errorf("unknown user: exit %d, %q", code, stderr.String())
	}
}

// hasWords reports whether out contains want, ignoring how much space
// the table puts between columns.
func hasWords(out, want string) bool {
	return strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " "))
}
