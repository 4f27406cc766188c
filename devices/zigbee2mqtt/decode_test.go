package zigbee2mqtt

import (
	"errors"
	"testing"

	"github.com/vaka-care/vaka/event"
)

func TestDecodeStateRealPayloads(t *testing.T) {
	for _, tc := range []struct {
		name, p string
		want    func(Reading) bool
	}{
		{"aqara door closed", `{"battery":100,"contact":true,"device_temperature":25,"linkquality":102,"power_outage_count":4,"voltage":3025}`,
			func(r Reading) bool { return *r.Contact && *r.Battery == 100 }},
		{"ikea button", `{"action":"single","battery":87,"linkquality":60,"update":{"state":"idle"}}`,
			func(r Reading) bool { return *r.Action == "single" }},
		{"pir", `{"battery":95,"battery_low":false,"occupancy":true,"tamper":false,"linkquality":144}`,
			func(r Reading) bool { return *r.Occupancy && !*r.Tamper && !*r.BatteryLow }},
		{"battery out of range dropped", `{"battery":250,"contact":false}`,
			func(r Reading) bool { return r.Battery == nil && !*r.Contact }},
	} {
		r, err := DecodeState([]byte(tc.p))
		if err != nil || !tc.want(r) {
			t.Errorf("%s: %+v %v", tc.name, r, err)
		}
	}
	for _, bad := range []string{``, `online`, `[1]`, `{"contact":"yes"}`, `{"battery":"full"}`, `{"contact":tru`} {
		if _, err := DecodeState([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", bad, err)
		}
	}
}

func TestDecodeAvailability(t *testing.T) {
	for p, want := range map[string]bool{"online": true, "offline": false, `{"state":"online"}`: true, `{"state":"offline"}`: false} {
		if got, err := DecodeAvailability([]byte(p)); err != nil || got != want {
			t.Errorf("%s: %v %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "on", `{"state":1}`, `{"state":`} {
		if _, err := DecodeAvailability([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEventsOnlyOnChange(t *testing.T) {
	var l last
	b := func(v bool) *bool { return &v }
	f := func(v float64) *float64 { return &v }
	s := func(v string) *string { return &v }
	evs := l.events(event.DoorSensor, Reading{Contact: b(true), Battery: f(100)})
	if len(evs) != 2 || evs[0].State != event.StateClosed || *evs[1].Battery != 100 {
		t.Fatalf("first report: %+v", evs)
	}
	if evs := l.events(event.DoorSensor, Reading{Contact: b(true), Battery: f(100)}); len(evs) != 0 {
		t.Fatalf("repeat: %+v", evs)
	}
	if evs := l.events(event.DoorSensor, Reading{Contact: b(false), Battery: f(100)}); len(evs) != 1 || evs[0].State != event.StateOpen {
		t.Fatalf("open: %+v", evs)
	}
	if evs := l.events(event.DoorSensor, Reading{BatteryLow: b(true), Battery: f(9)}); len(evs) != 1 || evs[0].Status != event.BatteryLow || *evs[0].Battery != 9 {
		t.Fatalf("low: %+v", evs)
	}
	if evs := l.events(event.DoorSensor, Reading{Tamper: b(true)}); len(evs) != 1 || evs[0].State != event.StateTamper {
		t.Fatalf("tamper: %+v", evs)
	}
	var btn last
	for range 2 { // every press counts
		if evs := btn.events(event.PersonalTrigger, Reading{Action: s("single")}); len(evs) != 1 || evs[0].Status != event.ManualAlarm {
			t.Fatalf("press: %+v", evs)
		}
	}
	if evs := btn.events(event.PersonalTrigger, Reading{Action: s("release")}); len(evs) != 0 {
		t.Fatalf("release: %+v", evs)
	}
	var pir last
	if evs := pir.events(event.Occupancy, Reading{Occupancy: b(true)}); len(evs) != 1 || evs[0].State != event.StateMotion {
		t.Fatalf("motion: %+v", evs)
	}
	if evs := pir.events(event.Occupancy, Reading{Occupancy: b(false)}); len(evs) != 0 {
		t.Fatalf("no motion: %+v", evs)
	}
	var bed last
	if evs := bed.events(event.BedMonitor, Reading{Occupancy: b(false)}); len(evs) != 1 || evs[0].State != event.StateEmpty {
		t.Fatalf("bed: %+v", evs)
	}
}

func FuzzDecodeState(f *testing.F) {
	for _, s := range []string{`{"contact":true,"battery":100}`, `{"action":"single"}`, `{"occupancy":false,"tamper":true,"battery_low":true}`, `{`, `null`, `{"battery":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := DecodeState(p)
		if err != nil {
			return
		}
		for _, typ := range []event.DeviceType{event.DoorSensor, event.Occupancy, event.PersonalTrigger, event.BedMonitor} {
			var l last
			for _, ev := range l.events(typ, r) {
				ev.V, ev.ID, ev.Device, ev.Type, ev.Time = event.Version, "x-1", "d", typ, ev.Time.AddDate(2026, 0, 0)
				if err := ev.Validate(); err != nil {
					t.Fatalf("%s: event %+v invalid: %v", p, ev, err)
				}
			}
		}
	})
}

func FuzzDecodeAvailability(f *testing.F) {
	for _, s := range []string{"online", "offline", `{"state":"online"}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) { _, _ = DecodeAvailability(p) })
}
