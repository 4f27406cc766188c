// Package devicetest holds what the device drivers' tests share, the way
// periph ships gpiotest beside gpio: a Sink that collects the events a
// driver emits. It is imported by tests only.
package devicetest

import (
	"sync"

	"github.com/vaka-care/vaka/event"
)

// Sink collects emitted events in order. Drivers call Emit from their own
// goroutines while the test reads, so every method takes the lock. The zero
// value is ready to use; s.Emit has the devices.Emit signature.
type Sink struct {
	mu  sync.Mutex
	evs []event.Event
}

// Emit records ev.
func (s *Sink) Emit(ev event.Event) {
	s.mu.Lock()
	s.evs = append(s.evs, ev)
	s.mu.Unlock()
}

// Events returns a copy of what was emitted so far, oldest first.
func (s *Sink) Events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.evs...)
}

// Len is the number of events emitted so far.
func (s *Sink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.evs)
}

// Reset forgets what was emitted, so a test can check the next step alone.
func (s *Sink) Reset() {
	s.mu.Lock()
	s.evs = nil
	s.mu.Unlock()
}
