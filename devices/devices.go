// Package devices is the gateway's driver registry, in the spirit of
// periph.io's driverreg: every source of events (a radio stick, a GPIO pin,
// a serial GPS, the simulator) is a Driver registered by name at start-up.
//
// The registry exists so that one broken or absent driver never takes the
// others down. A driver's Init says loaded, skipped (its hardware is not
// present) or failed; each loaded driver then runs in its own goroutine, and
// a panic or an error in one is caught and reported, so the gateway can turn
// it into a technical event instead of crashing and silencing every call
// button in the home.
package devices

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/vaka-care/vaka/event"
)

// Emit hands one event to the gateway. It never blocks on the network and
// returns nothing on purpose: delivery, retry and drop accounting belong to
// the gateway, which counts and logs anything it cannot keep. A driver's job
// ends when it has called Emit.
type Emit func(event.Event)

// Driver is one source of device events.
//
// It is kept to three methods so that a fake for tests is a few lines and a
// new hardware driver has little to get wrong. Halting is by cancelling the
// context given to Run; there is no separate Halt because the registry
// always owns that context.
type Driver interface {
	// Name is the driver's unique name, as device descriptions refer to it
	// ("sim", "zigbee2mqtt"). It must be a valid event.ValidName.
	Name() string
	// Init prepares the driver. (false, nil) means skipped: the hardware is
	// not present on this gateway, which is not an error. A non-nil error
	// means failed.
	Init(ctx context.Context) (loaded bool, err error)
	// Run emits events until ctx is done, then returns nil. An error return
	// while ctx is still live means the driver failed.
	Run(ctx context.Context, emit Emit) error
}

// InputReporter is implemented by drivers that read outside input
// (zigbee2mqtt payloads, NMEA sentences). What they could not use is
// counted there and nowhere else, so the gateway reads it for its
// heartbeat: a drop the hub never hears of is a silent one.
type InputReporter interface {
	InputStats() InputStats
}

// InputStats counts a driver's unusable input since it started.
type InputStats struct {
	// Malformed input did not decode: broken JSON, a failed checksum.
	Malformed int64 `json:"malformed"`
	// Unmapped input decoded but named a property or word the driver does
	// not map (an unknown action word on a call button): it may have been
	// an alarm.
	Unmapped int64 `json:"unmapped"`
	// Unsupported input is valid but of a kind the driver does not read
	// (an NMEA GST sentence): counted, never a warning.
	Unsupported int64 `json:"unsupported"`
	// Words lists unmapped words as "device: property=word", at most
	// MaxInputWords, so a technician can add a device override.
	Words []string `json:"words,omitempty"`
	// Problems are configured devices the driver knows cannot work as
	// configured ("knapp-12: exposes no press action, sos, emergency or
	// panic: it cannot raise a call"), at most MaxInputWords. The hub
	// raises a technical alarm while there are any.
	Problems []string `json:"problems,omitempty"`
}

// MaxInputWords bounds InputStats.Words.
const MaxInputWords = 32

// State is where a driver is in its life.
type State string

// Driver states, as a health page shows them.
const (
	StatePending State = "pending" // registered, not yet initialised
	StateInit    State = "init"    // Init is running
	StateRunning State = "running" // loaded and running
	StateSkipped State = "skipped" // Init said the hardware is not present
	StateFailed  State = "failed"  // Init or Run returned an error or panicked
	StateStopped State = "stopped" // Run returned after the context ended
)

// Status is one driver's state for a health page.
type Status struct {
	Name  string
	State State
	Err   string    // why it failed; empty otherwise
	Since time.Time // when it entered State
}

// Errors returned by Register.
var (
	ErrDuplicate = errors.New("devices: driver already registered")
	ErrStarted   = errors.New("devices: registry already started; register drivers before Start")
)

// Registry holds the drivers of one gateway. Unlike a package-level map it
// is created by its owner, so tests and several gateways in one process do
// not share state.
type Registry struct {
	mu      sync.Mutex
	drivers []*entry
	byName  map[string]*entry
	started bool
	wg      sync.WaitGroup
	now     func() time.Time
}

