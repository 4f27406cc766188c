// Package sim is the simulation driver behind `vaka demo` and the tests: a
// set of simulated devices that play realistic care scenarios as timed
// event sequences, so a newcomer sees an alarm within seconds and a test
// can check a whole night in milliseconds under testing/synctest.
//
// Scenarios (see the Scenario constants):
//
//   - night_wander: a resident's bed monitor (0012) goes empty, the corridor
//     motion detector (0018) sees motion, and the unit exit door (0014)
//     opens and closes: a resident leaving bed and walking out at 03:00.
//   - call_button: the resident presses the personal trigger (0003), stc
//     0010 manual alarm.
//   - bed_exit_no_return: the bed goes empty and nothing says occupied after.
//
// Between scenarios it sends background telemetry: motion, the resident's
// own room door opening and closing, battery reports.
//
// Roles come from the device descriptions: a bed monitor or call button with
// a resident belongs to that resident; an occupancy detector without a
// resident is the corridor; a door sensor with exit: true (or, failing that,
// without a resident) is the unit exit door.
package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// Name is the driver name device descriptions use ("driver: sim").
const Name = "sim"

// Scenario names, as the config's sim.scenarios lists them.
const (
	NightWander     = "night_wander"
	CallButton      = "call_button"
	BedExitNoReturn = "bed_exit_no_return"
)

// Scenarios lists every scenario in a stable order.
var Scenarios = []string{NightWander, CallButton, BedExitNoReturn}

// Step offsets of the night_wander scenario from its start: fixed, so tests
// and demos can tell what they see. Only scenario start times are random.
const (
	WanderCorridorAfter = 40 * time.Second // bed empty → motion in the corridor
	WanderDoorOpenAfter = 75 * time.Second // → exit door open
	WanderDoorShutAfter = 82 * time.Second // → exit door closed
	// BackToBed delays a scenario whose bed is still empty from an earlier
	// one: the bed first reports occupied (staff helped the resident back).
	BackToBed = 60 * time.Second
)

// Defaults for Options.
const (
	DefaultInterval          = 40 * time.Second
	DefaultFirst             = 5 * time.Second
	DefaultTelemetryInterval = 20 * time.Second
)

// Clock is the time source. Tests may inject one; under testing/synctest the
// real clock (the default) is already fake and deterministic.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configure the simulation (the gateway config's sim section).
type Options struct {
	// Scenarios to play; empty means all of them.
	Scenarios []string `yaml:"scenarios,omitempty"`
	// Interval is the mean time between scenarios (exponential, clamped to
	// a quarter and three times the mean). Default 40s.
	Interval time.Duration `yaml:"interval,omitempty"`
	// First is the delay before the first scenario. Default 5s, so a
	// newcomer running `vaka demo` sees an alarm almost at once.
	First time.Duration `yaml:"first,omitempty"`
	// TelemetryInterval is the mean time between background reports.
	TelemetryInterval time.Duration `yaml:"telemetry_interval,omitempty"`
	// NoTelemetry turns background telemetry off.
	NoTelemetry bool `yaml:"no_telemetry,omitempty"`
	// Seed makes a run repeatable; 0 picks a random seed.
	Seed uint64 `yaml:"seed,omitempty"`
	// Clock defaults to the real clock.
	Clock Clock `yaml:"-"`
}

// Check validates the options; at is their path in the config ("sim").
func (o *Options) Check(at ...any) error {
	field := func(parts ...any) string { return config.Field(append(append([]any(nil), at...), parts...)...) }
	var errs []error
	for i, s := range o.Scenarios {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, config.Errorf(field("scenarios", i), "unknown scenario; use one of %v", Scenarios))
		}
	}
	if o.Interval < 0 {
		errs = append(errs, config.Errorf(field("interval"), "must not be negative"))
	} else if o.Interval != 0 && o.Interval < time.Second {
		errs = append(errs, config.Errorf(field("interval"), "must be at least 1s"))
	}
	if o.First < 0 {
		errs = append(errs, config.Errorf(field("first"), "must not be negative"))
	}
	if o.TelemetryInterval < 0 {
		errs = append(errs, config.Errorf(field("telemetry_interval"), "must not be negative"))
	} else if o.TelemetryInterval != 0 && o.TelemetryInterval < 100*time.Millisecond {
		errs = append(errs, config.Errorf(field("telemetry_interval"), "must be at least 100ms"))
	}
	return errors.Join(errs...)
}

// DefaultDevices is the demo unit: three residents on one dementia unit,
// with a corridor motion detector and the unit's exit door.
func DefaultDevices() []devices.Device {
	const unit = "unit-a"
	d := func(id, typ, resident, room string) devices.Device {
		return devices.Device{ID: id, Driver: Name, Type: typ, Resident: resident, Unit: unit, Room: room}
	}
	exit := d("door-exit", "door_sensor", "", "exit")
	exit.Exit = true
	return []devices.Device{
		d("bed-101", "bed_monitor", "r-7f3a", "101"),
		d("btn-101", "personal_trigger", "r-7f3a", "101"),
		d("door-101", "door_sensor", "r-7f3a", "101"),
		d("pir-101", "occupancy_detector", "r-7f3a", "101"),
		d("bed-102", "bed_monitor", "r-2c9e", "102"),
		d("btn-102", "personal_trigger", "r-2c9e", "102"),
		d("door-102", "door_sensor", "r-2c9e", "102"),
		d("bed-103", "bed_monitor", "r-b41d", "103"),
		d("btn-103", "personal_trigger", "r-b41d", "103"),
		d("pir-corridor", "occupancy_detector", "", "corridor"),
		exit,
	}
}

