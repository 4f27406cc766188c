package gateway

import (
	"strings"
	"testing"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// A heartbeat full of unmapped words and device problems still fits the
// hub's payload limit, with its counts whole.
func TestFitHeartbeat(t *testing.T) {
	long := strings.Repeat("x", 150)
	var words []string
	for range devices.MaxInputWords {
		words = append(words, "knapp-12: action="+long)
	}
	hb := heartbeatMsg{TS: "2026-11-23T03:00:00Z", Seq: 9}
	for _, name := range []string{"zigbee2mqtt", "nmea"} {
		hb.Drivers = append(hb.Drivers, driverHealth{Name: name, State: "running",
			InputStats: &devices.InputStats{Malformed: 7, Unmapped: 99, Words: words, Problems: words}})
	}
	p := fitHeartbeat(hb)
	if len(p) > event.MaxPayload*3/4 {
		t.Fatalf("heartbeat %d bytes, over %d", len(p), event.MaxPayload*3/4)
	}
	if !strings.Contains(string(p), `"malformed":7,"unmapped":99`) || !strings.Contains(string(p), `"problems":["knapp-12`) {
		t.Errorf("counts or the first problem lost: %s", p)
	}
	if len(hb.Drivers[0].InputStats.Words) != devices.MaxInputWords {
		t.Errorf("fitHeartbeat changed the caller's lists")
	}
}