type entry struct {
	d      Driver
	status Status
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: make(map[string]*entry), now: time.Now}
}

// Register adds a driver. It refuses a nil driver, an invalid or duplicate
// name, and any registration after Start: a driver added late would never
// be initialised, and its devices would look present while staying silent.
func (r *Registry) Register(d Driver) error {
	if d == nil {
		return errors.New("devices: nil driver")
	}
	name := d.Name()
	if err := event.ValidName(name); err != nil {
		return fmt.Errorf("devices: driver name %q %v", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return fmt.Errorf("%w (driver %q)", ErrStarted, name)
	}
	if _, ok := r.byName[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	e := &entry{d: d, status: Status{Name: name, State: StatePending, Since: r.now()}}
	r.drivers = append(r.drivers, e)
	r.byName[name] = e
	return nil
}

// Has reports whether a driver of that name is registered.
func (r *Registry) Has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.byName[name]
	return ok
}

// Start initialises every driver, each in its own goroutine so that a slow
// Init cannot delay the others, and runs the loaded ones until ctx is done.
// It returns at once. report is called (from the driver's goroutine) on
// every state change after pending; the gateway uses it to log and to raise
// technical events for skipped or failed drivers. Start may be called once.
func (r *Registry) Start(ctx context.Context, emit Emit, report func(Status)) error {
	if emit == nil {
		return errors.New("devices: Start needs an emit function")
	}
	if report == nil {
		report = func(Status) {}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return ErrStarted
	}
	r.started = true
	for _, e := range r.drivers {
		r.wg.Add(1)
		go r.run(ctx, e, emit, report)
	}
	return nil
}

// Wait blocks until every driver's goroutine has returned, which after the
// Start context is done means every driver has stopped emitting.
func (r *Registry) Wait() { r.wg.Wait() }

// Driver returns the registered driver of that name, or nil.
func (r *Registry) Driver(name string) Driver {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byName[name]; ok {
		return e.d
	}
	return nil
}

// States returns each driver's status in registration order.
func (r *Registry) States() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, len(r.drivers))
	for i, e := range r.drivers {
		out[i] = e.status
	}
	return out
}

func (r *Registry) set(e *entry, st State, err error, report func(Status)) {
	r.mu.Lock()
	e.status.State = st
	e.status.Since = r.now()
	e.status.Err = ""
	if err != nil {
		e.status.Err = err.Error()
	}
	s := e.status
	r.mu.Unlock()
	report(s)
}

func (r *Registry) run(ctx context.Context, e *entry, emit Emit, report func(Status)) {
	defer r.wg.Done()
	name := e.d.Name()
	r.set(e, StateInit, nil, report)
	loaded, err := safeInit(ctx, e.d)
	switch {
	case err != nil:
		r.set(e, StateFailed, fmt.Errorf("devices: driver %s: init: %w", name, err), report)
		return
	case !loaded:
		r.set(e, StateSkipped, nil, report)
		return
	}
	r.set(e, StateRunning, nil, report)
	err = safeRun(ctx, e.d, emit)
	if err != nil && ctx.Err() == nil {
		r.set(e, StateFailed, fmt.Errorf("devices: driver %s: %w", name, err), report)
		return
	}
	if err == nil && ctx.Err() == nil {
		// Returning early without an error still leaves its devices silent.
		r.set(e, StateFailed, fmt.Errorf("devices: driver %s: stopped before shutdown", name), report)
		return
	}
	r.set(e, StateStopped, nil, report)
}

// safeInit and safeRun turn a driver's panic into an error: a bug in one
// driver must not crash the process that carries every other alarm.
func safeInit(ctx context.Context, d Driver) (loaded bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			loaded, err = false, fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return d.Init(ctx)
}

func safeRun(ctx context.Context, d Driver, emit Emit) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return d.Run(ctx, emit)
}