type simDevice struct {
	devices.Device
	typ     event.DeviceType
	battery int // percent; 0 means mains powered
}

// Sim is the simulation driver.
type Sim struct {
	opts      Options
	devs      []*simDevice
	scenarios []string
	rng       *rand.Rand
	bedEmpty  map[string]bool      // as of the last step scheduled for the bed
	bedBusy   map[string]time.Time // a new scenario for the bed starts no earlier
	pending   []step
}

var _ devices.Driver = (*Sim)(nil)

type step struct {
	at  time.Time
	dev *simDevice
	ev  event.Event // template: device fields and time are filled on emission
}

// New returns a simulation of devs (DefaultDevices if empty). It fails if a
// chosen scenario has no devices to play it with, rather than staying
// quiet and leaving a demo without alarms.
func New(opts Options, devs []devices.Device) (*Sim, error) {
	if err := opts.Check("sim"); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.First == 0 {
		opts.First = DefaultFirst
	}
	if opts.TelemetryInterval == 0 {
		opts.TelemetryInterval = DefaultTelemetryInterval
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	if len(devs) == 0 {
		devs = DefaultDevices()
	}
	s := &Sim{
		opts:      opts,
		scenarios: opts.Scenarios,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		bedEmpty:  make(map[string]bool),
		bedBusy:   make(map[string]time.Time),
	}
	if len(s.scenarios) == 0 {
		s.scenarios = Scenarios
	}
	for i := range devs {
		d := devs[i]
		if err := d.Check(); err != nil {
			return nil, fmt.Errorf("sim: device %d (%q): %w", i, d.ID, err)
		}
		t, _ := d.DeviceType()
		sd := &simDevice{Device: d, typ: t}
		switch t {
		case event.PersonalTrigger, event.FixedTrigger, event.DoorSensor, event.Occupancy,
			event.FallDetector, event.WanderSensor, event.Tracker:
			sd.battery = 55 + s.rng.IntN(46) // battery powered
		}
		s.devs = append(s.devs, sd)
	}
	for _, sc := range s.scenarios {
		if len(s.candidates(sc)) == 0 {
			return nil, fmt.Errorf("sim: scenario %s: no devices to play it (%s)", sc, needs[sc])
		}
	}
	return s, nil
}

var needs = map[string]string{
	NightWander:     "needs a bed monitor with a resident, an occupancy detector without one and an exit door",
	CallButton:      "needs a personal or fixed trigger with a resident",
	BedExitNoReturn: "needs a bed monitor with a resident",
}

// Name implements devices.Driver.
func (s *Sim) Name() string { return Name }

// Init implements devices.Driver; simulated hardware is always present.
func (s *Sim) Init(context.Context) (bool, error) { return true, nil }

// Run plays scenarios and telemetry until ctx is done. It is one goroutine
// with one timeline, so events that fall at the same instant keep a stable
// order and a seed replays exactly.
func (s *Sim) Run(ctx context.Context, emit devices.Emit) error {
	clk := s.opts.Clock
	start := clk.Now()
	nextScenario := start.Add(s.opts.First)
	var nextTelemetry time.Time
	if !s.opts.NoTelemetry {
		nextTelemetry = start.Add(s.draw(s.opts.TelemetryInterval))
	}
	for {
		at := nextScenario
		if !nextTelemetry.IsZero() && nextTelemetry.Before(at) {
			at = nextTelemetry
		}
		if len(s.pending) > 0 && s.pending[0].at.Before(at) {
			at = s.pending[0].at
		}
		if d := at.Sub(clk.Now()); d > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-clk.After(d):
			}
		} else if ctx.Err() != nil {
			return nil
		}
		now := clk.Now()
		for len(s.pending) > 0 && !s.pending[0].at.After(now) {
			st := s.pending[0]
			s.pending = s.pending[1:]
			emit(s.fill(st, clk.Now()))
		}
		if !nextScenario.After(now) {
			s.startScenario(s.scenarios[s.rng.IntN(len(s.scenarios))], now)
			nextScenario = now.Add(s.draw(s.opts.Interval))
		}
		if !nextTelemetry.IsZero() && !nextTelemetry.After(now) {
			s.telemetry(now)
			nextTelemetry = now.Add(s.draw(s.opts.TelemetryInterval))
		}
	}
}

// draw returns an exponential interval with the given mean, clamped so a
// demo is never silent for long nor flooded.
func (s *Sim) draw(mean time.Duration) time.Duration {
	d := time.Duration(s.rng.ExpFloat64() * float64(mean))
	return min(max(d, mean/4), 3*mean)
}

