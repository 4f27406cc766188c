package hub

import (
	"runtime"
	"time"
)

// Pacing of digital night supervision. A region's look-ins share one
// planned instant (10,000 residents at 02:00); made back to back they keep
// one of a small hub's two cores busy for a quarter of a second and, with
// the garbage they make, delay alarms behind them (BenchmarkTillsynRegionNight
// measured +240 µs on alarm p99 with batches of 128 and 1 ms pauses). What
// the profiles showed: no lock was held long, but every stretch of a few
// milliseconds without a pause (taking 10,000 look-ins from the queue,
// 128 look-ins with their JSON) could leave an alarm waiting in the other
// core's run queue behind the garbage collector's worker, and the burst's
// allocations started a collection in the middle of the alarms. So the
// work runs in slices of about tillsynSlice, a chunk of tillsynChunk
// look-ins at most, with a pause of tillsynPause between (a pause, not
// runtime.Gosched: a goroutine that yields is picked again at once from
// the global run queue, while a pause lets the idle core steal the
// waiting alarm), and allocates about a third less.
//
// Why these two and not others: each pause costs CPU of its own on a
// small virtual machine (the goroutine parks, the idle core spins looking
// for work, the timer wakes it), so shorter slices with more pauses cost
// more CPU per look-in, and longer slices cost the alarm path more. The
// look-ins, made cheaper since (no encoding/json, batched engine reads,
// one evidence array per chunk), were measured again with slice/pause of
// 100/200, 200/250, 200/500, 300/500, 500/500 and 1000/1000 µs, each
// interleaved with the others: the CPU per look-in fell with every longer
// slice, the alarm p99 with look-ins rose with every slice over 200 µs,
// and 100 µs slices cost about twice the CPU for no better alarm p99. So
// the slice stays 200 µs and the pause 500 µs.
const (
	tillsynSlice = 200 * time.Microsecond
	tillsynPause = 500 * time.Microsecond
)

// pacer bounds one slice of supervision work and, for look-ins, keeps
// them out of the alarm lane's way (lanes.go).
type pacer struct {
	slice, pause time.Duration
	start        time.Time
	n            int
	// h is the hub whose alarm lane the work yields to (nil: it does not),
	// until yieldUntil: past it the work goes on beside alarms, still in
	// paced slices, so a look-in is judged by its deadline (tillsynDeadline)
	// even while alarms never stop.
	h          *Hub
	yieldUntil time.Time
	// until, when set, is where the tick's share of the work ends: lane
	// does not wait past it (the tick's goroutine also runs supervision,
	// which must not stall behind a long run of alarms), it reports
	// false, and the work stops there and goes on at the next tick.
	until time.Time
	// waited is the time spent waiting for the alarm lane.
	waited time.Duration
	stopFn func() bool
}

func newPacer(slice, pause time.Duration) *pacer {
	return &pacer{slice: slice, pause: pause, start: time.Now()}
}

// newLanePacer is newPacer for work that yields to h's alarm lane until
// yieldUntil.
func newLanePacer(h *Hub, yieldUntil time.Time) *pacer {
	p := newPacer(tillsynSlice, tillsynPause)
	p.h, p.yieldUntil = h, yieldUntil
	p.stopFn = h.alarmLaneBusy
	return p
}

// yielding reports whether the work still gives way to the alarm lane.
func (p *pacer) yielding() bool { return p.h != nil && time.Now().Before(p.yieldUntil) }

// lane waits while the alarm lane is busy (an event in the rule engine, a
// care event at the hub's lock or journal), at most tillsynLaneWait at a
// time, again and again until the lane is quiet or the work no longer
// yields. It is called between residents and before every hold of a lock
// the alarm path shares, so no slice starts or goes on while an alarm is
// on its way; a wait is a pause, so the slice starts afresh after it. It
// reports false when it stopped waiting because until has passed with
// the lane still busy: the caller then stops (the rest at the next tick).
func (p *pacer) lane() bool {
	if p.h == nil || !p.h.alarmLaneBusy() {
		return true
	}
	waited, ok := false, true
	for p.yielding() && p.h.alarmLaneBusy() {
		if !p.until.IsZero() && !time.Now().Before(p.until) {
			ok = false
			break
		}
		p.waited += p.h.waitForAlarmLane(tillsynLaneWait)
		waited = true
	}
	if waited {
		p.start, p.n = time.Now(), 0
	}
	return ok
}

