package gpio

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/devicetest"
	"github.com/vaka-care/vaka/event"
)

var t0 = time.Date(2026, 3, 29, 1, 59, 0, 0, time.UTC) // the night of the March change

func TestMachineTable(t *testing.T) {
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		at     int // ms
		edge   bool
		active bool
		want   string // states/status of emitted events, space separated
	}
	for _, tc := range []struct {
		name  string
		o     Opts
		start bool
		steps []step
	}{
		{"door chatter is debounced", DefaultOpts(Contact), true, []step{
			{0, true, false, ""}, {10, true, true, ""}, {20, true, false, ""}, // bounce
			{69, false, false, ""}, {70, false, false, "open"}, // stable 50 ms after the last edge
			{80, true, true, ""}, {130, false, false, "closed"},
		}},
		{"button press at once, long press adds assistance", DefaultOpts(Button), false, []step{
			{0, true, true, ""}, {50, false, false, "pressed/0010"},
			{3049, false, false, ""}, {3050, false, false, "pressed/0110"},
			{4000, true, false, ""}, {4050, false, false, ""},
			{5000, true, true, ""}, {5050, false, false, "pressed/0010"}, {5100, true, false, ""}, {5150, false, false, ""},
			{9000, false, false, ""}, // released before the long press: no assistance
		}},
		{"mat holds before empty", DefaultOpts(Mat), true, []step{
			{0, true, false, ""}, {5000, true, true, ""}, // shifted weight
			{6000, true, false, ""}, {15999, false, false, ""}, {16000, false, false, "empty"},
			{17000, true, true, ""}, {27000, false, false, "occupied"},
		}},
		{"motion rate-limited", DefaultOpts(Motion), false, []step{
			{0, true, true, ""}, {50, false, false, "motion/0119"},
			{1000, true, false, ""}, {1050, false, false, ""}, {2000, true, true, ""}, {2050, false, false, ""}, // within hold
			{11000, true, false, ""}, {11050, false, false, ""}, {12000, true, true, ""}, {12050, false, false, "motion/0119"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := machine{o: tc.o}
			m.start(tc.start, ms(-1000))
			for _, s := range tc.steps {
				var evs []event.Event
				if s.edge {
					evs = m.level(s.active, ms(s.at))
				} else {
					evs = m.tick(ms(s.at))
				}
				var got []string
				for _, ev := range evs {
					w := string(ev.State)
					if ev.Status != "" {
						w += "/" + string(ev.Status)
					}
					got = append(got, w)
					if !ev.Time.Equal(ms(s.at)) {
						t.Errorf("at %d: event time %v", s.at, ev.Time)
					}
				}
				if g := strings.Join(got, " "); g != s.want {
					t.Fatalf("at %d ms: got %q, want %q", s.at, g, s.want)
				}
			}
		})
	}
}

// states lists what s collected as device:state/status.
func states(s *devicetest.Sink) string {
	var out []string
	for _, ev := range s.Events() {
		out = append(out, ev.Device+":"+string(ev.State)+"/"+string(ev.Status))
	}
	return strings.Join(out, " ")
}