func (s *Sim) schedule(at time.Time, dev *simDevice, ev event.Event) {
	i := len(s.pending)
	for i > 0 && s.pending[i-1].at.After(at) {
		i--
	}
	s.pending = slices.Insert(s.pending, i, step{at: at, dev: dev, ev: ev})
}

func (s *Sim) fill(st step, now time.Time) event.Event {
	ev := st.ev
	d := st.dev
	ev.Device, ev.Type = d.ID, d.typ
	ev.Resident, ev.Unit, ev.Room = d.Resident, d.Unit, d.Room
	ev.Time = now
	if d.battery > 0 {
		if s.rng.IntN(25) == 0 && d.battery > 5 {
			d.battery--
		}
		b := d.battery
		ev.Battery = &b
	}
	return ev
}

// candidates returns the devices (first is the resident's key device) a
// scenario can be played with, one slice per possible resident.
func (s *Sim) candidates(sc string) [][]*simDevice {
	var out [][]*simDevice
	for _, d := range s.devs {
		if d.Resident == "" {
			continue
		}
		switch sc {
		case CallButton:
			if d.typ.IsTrigger() {
				out = append(out, []*simDevice{d})
			}
		case BedExitNoReturn:
			if d.typ == event.BedMonitor {
				out = append(out, []*simDevice{d})
			}
		case NightWander:
			if d.typ != event.BedMonitor {
				continue
			}
			pir := s.shared(d.Unit, func(o *simDevice) bool { return o.typ == event.Occupancy && o.Resident == "" })
			door := s.shared(d.Unit, func(o *simDevice) bool { return o.typ == event.DoorSensor && o.Exit })
			if door == nil {
				door = s.shared(d.Unit, func(o *simDevice) bool { return o.typ == event.DoorSensor && o.Resident == "" })
			}
			if pir != nil && door != nil {
				out = append(out, []*simDevice{d, pir, door})
			}
		}
	}
	return out
}

// shared finds a device matching ok, preferring the resident's own unit.
func (s *Sim) shared(unit string, ok func(*simDevice) bool) *simDevice {
	var other *simDevice
	for _, o := range s.devs {
		if !ok(o) {
			continue
		}
		if o.Unit == unit {
			return o
		}
		if other == nil {
			other = o
		}
	}
	return other
}

func (s *Sim) startScenario(sc string, now time.Time) {
	cs := s.candidates(sc)
	if len(cs) == 0 {
		return // New refused this configuration already
	}
	devs := cs[s.rng.IntN(len(cs))]
	key := devs[0]
	t0 := now
	if key.typ == event.BedMonitor {
		// Keep each bed's story consistent when scenarios overlap: start
		// after the bed's last step, and back in bed before leaving again.
		if busy := s.bedBusy[key.ID]; t0.Before(busy) {
			t0 = busy
		}
		if s.bedEmpty[key.ID] {
			s.schedule(t0, key, event.Event{State: event.StateOccupied})
			t0 = t0.Add(BackToBed)
		}
		s.bedBusy[key.ID] = t0.Add(time.Second)
	}
	switch sc {
	case NightWander:
		pir, door := devs[1], devs[2]
		s.schedule(t0, key, event.Event{State: event.StateEmpty})
		s.schedule(t0.Add(WanderCorridorAfter), pir, event.Event{State: event.StateMotion, Status: event.Movement})
		s.schedule(t0.Add(WanderDoorOpenAfter), door, event.Event{State: event.StateOpen})
		s.schedule(t0.Add(WanderDoorShutAfter), door, event.Event{State: event.StateClosed})
		s.bedEmpty[key.ID] = true
	case BedExitNoReturn:
		s.schedule(t0, key, event.Event{State: event.StateEmpty})
		s.bedEmpty[key.ID] = true
	case CallButton:
		s.schedule(t0, key, event.Event{State: event.StatePressed, Status: event.ManualAlarm})
	}
}

// telemetry schedules one piece of background traffic: motion (half the
// time), the resident's own door opening and closing, or a battery report.
func (s *Sim) telemetry(now time.Time) {
	var pirs, doors, batt []*simDevice
	for _, d := range s.devs {
		switch {
		case d.typ == event.Occupancy:
			pirs = append(pirs, d)
		case d.typ == event.DoorSensor && d.Resident != "" && !d.Exit:
			doors = append(doors, d)
		}
		if d.battery > 0 {
			batt = append(batt, d)
		}
	}
	pick := func(ds []*simDevice) *simDevice { return ds[s.rng.IntN(len(ds))] }
	switch r := s.rng.IntN(10); {
	case r < 5 && len(pirs) > 0:
		s.schedule(now, pick(pirs), event.Event{State: event.StateMotion, Status: event.Movement})
	case r < 8 && len(doors) > 0:
		d := pick(doors)
		s.schedule(now, d, event.Event{State: event.StateOpen})
		s.schedule(now.Add(time.Duration(5+s.rng.IntN(26))*time.Second), d, event.Event{State: event.StateClosed})
	case len(batt) > 0:
		d := pick(batt)
		ev := event.Event{}
		if d.battery < 20 {
			ev.Status = event.BatteryLow
		}
		s.schedule(now, d, ev)
	}
}
