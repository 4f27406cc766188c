package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// Name is the driver name device descriptions use ("driver: gpio").
const Name = "gpio"

// Kind is how a sensor's level becomes events; it follows the device type.
type Kind int

// Sensor kinds.
const (
	Contact Kind = iota // door_sensor, wandering_sensor: active = closed
	Motion              // occupancy_detector (PIR): active = motion
	Button              // personal_trigger, fixed_trigger, fall_detector: active = pressed
	Mat                 // bed_monitor, mat_sensor, chair_monitor: active = occupied
)

// KindOf maps a SCAIP device type to a sensor kind.
func KindOf(t event.DeviceType) (Kind, error) {
	switch t {
	case event.DoorSensor, event.WanderSensor:
		return Contact, nil
	case event.Occupancy:
		return Motion, nil
	case event.PersonalTrigger, event.FixedTrigger, event.FallDetector:
		return Button, nil
	case event.BedMonitor, event.MatSensor, event.ChairMonitor:
		return Mat, nil
	}
	return 0, fmt.Errorf("device type %s has no GPIO sensor kind", t.Name())
}

// Opts tune one sensor.
type Opts struct {
	Kind Kind
	// ActiveLow: the sensor pulls the pin to ground when active (a reed
	// switch or button to GND with the pull-up on). Default true.
	ActiveLow bool
	Pull      gpio.Pull
	// Debounce: a level counts only once it has been stable this long.
	Debounce time.Duration
	// Hold: Mat – occupied/empty is reported only after the mat stayed so
	// this long (shifting weight is not leaving the bed). Motion – at most
	// one motion event per Hold.
	Hold time.Duration
	// LongPress: Button – held this long also sends stc 0110 assistance
	// (0 disables). The press itself is sent at once.
	LongPress time.Duration
}

// DefaultOpts returns the defaults for a kind: active low with the
// internal pull-up; debounce 50 ms; mats hold 10 s; motion at most every
// 10 s; long press 3 s.
func DefaultOpts(k Kind) Opts {
	o := Opts{Kind: k, ActiveLow: true, Pull: gpio.PullUp, Debounce: 50 * time.Millisecond}
	switch k {
	case Mat:
		o.Hold = 10 * time.Second
	case Motion:
		o.Hold = 10 * time.Second
	case Button:
		o.LongPress = 3 * time.Second
	}
	return o
}

// ParseOpts reads a device's options: pin (required), active (low|high),
// pull (up|down|none), debounce, hold, long_press (durations).
func ParseOpts(d devices.Device) (pin string, o Opts, err error) {
	t, err := d.DeviceType()
	if err != nil {
		return "", o, err
	}
	k, err := KindOf(t)
	if err != nil {
		return "", o, err
	}
	o = DefaultOpts(k)
	var errs []error
	pullSet := false
	dur := func(k, v string) time.Duration {
		x, err := time.ParseDuration(v)
		if err != nil || x < 0 || x > time.Hour {
			errs = append(errs, fmt.Errorf("options.%s %q: want a duration like 50ms or 10s", k, v))
		}
		return x
	}
	for k, v := range d.Options {
		switch k {
		case "pin":
			pin = v
		case "active":
			switch v {
			case "low":
				o.ActiveLow = true
			case "high":
				o.ActiveLow = false
			default:
				errs = append(errs, fmt.Errorf("options.active %q: want low or high", v))
			}
		case "pull":
			pullSet = true
			switch v {
			case "up":
				o.Pull = gpio.PullUp
			case "down":
				o.Pull = gpio.PullDown
			case "none":
				o.Pull = gpio.Float
			default:
				errs = append(errs, fmt.Errorf("options.pull %q: want up, down or none", v))
			}
		case "debounce":
			o.Debounce = dur(k, v)
		case "hold":
			o.Hold = dur(k, v)
		case "long_press":
			o.LongPress = dur(k, v)
		default:
			errs = append(errs, fmt.Errorf("options.%s: unknown option for driver gpio; known: pin, active, pull, debounce, hold, long_press", k))
		}
	}
	if !pullSet && !o.ActiveLow {
		o.Pull = gpio.PullDown
	}
	if pin == "" {
		errs = append(errs, errors.New("options.pin: missing; a GPIO name like GPIO17"))
	} else if !validPinName(pin) {
		errs = append(errs, fmt.Errorf("options.pin %q: not a GPIO name; use GPIO17 or a header position like P1_11", pin))
	}
	return pin, o, errors.Join(errs...)
}

func validPinName(s string) bool {
	if n, ok := strings.CutPrefix(s, "GPIO"); ok {
		_, err := strconv.Atoi(n)
		return err == nil
	}
	if len(s) > 0 && len(s) <= 16 {
		for _, r := range s {
			if !(r == '_' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
		return true
	}
	return false
}

// CheckDevice validates a device's options without touching hardware.
func CheckDevice(d devices.Device) error { _, _, err := ParseOpts(d); return err }

// Driver reads the configured GPIO sensors.
type Driver struct {
	devs    []devices.Device
	log     *slog.Logger
	init    func() error
	lookup  func(name string) gpio.PinIO
	count   func() int
	sensors []*Sensor
}

var _ devices.Driver = (*Driver)(nil)

// New builds the driver for devs; options are checked here, pins in Init.
func New(devs []devices.Device, log *slog.Logger) (*Driver, error) {
	for _, d := range devs {
		if err := CheckDevice(d); err != nil {
			return nil, fmt.Errorf("gpio: device %s: %w", d.ID, err)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{devs: devs, log: log.With("driver", Name),
		init:   func() error { _, err := host.Init(); return err },
		lookup: gpioreg.ByName,
		count:  func() int { return len(gpioreg.All()) },
	}, nil
}

// WithPins makes the driver use lookup instead of the host's GPIO (tests:
// gpiotest pins). Call before Init.
func (d *Driver) WithPins(lookup func(name string) gpio.PinIO) *Driver {
	d.init, d.lookup, d.count = func() error { return nil }, lookup, func() int { return 1 }
	return d
}

// Name implements devices.Driver.
func (d *Driver) Name() string { return Name }

// Init implements devices.Driver. On a host without GPIO (a laptop, a VM)
// it reports skipped; a pin name the host does not have is an error that
// names the device and the pin.
func (d *Driver) Init(context.Context) (bool, error) {
	if err := d.init(); err != nil {
		return false, fmt.Errorf("gpio: host init: %w", err)
	}
	if d.count() == 0 {
		d.log.Info("gpio: this host has no GPIO; driver skipped")
		return false, nil
	}
	var errs []error
	for _, dev := range d.devs {
		name, o, _ := ParseOpts(dev)
		p := d.lookup(name)
		if p == nil {
			errs = append(errs, fmt.Errorf("device %s: pin %s: no such GPIO on this host", dev.ID, name))
			continue
		}
		s, err := NewSensor(dev.ID, p, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: pin %s: %w", dev.ID, name, err))
			continue
		}
		d.sensors = append(d.sensors, s)
	}
	return true, errors.Join(errs...)
}

// Run implements devices.Driver: one goroutine per sensor.
func (d *Driver) Run(ctx context.Context, emit devices.Emit) error {
	var wg sync.WaitGroup
	for _, s := range d.sensors {
		wg.Go(func() { s.Run(ctx, emit) })
	}
	wg.Wait()
	for _, s := range d.sensors {
		_ = s.Halt()
	}
	return nil
}