// stop is what a hold of the rule engine's lock checks after each
// resident (rules.Engine.TillsynSnapshots): end the hold when an event
// wants the lock. Nil once the work no longer yields.
func (p *pacer) stop() func() bool {
	if !p.yielding() {
		return nil
	}
	return p.stopFn
}

// over reports whether the slice has used its time. It reads the clock
// every fourth call only: a look-in is a few microseconds.
func (p *pacer) over() bool {
	p.n++
	return p.n&3 == 0 && time.Since(p.start) >= p.slice
}

// spent reports whether the slice has used its time (reading the clock
// every call: for loops whose steps are a chunk of look-ins).
func (p *pacer) spent() bool { return time.Since(p.start) >= p.slice }

// yield ends the slice: a pause, or a Gosched when pause is 0, and a new
// slice begins (once the alarm lane is quiet).
func (p *pacer) yield() {
	if p.pause > 0 {
		time.Sleep(p.pause)
	} else {
		runtime.Gosched()
	}
	p.start = time.Now()
	p.lane()
}

// tillsynBudget bounds the wall time one tick spends judging look-ins
// (phase 2): the hub's one-second tick also runs supervision, which must
// not fall behind a region's burst. What is left goes on at the next tick.
const tillsynBudget = 500 * time.Millisecond

// tillsynChunk is how many due look-ins are taken from the queue at a
// time (under ts.mu): a region's 10,000 taken at once were one long
// stretch without a pause.
const tillsynChunk = 16

// tillsynHold bounds one hold of the rule engine's lock while residents'
// state is read (rules.Engine.TillsynSnapshots): an event on the alarm
// path, which takes that lock, waits at most about this long for it.
const tillsynHold = 20 * time.Microsecond

// Yielding to the alarm lane, and the deadline that bounds it. Look-ins
// wait while an alarm is on its way (pacer.lane), at most tillsynLaneWait
// at a time, for as long as their batch is younger than tillsynYieldFor,
// and within one tick for no longer than its judging budget (the rest at
// the next tick); reading the residents' state at the tick yields for at
// most tillsynSnapYieldFor, so the state read is the state at the tick,
// not seconds after it, and the night's scheduling, which looks at every
// plan every tick, for at most tillsynScheduleYieldFor. Past those the work goes on beside alarms, paced as
// before (a look-in must not wait forever behind an alarm storm: a
// resident on the floor would go unseen). A region's 10,000 look-ins take
// about 1 s of paced judging (BenchmarkTillsynRegionNight, tick-ms/instant;
// at most tillsynBudget per one-second tick), so a look-in is judged
// within tillsynYieldFor plus about 2 s of the tick that found it due,
// well inside tillsynDeadline. One judged later than tillsynDeadline after
// it fell due is counted (vaka_tillsyn_lookins_late_total) and logged:
// a hub that far behind is overloaded, and says so. Its record still
// carries its planned instant and the state read at the tick.
const (
	tillsynLaneWait     = 5 * time.Millisecond
	tillsynYieldFor     = 10 * time.Second
	tillsynSnapYieldFor = time.Second
	// tillsynScheduleYieldFor bounds what scheduling yields per tick.
	tillsynScheduleYieldFor = 20 * time.Millisecond
	tillsynDeadline         = 30 * time.Second
)

// tillsynJournalBytes bounds one write of look-in records to the journal
// (about a dozen records): an alarm's append, which takes the journal's
// lock, waits behind at most one such write if it arrives while one is
// under way (the lane is checked before each). A record is about 430 B,
// so a chunk of tillsynChunk look-ins is one write. (A variable: a test
// lowers it.)
var tillsynJournalBytes = 8 << 10
