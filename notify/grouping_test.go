package notify_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/notify"
)

const groupingYAML = `
routing:
  receivers:
    - name: natt
      users: [natt1]
    - name: tekniker
      users: [tekniker]
  route:
    receiver: natt
    routes:
      - match: {rule: gateway_offline|gateway_fault}
        receiver: tekniker
        group_by: [rule]
        group_wait: 10s
        group_interval: 10m
      - match: {site: hem-norr}
        group_by: ["..."]
      - match: {kind: technical}
        receiver: tekniker
`

// group_by is inherited like every route option, defaults to site and
// gateway, is shown in the plan, and is never applied to a care alarm.
func TestGroupingInPlansAndOnRaise(t *testing.T) {
	tr := tree(t, groupingYAML)
	now := at("2026-01-15 23:00")
	for _, c := range []struct {
		labels      map[string]string
		by          []string
		wait, every time.Duration
	}{
		{map[string]string{"site": "s", "kind": "technical", "rule": "gateway_offline"}, []string{"rule"}, 10 * time.Second, 10 * time.Minute},
		{map[string]string{"site": "s", "kind": "technical", "rule": "device_silent"}, notify.DefaultGroupBy, notify.DefaultGroupWait, notify.DefaultGroupInterval},
		{map[string]string{"site": "hem-norr", "kind": "call"}, nil, 0, 0},
	} {
		ps := tr.Match(c.labels, now)
		if len(ps) != 1 || !slices.Equal(ps[0].GroupBy, c.by) || ps[0].GroupWait != c.wait || ps[0].GroupInterval != c.every {
			t.Errorf("%v: plan %+v, want group_by %v wait %v interval %v", c.labels, ps, c.by, c.wait, c.every)
		}
	}
	d := notify.New(notify.Options{Tree: tr})
	// Two gateways offline: one group by cause.
	a := &alarm.Alarm{ID: "A1", Kind: alarm.KindTechnical, Rule: "gateway_offline", Site: "s", Gateway: "gw1"}
	b := &alarm.Alarm{ID: "A2", Kind: alarm.KindTechnical, Rule: "gateway_offline", Site: "t", Gateway: "gw2"}
	ra, rb := d.OnRaise(a, now), d.OnRaise(b, now)
	if ra.GroupKey == "" || ra.GroupKey != rb.GroupKey || ra.GroupBy["rule"] != "gateway_offline" || len(ra.First) != 0 {
		t.Errorf("gateway_offline: %+v and %+v, want one group by rule and no first step", ra, rb)
	}
	// Device silent at two gateways: two groups (site, gateway).
	s1 := &alarm.Alarm{ID: "A3", Kind: alarm.KindTechnical, Rule: "device_silent", Site: "s", Gateway: "gw1"}
	s2 := &alarm.Alarm{ID: "A4", Kind: alarm.KindTechnical, Rule: "device_silent", Site: "s", Gateway: "gw2"}
	if k1, k2 := d.OnRaise(s1, now).GroupKey, d.OnRaise(s2, now).GroupKey; k1 == "" || k1 == k2 || !strings.Contains(k1, "gateway=gw1") {
		t.Errorf("device_silent keys %q, %q", k1, k2)
	}
	// Care alarms are never grouped, whatever the route: their first step
	// comes back to be journaled with the raise.
	for _, k := range []alarm.Kind{alarm.KindCall, alarm.KindFall, alarm.KindWander, alarm.KindHazard} {
		c := &alarm.Alarm{ID: "C-" + string(k), Kind: k, Rule: "x", Site: "s", Gateway: "gw1"}
		r := d.OnRaise(c, now)
		if r.GroupKey != "" || len(r.First) != 1 || r.First[0].Action != alarm.ActNotify || r.First[0].To[0] != "natt1" {
			t.Errorf("%s: %+v, want not grouped, notify natt1", k, r)
		}
	}
	// Grouping off on hem-norr: a technical alarm there is its own.
	h := &alarm.Alarm{ID: "A5", Kind: alarm.KindTechnical, Rule: "battery_low", Site: "hem-norr"}
	if r := d.OnRaise(h, now); r.GroupKey != "" || len(r.First) != 1 {
		t.Errorf("group_by [...]: %+v", r)
	}
	// The hub's own integrity alarm is never grouped either.
	if r := d.OnRaise(&alarm.Alarm{ID: "A6", Kind: alarm.KindTechnical, Rule: "hub_integrity", Site: "hub"}, now); r.GroupKey != "" {
		t.Errorf("hub_integrity grouped: %+v", r)
	}
}

func TestGroupingConfigErrors(t *testing.T) {
	y := `
routing:
  receivers:
    - name: a
      users: [natt1]
  route:
    receiver: a
    group_interval: 0s
    routes:
      - group_by: [colour]
      - group_by: [site, site]
      - group_by: [site, "..."]
        group_wait: 2h
`
	var f file
	err := config.Decode("hub.yaml", []byte(y), &f)
	if err == nil {
		t.Fatal("bad grouping accepted")
	}
	for _, want := range []string{
		"hub.yaml:8: field routing.route.group_interval: group_interval cannot be zero",
		"field routing.route.routes.0.group_by.0: not a label",
		"field routing.route.routes.1.group_by.1: label \"site\" twice",
		"field routing.route.routes.2.group_by.1: \"...\" (grouping off) must be alone",
		"field routing.route.routes.2.group_wait: must be between 0 and 1h",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
