package main

import (
	"io"
	"testing"
	"time"
)

// A small supervised fleet through the real hub over MQTT: every button
// that falls silent raises its device_silent alarm after its deadline and
// within 2 s of it, no beating button raises one, and every press arrives.
// The 250,000-device run is `make bench`; this keeps the scenario honest.
func TestIntegrationSuperviseFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub and runs for about 16 s")
	}
	o := supOptions{Devices: 5000, Gateways: 20, Beat: 5 * time.Second, Grace: 5 * time.Second,
		Silent: 10, StopAt: time.Second, PressRate: 10}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	res, err := superviseRun(o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.summary())
	if res.Detected != o.Silent || res.Missed != 0 || res.DetectEarly != 0 || res.FalseAlarms != 0 {
		t.Errorf("supervision: detected %d of %d, missed %d, early %d, false alarms %d",
			res.Detected, o.Silent, res.Missed, res.DetectEarly, res.FalseAlarms)
	}
	if res.DetectMax > 2 {
		t.Errorf("a silent button was detected %.2f s after its deadline, want ≤ 2 s (the hub ticks every second)", res.DetectMax)
	}
	if res.Presses == 0 || res.PressesLost != 0 || res.PubErrors != 0 || res.MochiDropped != 0 || res.StreamCut != "" {
		t.Errorf("presses %d, lost %d, publish errors %d, dropped %v, stream cut %q",
			res.Presses, res.PressesLost, res.PubErrors, res.MochiDropped, res.StreamCut)
	}
	if min := 0.8 * float64(o.Devices) / o.Beat.Seconds(); res.BeatsPerSec < min {
		t.Errorf("radio tests %.0f/s, want at least %.0f/s", res.BeatsPerSec, min)
	}
}
