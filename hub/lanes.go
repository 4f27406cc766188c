package hub

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
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
	// evaluating counts events being decoded or inside the rule engine
	// (not yet known to be care or not; a gateway's event from its first
	// byte in HandleEvent to its answer), and careBusy care events from
	// the moment the rules decided them until their reply (the hub's
	// lock, the journal's write). With careWaiting they are the alarm
	// lane that background work sharing the engine's lock, the journal or
	// the processors steps aside for (alarmLaneBusy; digital night
	// supervision, tillsyn.go).
	evaluating atomic.Int32
	careBusy   atomic.Int32
	// deferGroups is set while a technical batch (applyTechnical) holds
	// the lock: a group member's change then marks its group in
	// dirtyGroups instead of sending the whole group on the stream, and
	// the batch sends each changed group once at its end.
	deferGroups bool
	dirtyGroups map[string]struct{}
	// ev and evKey are the event acceptWith is applying under the lock
	// and its key (hotpath.go: eventKeyLocked).
	ev    *event.Event
	evKey string
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
func (h *Hub) lockForEvent(care bool) {
	if care {
		h.ln.careWaiting.Add(1)
		h.mu.Lock()
		h.ln.careWaiting.Add(-1)
		return
	}
	h.mu.Lock()
}

// evaluated ends an event's evaluating mark; a care event is then marked
// careBusy (before evaluating ends, so the lane never looks quiet in
// between) until careDone, once it has its answer.
func (h *Hub) evaluated(acts []rules.Action) (care bool) {
	care = careActs(acts)
	if care {
		h.ln.careBusy.Add(1)
	}
	h.ln.evaluating.Add(-1)
	return care
}

// careDone ends careBusy for a care event that has its answer.
func (h *Hub) careDone(care bool) {
	if care {
		h.ln.careBusy.Add(-1)
	}
}

// yieldToCare is called by technical loops between two actions: while a
// care event waits for the lock, let it run (bounded, so technical work
// cannot starve either).
func (h *Hub) yieldToCare() {
	for i := 0; i < 64 && h.ln.careWaiting.Load() > 0; i++ {
		runtime.Gosched()
	}
}

// alarmLaneBusy reports whether an event is in the rule engine (it may be
// care; the engine's lock is what it needs first) or a care event waits
// for or holds the hub's lock or is being journaled. Background work that
// runs beside the alarm path (look-ins) starts nothing while it is true.
func (h *Hub) alarmLaneBusy() bool {
	return h.ln.evaluating.Load() > 0 || h.ln.careBusy.Load() > 0 || h.ln.careWaiting.Load() > 0
}

// laneWaitStep is the pause while the alarm lane is busy: short against
// an alarm's tens of microseconds, so background work resumes soon after
// it, and a sleep rather than runtime.Gosched so that the processor goes
// to the alarm (which a lock released by the background goroutine put in
// that processor's run queue) and a spinning idle one is not kept busy.
const laneWaitStep = 20 * time.Microsecond

// waitForAlarmLane is yieldToCare for background work that holds no lock
// the alarm path needs: it returns once the alarm lane is quiet, or after
// at most max (so the work cannot starve), and reports how long it
// waited. First a few turns of runtime.Gosched (the alarm is often in
// this processor's run queue, just readied by a lock this goroutine let
// go), then short sleeps.
func (h *Hub) waitForAlarmLane(max time.Duration) time.Duration {
	if !h.alarmLaneBusy() {
		return 0
	}
	start := time.Now()
	for i := 0; h.alarmLaneBusy(); i++ {
		if i < 4 {
			runtime.Gosched()
			continue
		}
		if time.Since(start) >= max {
			break
		}
		time.Sleep(laneWaitStep)
	}
	return time.Since(start)
}

// Technical bulk work (supervision's "device silent" storm) runs in
// slices: at most techSliceItems actions or techSlice of time under the
// lock, then the lock is released and the processor given up, so a care
// event's goroutine, made runnable by its MQTT read meanwhile, waits
// behind at most one slice instead of the Go scheduler's 10 ms time slice
// (and the lock's hand-off) per turn. The runtime trace of a storm with
// one processor showed a press waiting 240–460 ms for the processor
// behind the raise loop before it ever reached the lock, where yieldToCare
// could have let it pass.
const (
	techSlice      = time.Millisecond
	techSliceItems = 128
)

// techPause is how the Tick loop gives up the processor between slices
// when the process has more than one (GOMAXPROCS > 1). With one,
// runtime.Gosched puts it behind every runnable goroutine, which is what
// is wanted; with two, a yielding goroutine is often picked again at once
// (nothing else in its processor's run queue) while a press waits in the
// other's, so a short sleep lets that processor, or the idle one, take it.
// BenchmarkStormPress -cpu 1,2 compares them (techPauseFor).
var techPause = 50 * time.Microsecond

// techYield gives up the processor between two technical slices.
func techYield() {
	if techPause <= 0 || runtime.GOMAXPROCS(0) == 1 {
		runtime.Gosched()
		return
	}
	time.Sleep(techPause)
}

// applyTechnical applies supervision's actions in slices (see techSlice).
// Each action keeps now, the time its deadline was judged at: a raise
// late by a few slices still says when the device was found silent.
// Before each slice, a care event waiting for the lock goes first.
func (h *Hub) applyTechnical(acts []rules.Action, now time.Time) {
	for len(acts) > 0 {
		h.yieldToCare()
		start := time.Now()
		h.mu.Lock()
		h.ln.deferGroups = true
		n := 0
		for n < len(acts) {
			h.applyLocked(acts[n], now)
			n++
			if n >= techSliceItems || h.ln.careWaiting.Load() > 0 || (n&7 == 0 && time.Since(start) >= techSlice) {
				break
			}
		}
		h.ln.deferGroups = false
		h.flushGroupsLocked()
		h.raiseStoreTroubleLocked(now)
		h.mu.Unlock()
		acts = acts[n:]
		if len(acts) > 0 {
			techYield()
		}
	}
}

// deferGroupLocked marks group g changed during a technical batch, for
// flushGroupsLocked; it reports false outside a batch (show it now).
func (h *Hub) deferGroupLocked(g *alarm.Alarm) bool {
	if !h.ln.deferGroups {
		return false
	}
	if h.ln.dirtyGroups == nil {
		h.ln.dirtyGroups = map[string]struct{}{}
	}
	h.ln.dirtyGroups[g.ID] = struct{}{}
	return true
}

// flushGroupsLocked sends each group changed during a technical batch
// once, as it is now: one clone of a group with its member list per slice,
// not one per member raised (a group's clone was a third of a storm's
// allocations, and the stream coalesces updates to one alarm anyway).
func (h *Hub) flushGroupsLocked() {
	for id := range h.ln.dirtyGroups {
		if g := h.alarms[id]; g != nil && g.Open() {
			h.broadcastLocked(g.Snapshot())
		}
	}
	clear(h.ln.dirtyGroups)
}

// forgetScan bounds how many alarms one Tick's forget looks at under the
// hub's lock. Scanning every alarm each second held the lock for about
// 5 ms with 50,000 open alarms (BenchmarkStormPress, forget-us), so about
// 25 ms with a region's 250,000: a press arriving then waited it out. A
// map range starts at a random place, so bounded scans cover every alarm
// in time (about n/forgetScan seconds); forgetting a week-old resolved
// alarm a minute later only keeps its memory a little longer.
const forgetScan = 4096
