package service

import "time"

// WithClock sets the hub's clock, for tests on the real path that must
// meet a planned wall time (a tillsyn look-in) without waiting for it:
// a clock shifted from time.Now by a fixed offset still ticks in real time.
func WithClock(now func() time.Time) Option {
	return func(op *options) { op.now = now }
}
