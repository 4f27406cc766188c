package rules

import (
	"time"

	"github.com/vaka-care/vaka/tillsyn"
)

// TillsynQuery names a resident whose state a look-in reads, and the
// sensors it reads.
type TillsynQuery struct {
	Site, Resident string
	Sensors        []tillsyn.SensorRef
}

// TillsynSnapshots reads qs[i]'s state at now into out[i], exactly as
// TillsynSnapshot does, for as many of qs as it can under one hold of the
// engine's lock: it stops once within has passed (the clock is read after
// every fourth resident, so a hold overruns within by at most three
// residents' reading), or as soon as stop (if not nil) reports true after
// a resident (an alarm is waiting for the lock: stop is read after every
// resident, a few atomic loads), and returns how many it read: at least
// one unless qs is empty. out must be as long as qs; each out[i].Sensors is reused
// (appended from length 0), so a caller can give a batch's snapshots one
// array of sensors.
//
// Why: a region's look-ins share an instant, and taking the lock once per
// resident (10,000 times in a few hundred milliseconds) made the alarm
// path, which takes the same lock per event, meet it held or just handed
// over far more often than a few longer, bounded holds do.
func (e *Engine) TillsynSnapshots(qs []TillsynQuery, now time.Time, within time.Duration, stop func() bool, out []tillsyn.Snapshot) int {
	if len(qs) == 0 {
		return 0
	}
	out = out[:len(qs)]
	e.mu.Lock()
	defer e.mu.Unlock()
	start := time.Now()
	for i := range qs {
		q := &qs[i]
		out[i] = e.tillsynSnapshotLocked(q.Site, q.Resident, q.Sensors, now, out[i].Sensors)
		n := i + 1
		if n < len(qs) && ((stop != nil && stop()) || (n&3 == 0 && time.Since(start) >= within)) {
			return n
		}
	}
	return len(qs)
}
