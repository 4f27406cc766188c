package hub

import (
	"runtime"
	"sync/atomic"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/rules"
)

// laneState lets a care event go before technical work at the hub's one
// lock. The alarm path has no queue of its own (each event is evaluated
// in its publisher's goroutine and journaled before its PUBACK), so the
// only place a care alarm can wait behind technical work is that lock,
// while supervision applies a storm of "device silent" alarms one by one.
// Between two of those, the technical loop steps aside while a care
// event is waiting for the lock.
type laneState struct {
	careWaiting atomic.Int32
}

// careActs reports whether any action raises or updates a care alarm.
func careActs(acts []rules.Action) bool {
	for _, a := range acts {
		if a.Alarm != alarm.KindTechnical {
			return true
		}
	}
	return false
}

// lockForEvent takes the hub's lock for an event's actions, announcing a
// care event so technical loops let it pass.
func (h *Hub) lockForEvent(acts []rules.Action) {
	if careActs(acts) {
		h.ln.careWaiting.Add(1)
		h.mu.Lock()
		h.ln.careWaiting.Add(-1)
		return
	}
	h.mu.Lock()
}

// yieldToCare is called by technical loops between two actions: while a
// care event waits for the lock, let it run (bounded, so technical work
// cannot starve either).
func (h *Hub) yieldToCare() {
	for i := 0; i < 64 && h.ln.careWaiting.Load() > 0; i++ {
		runtime.Gosched()
	}
}