// The whole driver on gpiotest pins, with time under synctest: a door
// bounces, a call button is held for a long press, a bed is left.
func TestDriverOnFakePins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pins := map[string]*gpiotest.Pin{}
		for _, n := range []string{"GPIO17", "GPIO27", "GPIO22"} {
			pins[n] = &gpiotest.Pin{N: n, EdgesChan: make(chan gpio.Level, 16)}
		}
		devs := []devices.Device{
			{ID: "dorr-entre", Driver: Name, Type: "door_sensor", Options: map[string]string{"pin": "GPIO17"}},
			{ID: "knapp-12", Driver: Name, Type: "personal_trigger", Options: map[string]string{"pin": "GPIO27", "long_press": "2s"}},
			{ID: "sang-12", Driver: Name, Type: "bed_monitor", Options: map[string]string{"pin": "GPIO22", "hold": "30s", "active": "high"}},
		}
		d, err := New(devs, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.WithPins(func(n string) gpio.PinIO {
			if p := pins[n]; p != nil {
				return p
			}
			return nil
		})
		if ok, err := d.Init(t.Context()); !ok || err != nil {
			t.Fatalf("init: %v %v", ok, err)
		}
		// After In(): pull-up reads high (door open, button up); the bed
		// pin has a pull-down: low = empty.
		s := &devicetest.Sink{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { d.Run(ctx, s.Emit); close(done) }()
		defer func() { cancel(); <-done }()
		synctest.Wait()
		// The two start reports come from two goroutines, in either order.
		if got := states(s); got != "dorr-entre:open/ sang-12:empty/" && got != "sang-12:empty/ dorr-entre:open/" {
			t.Fatalf("start: %s", got)
		}
		s.Reset()
		edge := func(pin string, l gpio.Level, after time.Duration) {
			pins[pin].EdgesChan <- l
			time.Sleep(after)
			synctest.Wait()
		}
		edge("GPIO17", gpio.Low, 5*time.Millisecond) // closing, bouncing
		edge("GPIO17", gpio.High, 5*time.Millisecond)
		edge("GPIO17", gpio.Low, time.Second)
		edge("GPIO27", gpio.Low, 3*time.Second) // held 3 s
		edge("GPIO27", gpio.High, time.Second)
		edge("GPIO22", gpio.High, 10*time.Second) // lies down…
		edge("GPIO22", gpio.Low, 5*time.Second)   // …turns over, pressure gone briefly
		edge("GPIO22", gpio.High, 31*time.Second) // occupied for good
		want := "dorr-entre:closed/ knapp-12:pressed/0010 knapp-12:pressed/0110 sang-12:occupied/"
		if got := states(s); got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

func TestInitWrongPinNamesDeviceAndPin(t *testing.T) {
	d, err := New([]devices.Device{{ID: "dorr-entre", Driver: Name, Type: "door_sensor", Options: map[string]string{"pin": "GPIO99"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.WithPins(func(string) gpio.PinIO { return nil })
	_, err = d.Init(t.Context())
	if err == nil || !strings.Contains(err.Error(), "dorr-entre") || !strings.Contains(err.Error(), "GPIO99") {
		t.Fatalf("err = %v", err)
	}
}

// On this machine (no Raspberry Pi) the real host has no GPIO: skipped,
// never a crash.
func TestInitWithoutGPIOIsSkipped(t *testing.T) {
	d, err := New([]devices.Device{{ID: "dorr-entre", Driver: Name, Type: "door_sensor", Options: map[string]string{"pin": "GPIO17"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.count = func() int { return 0 }
	if ok, err := d.Init(t.Context()); ok || err != nil {
		t.Fatalf("Init = %v, %v; want skipped", ok, err)
	}
}

func TestParseOptsErrors(t *testing.T) {
	for opts, want := range map[string]map[string]string{
		"options.pin: missing":           {},
		`options.pin "pin 17"`:           {"pin": "pin 17"},
		`options.active "maybe"`:         {"pin": "GPIO4", "active": "maybe"},
		`options.debounce "fast"`:        {"pin": "GPIO4", "debounce": "fast"},
		"options.colour: unknown option": {"pin": "GPIO4", "colour": "red"},
	} {
		err := CheckDevice(devices.Device{ID: "x", Type: "door_sensor", Options: want})
		if err == nil || !strings.Contains(err.Error(), opts) {
			t.Errorf("%v: %v, want %q", want, err, opts)
		}
	}
	if err := CheckDevice(devices.Device{ID: "x", Type: "tracking_device", Options: map[string]string{"pin": "GPIO4"}}); err == nil {
		t.Error("a tracker on a GPIO pin accepted")
	}
}
