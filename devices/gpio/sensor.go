package gpio

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/vaka-care/vaka/event"
)

// Sensor is one contact, PIR, button or mat on an already opened pin.
type Sensor struct {
	dev string
	pin gpio.PinIn
	m   machine
	now func() time.Time
}

// NewSensor configures p as an input with both edges and returns the
// sensor for device dev. Like periph's device constructors it takes an
// opened pin (from gpioreg.ByName on a Pi, a gpiotest.Pin in tests).
func NewSensor(dev string, p gpio.PinIn, o Opts) (*Sensor, error) {
	if p == nil {
		return nil, fmt.Errorf("gpio: device %s: nil pin", dev)
	}
	if err := p.In(o.Pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("gpio: device %s: pin %s as input: %w", dev, p, err)
	}
	return &Sensor{dev: dev, pin: p, m: machine{o: o}, now: time.Now}, nil
}

// idlePoll bounds a wait for an edge so that Run notices its context end.
const idlePoll = 500 * time.Millisecond

// Run reads edges and emits events until ctx is done.
func (s *Sensor) Run(ctx context.Context, emit func(event.Event)) {
	out := func(evs []event.Event) {
		for _, ev := range evs {
			ev.Device = s.dev
			emit(ev)
		}
	}
	out(s.m.start(s.active(), s.now()))
	for ctx.Err() == nil {
		wait := idlePoll
		if d, ok := s.m.next(s.now()); ok {
			wait = min(wait, max(d, time.Millisecond))
		}
		if s.pin.WaitForEdge(wait) {
			out(s.m.level(s.active(), s.now()))
		}
		out(s.m.tick(s.now()))
	}
}

func (s *Sensor) active() bool { return (s.pin.Read() == gpio.Low) == s.m.o.ActiveLow }

// Halt implements conn.Resource: it stops edge detection on the pin.
func (s *Sensor) Halt() error { return s.pin.In(gpio.PullNoChange, gpio.NoEdge) }

// machine is a sensor's logic, on explicit times so tests feed readings
// with time stamps (the way Prometheus rules take their evaluation time).
type machine struct {
	o         Opts
	stable    bool      // the debounced level (true = active)
	cand      bool      // a level waiting to be stable
	candSince time.Time // zero: no candidate
	lastMove  time.Time
	longDue   time.Time // zero: no long press pending
}

func (m *machine) settle() time.Duration {
	if m.o.Kind == Mat {
		return max(m.o.Debounce, m.o.Hold)
	}
	return m.o.Debounce
}

// start takes the level at start-up: contacts and mats report it.
func (m *machine) start(active bool, now time.Time) []event.Event {
	m.stable = active
	switch m.o.Kind {
	case Contact, Mat:
		return []event.Event{m.stateEvent(active, now)}
	}
	return nil
}

// level records a raw level read after an edge.
func (m *machine) level(active bool, now time.Time) []event.Event {
	switch {
	case active == m.stable:
		m.candSince = time.Time{} // bounced back: nothing happened
	case m.candSince.IsZero() || m.cand != active:
		m.cand, m.candSince = active, now
	}
	return m.tick(now)
}

// tick fires what is due at now.
func (m *machine) tick(now time.Time) []event.Event {
	var out []event.Event
	if !m.candSince.IsZero() && now.Sub(m.candSince) >= m.settle() {
		m.stable, m.candSince = m.cand, time.Time{}
		out = append(out, m.transition(m.stable, now)...)
	}
	if !m.longDue.IsZero() && !now.Before(m.longDue) {
		m.longDue = time.Time{}
		out = append(out, event.Event{State: event.StatePressed, Status: event.Assistance, Time: now})
	}
	return out
}

// next is how long until something is due.
func (m *machine) next(now time.Time) (time.Duration, bool) {
	var d time.Duration
	ok := false
	if !m.candSince.IsZero() {
		d, ok = m.candSince.Add(m.settle()).Sub(now), true
	}
	if !m.longDue.IsZero() {
		if l := m.longDue.Sub(now); !ok || l < d {
			d, ok = l, true
		}
	}
	return d, ok
}

func (m *machine) stateEvent(active bool, now time.Time) event.Event {
	ev := event.Event{Time: now}
	switch m.o.Kind {
	case Contact:
		ev.State = event.StateOpen
		if active {
			ev.State = event.StateClosed
		}
	case Mat:
		ev.State = event.StateEmpty
		if active {
			ev.State = event.StateOccupied
		}
	}
	return ev
}

func (m *machine) transition(active bool, now time.Time) []event.Event {
	switch m.o.Kind {
	case Contact, Mat:
		return []event.Event{m.stateEvent(active, now)}
	case Motion:
		if active && (m.lastMove.IsZero() || now.Sub(m.lastMove) >= m.o.Hold) {
			m.lastMove = now
			return []event.Event{{State: event.StateMotion, Status: event.Movement, Time: now}}
		}
	case Button:
		if active {
			if m.o.LongPress > 0 {
				m.longDue = now.Add(m.o.LongPress)
			}
			return []event.Event{{State: event.StatePressed, Status: event.ManualAlarm, Time: now}}
		}
		m.longDue = time.Time{}
	}
	return nil
}
