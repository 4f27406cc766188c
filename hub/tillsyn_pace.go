package hub

import (
	"runtime"
	"time"
)

// Pacing of digital night supervision. A region's look-ins share one
// planned instant (10,000 residents at 02:00); made back to back they keep
// one of a small hub's two cores busy for a quarter of a second and, with
// the garbage they make, delay alarms behind them (BenchmarkTillsynRegionNight
// measured +240 µs on alarm p99). So the work runs in slices of at most
// tillsynSlice of CPU, and between two slices the supervision goroutine
// steps aside: runtime.Gosched while it reads sensor state (that must end
// close to the planned instant), a pause of tillsynPause while it judges,
// journals and acts (that may take a little longer). A runnable alarm
// then waits at most one slice for a core, and the look-ins use at most
// about a third of one core.
const (
	tillsynSlice = 200 * time.Microsecond
	tillsynPause = 500 * time.Microsecond
)

// pacer bounds one slice of supervision work.
type pacer struct {
	slice, pause time.Duration
	start        time.Time
	n            int
}

func newPacer(slice, pause time.Duration) *pacer {
	return &pacer{slice: slice, pause: pause, start: time.Now()}
}

// over reports whether the slice has used its time. It reads the clock
// every fourth call only: a look-in is a few microseconds.
func (p *pacer) over() bool {
	p.n++
	return p.n&3 == 0 && time.Since(p.start) >= p.slice
}

// yield ends the slice: a pause, or a Gosched when pause is 0, and a new
// slice begins.
func (p *pacer) yield() {
	if p.pause > 0 {
		time.Sleep(p.pause)
	} else {
		runtime.Gosched()
	}
	p.start = time.Now()
}

// step is over and yield in one: for loops with nothing to flush first.
func (p *pacer) step() {
	if p.over() {
		p.yield()
	}
}
