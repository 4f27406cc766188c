package hub

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

const trackerOnlyYAML = `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    residents:
      - {id: r-a}
    trackers:
      - {id: watch-a, resident: r-a, osmand_id: 0123456789abcdefXYZ}
      - {id: watch-b, resident: r-a, osmand_id: 0123456789abcdefABC, supervision: 30h}
`

// A home with only trackers has no gateway in its config and never raises
// gateway_offline. A watch that lies still on a night stand (no report for
// 11 h) raises no device_silent; the 12 h default catches one that died, and
// a device's own period overrides it.
func TestTrackerOnlyHomeNoGatewayOfflineAndNightStand(t *testing.T) {
	c := newClock(dayTime)
	h, _ := trackerHub(t, trackerOnlyYAML, c)
	h.engine.Expect(c.Now())
	report := func(id string, extra ...string) {
		t.Helper()
		q := url.Values{"id": {id}, "lat": {"58.35"}, "lon": {"11.93"}, "accuracy": {"10"}, "timestamp": {fmt.Sprint(c.Now().Unix())}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Set(extra[i], extra[i+1])
		}
		if err := h.HandleOsmAnd(q); err != nil {
			t.Fatal(err)
		}
	}
	report("0123456789abcdefXYZ")
	report("0123456789abcdefABC")
	rules := func() map[string]int {
		out := map[string]int{}
		for _, a := range h.Alarms() {
			out[a.Rule+"/"+a.Device]++
		}
		return out
	}
	for i := 0; i < 11*60; i++ { // 11 h of ticks, one a minute
		c.Add(time.Minute)
		h.Tick()
	}
	if got := rules(); len(got) != 0 {
		t.Fatalf("after 11 h still: %v, want no alarm (no gateway to go offline, a night on the stand is not silence)", got)
	}
	// An SOS from a tracker-only home raises as any other.
	report("0123456789abcdefXYZ", "alarm", "sos")
	if got := rules(); got["call_button/watch-a"] != 1 {
		t.Fatalf("sos: %v", got)
	}
	for i := 0; i < 13*60; i++ {
		c.Add(time.Minute)
		h.Tick()
	}
	got := rules()
	if got["device_silent/watch-a"] != 1 || got["device_silent/watch-b"] != 0 {
		t.Errorf("after 24 h: %v, want watch-a silent (12 h default) and watch-b not yet (30 h)", got)
	}
	for k := range got {
		if len(k) >= len("gateway_offline") && k[:len("gateway_offline")] == "gateway_offline" {
			t.Errorf("gateway_offline raised for a home without a gateway: %v", got)
		}
	}
}
