package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

// A pre-encoded radio test, patched at send time, is byte for byte the
// PUBLISH an encoder would write for the same fields, and the hub's own
// decoder accepts its payload (device, ts, the event id).
func TestRadioArenaPatchesFields(t *testing.T) {
	topic := func(i int) string { return "vaka/v1/" + supSite + "/" + gatewayID(i%3) + "/event" }
	// Device names of different lengths, so offsets differ between packets.
	const n = 1200
	ra, err := buildRadioArena(n, topic)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 13, 15, 38, 120_000_000, time.UTC)
	ts := at.AppendFormat(nil, fleetTSLayout)
	if len(ts) != fleetTSLen {
		t.Fatalf("ts %q is %d bytes, want %d", ts, len(ts), fleetTSLen)
	}
	var dst []byte
	for _, i := range []int{0, 7, 99, 1000, n - 1} {
		id := uint16(i*37 + 1)
		seq := int64(i)*1_000_003 + 5
		dst = ra.appendRadio(dst[:0], i, id, seq, ts)
		payload := fmt.Sprintf(`{"v":1,"id":"rt%012d","device":"%s","dty":"0003","ts":"%s"}`, seq, fleetDevice(i), ts)
		want := appendPublish(nil, []byte(topic(i)), id, []byte(payload))
		if !bytes.Equal(dst, want) {
			t.Fatalf("button %d:\n got %q\nwant %q", i, dst, want)
		}
		ev, err := event.Decode(supSite, gatewayID(i%3), []byte(payload))
		if err != nil {
			t.Fatalf("button %d: hub refuses the payload: %v", i, err)
		}
		if ev.Device != fleetDevice(i) || !ev.Time.Equal(at) || !strings.HasPrefix(ev.ID, "rt") {
			t.Errorf("button %d decoded as device %q at %v id %q", i, ev.Device, ev.Time, ev.ID)
		}
	}
}
