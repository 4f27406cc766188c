package hub

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/store"
)

// A gateway driver's malformed and unmapped counts travel in the
// heartbeat: a rise raises one technical alarm (repeats update it), the
// counts are in /metrics per gateway and driver, and unsupported input
// (valid, unread) is counted without an alarm.
func TestHeartbeatInputDropsRaiseAndExport(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(silenceYAML), &cfg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.DataDir = dir
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	reg := prometheus.NewRegistry()
	h, err := New(Options{Config: &cfg, Journal: j, Replay: replay, Now: func() time.Time { return now }, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	beat := func(mal, unm, uns int) {
		h.HandleHeartbeat("s", "gw", []byte(`{"ts":"2026-11-23T02:00:00Z","seq":1,"spool":0,"dropped":0,"drivers":[`+
			`{"name":"zigbee2mqtt","state":"running","malformed":`+itoa(mal)+`,"unmapped":`+itoa(unm)+`,"words":["btn-a: action=arm_all_zones"]},`+
			`{"name":"nmea","state":"running","unsupported":`+itoa(uns)+`}]}`))
		now = now.Add(30 * time.Second)
	}
	technical := func() []*alarm.Alarm {
		var out []*alarm.Alarm
		for _, a := range h.Alarms() {
			if a.Kind == alarm.KindTechnical && a.Rule == "gateway_fault" {
				out = append(out, a)
			}
		}
		return out
	}
	beat(0, 0, 0)
	beat(0, 0, 40) // unsupported NMEA sentences: counted, no alarm
	if a := technical(); len(a) != 0 {
		t.Fatalf("unsupported input raised %+v", a)
	}
	beat(2, 1, 40)
	a := technical()
	if len(a) != 1 || !strings.Contains(a[0].Note, "2 malformed, 1 unmapped") || !strings.Contains(a[0].Note, "action=arm_all_zones") {
		t.Fatalf("alarms %+v", a)
	}
	beat(2, 1, 41) // no rise: nothing new
	beat(3, 1, 41) // a rise while open: the same alarm
	if a := technical(); len(a) != 1 {
		t.Fatalf("%d alarms, want the open one updated", len(a))
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vaka_gateway_input_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["site"]+"/"+l["gateway"]+"/"+l["driver"]+"/"+l["reason"]] = m.GetCounter().GetValue()
		}
	}
	for k, v := range map[string]float64{"s/gw/zigbee2mqtt/malformed": 3, "s/gw/zigbee2mqtt/unmapped": 1,
		"s/gw/nmea/unsupported": 41, "s/gw/nmea/malformed": 0} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	// A hostile report naming a driver twice must not break the scrape.
	h.HandleHeartbeat("s", "gw", []byte(`{"drivers":[{"name":"x","malformed":1},{"name":"x","malformed":1}]}`))
	if _, err := reg.Gather(); err != nil {
		t.Errorf("scrape broken: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A driver's device problems (a call button that cannot alarm) raise a
// technical alarm, and its restore when the last is fixed.
func TestHeartbeatDeviceProblems(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	h := newTestHub(t, t.TempDir(), func() time.Time { return now })
	beat := func(problems string) {
		h.HandleHeartbeat("s", "gw", []byte(`{"seq":1,"drivers":[{"name":"zigbee2mqtt","state":"running","problems":[`+problems+`]}]}`))
		now = now.Add(30 * time.Second)
	}
	beat(`"btn-a (IKEA E1766): its action words (close,open,stop) hold no press"`)
	var found *alarm.Alarm
	for _, a := range h.Alarms() {
		if a.Rule == "gateway_fault" && strings.Contains(a.Note, "btn-a (IKEA E1766)") {
			found = a
		}
	}
	if found == nil {
		t.Fatalf("no alarm for a call button that cannot alarm: %+v", h.Alarms())
	}
	beat(`"btn-a (IKEA E1766): its action words (close,open,stop) hold no press"`) // same: nothing new
	beat(``)
	for _, a := range h.Alarms() {
		if a.ID == found.ID && a.RestoredAt() == nil {
			t.Errorf("not restored when fixed: %+v", a)
		}
	}
}
