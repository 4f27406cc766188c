package main

// The fleet's generator (supervise and storm). A quarter of a million
// buttons send about 4,200 radio tests a second; a resident's press must
// never wait behind them, or the storm measures the generator instead of
// the hub. Before this, one loop published both through paho, one
// write(2) and a few goroutine hand-offs per message, and the presses
// queued behind the radio tests: in the full storm the slowest presses
// left the generator 6.8 s late (docs/benchmarks-storm.md, before).
//
// Now:
//   - every radio test is encoded once, before the run, into one
//     pointer-free arena (MQTT 3.1.1 PUBLISH, QoS 1 as before); at send
//     time it is copied into its connection's buffer and three fixed-width
//     fields are patched: packet id, event id and ts;
//   - each connection writes once per -write-every, its writes staggered
//     evenly over that interval, so the fleet's traffic is a steady stream
//     of small batches (about 8 radio tests per write at full scale), not a
//     burst each tick; one goroutine sends them, waking every ≥ 2 ms;
//   - the presses have their own goroutine, their own timerfd pacer and
//     (in the storm) their own gateway connection, so a fleet connection
//     the hub is slow to read cannot hold a press back;
//   - each press records when it was scheduled, when it was written and
//     when its alarm was raised (the alarm's raised_at) and read on the
//     stream, and each fleet write its lateness against its slot, so the
//     report tells the generator's lag from the hub's latency.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fixed-width fields patched into each pre-encoded radio test.
const (
	fleetSeqDigits = 12
	fleetTSLayout  = "2006-01-02T15:04:05.000000000Z07:00" // always 30 bytes in UTC
	fleetTSLen     = len("2006-01-02T15:04:05.000000000Z")
	// genLagValidMs: above this press send lag p99 (the generator's own
	// lateness), the storm's press figure is not a hub result.
	genLagValidMs = 5.0
	// fleetWriteTimeout bounds a connection's write, so a stuck hub
	// shows as lag and loss, not a hung generator.
	fleetWriteTimeout = 10 * time.Second
	fleetMinWake      = 2 * time.Millisecond
	// fleetPingEvery: a connection that wrote nothing for this long sends
	// a PINGREQ (keepalive rawKeepalive = 60 s).
	fleetPingEvery = 20 * time.Second
)

// fleetConn is one gateway's MQTT connection. The fleet sender and the
// press sender may both write (supervise sends presses through the fleet's
// gateways); mu keeps their packets whole. One reader goroutine counts
// PUBACKs; what is still unacknowledged at the end is a publish error.
type fleetConn struct {
	c     net.Conn
	mu    sync.Mutex
	buf   []byte
	next  uint16
	last  int64 // f.now() of the last write, under mu (keepalive)
	sent  atomic.Int64
	acked atomic.Int64
	done  chan struct{}
	err   atomic.Pointer[string]
	close atomic.Bool
}

// dialFleet connects gateway g (clean session, its credentials) and waits
// for the CONNACK.
func dialFleet(addr string, g int) (*fleetConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(appendConnect(nil, site+"-"+gatewayID(g), site+"/"+gatewayID(g), gwPass)); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	r := bufio.NewReaderSize(c, 4096)
	var ack [4]byte
	if _, err := io.ReadFull(r, ack[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("connack: %w", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 || ack[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("connack refused: % x", ack)
	}
	c.SetDeadline(time.Time{})
	fc := &fleetConn{c: c, done: make(chan struct{}), buf: make([]byte, 0, 4096)}
	go fc.read(r)
	return fc, nil
}

// read counts PUBACKs until the connection closes.
func (fc *fleetConn) read(r *bufio.Reader) {
	defer close(fc.done)
	for {
		h, err := r.ReadByte()
		if err == nil {
			var n int
			if n, err = readVarint(r); err == nil {
				if h>>4 == 4 {
					fc.acked.Add(1)
				}
				_, err = r.Discard(n)
			}
		}
		if err != nil {
			if !fc.close.Load() {
				msg := err.Error()
				fc.err.Store(&msg)
			}
			return
		}
	}
}

// nextID is the next packet id (1..65535, in turn). At 8 radio tests a
// second a connection never has 65,535 in flight unless the hub stopped
// acknowledging; then writeLocked's caller sees the write time out.
func (fc *fleetConn) nextID() uint16 {
	fc.next++
	if fc.next == 0 {
		fc.next = 1
	}
	return fc.next
}

// writeLocked writes the pending packets (n of them) with one write call.
func (fc *fleetConn) writeLocked(n int) error {
	if len(fc.buf) == 0 {
		return nil
	}
	fc.c.SetWriteDeadline(time.Now().Add(fleetWriteTimeout))
	_, err := fc.c.Write(fc.buf)
	fc.buf = fc.buf[:0]
	if err == nil {
		fc.sent.Add(int64(n))
	}
	return err
}

// publish writes one QoS 1 PUBLISH at once (a press).
func (fc *fleetConn) publish(topic, payload []byte) error {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.buf = appendPublish(fc.buf, topic, fc.nextID(), payload)
	return fc.writeLocked(1)
}

// waitAcks waits (bounded) until every written packet is acknowledged and
// returns how many were not.
func (fc *fleetConn) waitAcks(until time.Time) int64 {
	for fc.acked.Load() < fc.sent.Load() && time.Now().Before(until) && fc.err.Load() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	return max(0, fc.sent.Load()-fc.acked.Load())
}

func (fc *fleetConn) shutdown() {
	if fc.close.Swap(true) {
		return
	}
	fc.mu.Lock()
	fc.c.SetWriteDeadline(time.Now().Add(time.Second))
	fc.c.Write([]byte{0xe0, 0})
	fc.mu.Unlock()
	fc.c.Close()
	select {
	case <-fc.done:
	case <-time.After(2 * time.Second):
	}
}

// radioArena holds every button's radio test, pre-encoded: packet i is
// arena[start[i]:start[i+1]]. No pointers, so the GC never scans it.
type radioArena struct {
	arena []byte
	start []int32
}

// radioPrefix is the payload up to the event id's digits.
const radioPrefix = `{"v":1,"id":"rt`

// buildRadioArena encodes button i's radio test on topic(i) with zeroed
// packet id, event id and ts.
func buildRadioArena(buttons int, topic func(i int) string) (*radioArena, error) {
	ra := &radioArena{start: make([]int32, 0, buttons+1)}
	zeroSeq := make([]byte, fleetSeqDigits)
	for k := range zeroSeq {
		zeroSeq[k] = '0'
	}
	zeroTS := time.Unix(0, 0).UTC().AppendFormat(nil, fleetTSLayout)
	var payload []byte
	for i := range buttons {
		if len(ra.arena) > 1<<31-1024 {
			return nil, errors.New("radio tests do not fit in 2 GiB")
		}
		ra.start = append(ra.start, int32(len(ra.arena)))
		payload = append(payload[:0], radioPrefix...)
		payload = append(payload, zeroSeq...)
		payload = append(payload, `","device":"`...)
		payload = append(payload, fleetDevice(i)...)
		payload = append(payload, `","dty":"0003","ts":"`...)
		payload = append(payload, zeroTS...)
		payload = append(payload, `"}`...)
		ra.arena = appendPublish(ra.arena, []byte(topic(i)), 0, payload)
	}
	ra.start = append(ra.start, int32(len(ra.arena)))
	return ra, nil
}

// appendRadio copies button i's radio test to dst with packet id, event
// sequence and ts (fleetTSLen bytes) filled in.
func (ra *radioArena) appendRadio(dst []byte, i int, id uint16, seq int64, ts []byte) []byte {
	pkt := ra.arena[ra.start[i]:ra.start[i+1]]
	at := len(dst)
	dst = append(dst, pkt...)
	p := dst[at:]
	k := 1
	for p[k]&0x80 != 0 { // remaining length
		k++
	}
	k++
	k += 2 + (int(p[k])<<8 | int(p[k+1])) // topic
	p[k], p[k+1] = byte(id>>8), byte(id)
	s := p[k+2+len(radioPrefix) : k+2+len(radioPrefix)+fleetSeqDigits]
	for d := len(s) - 1; d >= 0; d-- {
		s[d] = byte('0' + seq%10)
		seq /= 10
	}
	copy(p[len(p)-2-fleetTSLen:], ts)
	return dst
}

// fleetPlan is who sends what: the connections, each connection's buttons
// in phase order, and the storm's press connection.
type fleetPlan struct {
	conns   []*fleetConn
	topics  [][]byte
	buttons [][]int32 // per connection, in phase order
	pos     []int     // per connection: next button in its list
	round   []int64   // per connection: beat round of that button
	radio   *radioArena
	// writeEvery is each connection's write interval; slot j falls at
	// j·writeEvery/len(conns), on connection j mod len(conns).
	writeEvery time.Duration
}

// fleetGateways is how many gateway connections the run opens: the fleet's,
// and in the storm one more that carries the press buttons (a home whose
// alarm unit works) so presses never share a connection with the fleet.
func (o *supOptions) fleetGateways() int {
	if o.PressButtons > 0 {
		return o.Gateways + 1
	}
	return o.Gateways
}

// gatewayOf is the connection button i reports through.
func (o *supOptions) gatewayOf(i int) int {
	if i >= o.Devices {
		return o.Gateways // the press gateway
	}
	return i % o.Gateways
}

// writeInterval is -write-every, or by default at most 1 s and short next
// to the beat and the grace, so batching never makes a working button
// look silent.
func (o *supOptions) writeInterval() time.Duration {
	if o.WriteEvery > 0 {
		return o.WriteEvery
	}
	return max(10*time.Millisecond, min(time.Second, o.Beat/10, o.Grace/4))
}

func newFleetPlan(o supOptions, conns []*fleetConn) (*fleetPlan, error) {
	n := len(conns)
	pl := &fleetPlan{conns: conns, topics: make([][]byte, n), buttons: make([][]int32, n), pos: make([]int, n),
		round: make([]int64, n), writeEvery: o.writeInterval()}
	for g := range n {
		pl.topics[g] = []byte("vaka/v1/" + supSite + "/" + gatewayID(g) + "/event")
	}
	buttons := o.Devices + o.PressButtons
	for i := range buttons {
		g := o.gatewayOf(i)
		pl.buttons[g] = append(pl.buttons[g], int32(i))
	}
	var err error
	pl.radio, err = buildRadioArena(buttons, func(i int) string { return string(pl.topics[o.gatewayOf(i)]) })
	return pl, err
}

// sendFleet sends the fleet's radio tests from off (ns since f.base) until
// end, slot by slot, and returns each slot's lateness (ns) in lags. Button
// i is due at off + round·beat + phase(i); it goes out in its
// connection's first slot at or after that, unless that slot is after its
// stopAt. The ts it carries, and lastBeat, are the slot's send time.
func (pl *fleetPlan) sendFleet(f *fleet, off, end int64, stop <-chan struct{}) (lags []int64, err error) {
	o := f.o
	n := int64(len(pl.conns))
	period := o.Beat.Nanoseconds()
	buttons := int64(o.Devices + o.PressButtons)
	phase := func(i int32) int64 { return int64(i) * period / buttons }
	slot := func(j int64) int64 { return j * pl.writeEvery.Nanoseconds() / n }
	sleep, closePacer := fleetSleeper()
	defer closePacer()
	ts := make([]byte, 0, 40)
	var seq int64
	for j := int64(0); ; {
		now := f.now() - off
		if slot(j) >= end {
			return lags, nil
		}
		if d := slot(j) - now; d > 0 {
			sleep(max(time.Duration(d), fleetMinWake))
			now = f.now() - off
		}
		select {
		case <-stop:
			return lags, nil
		default:
		}
		tsAt := now + off
		ts = f.base.Add(time.Duration(tsAt)).UTC().AppendFormat(ts[:0], fleetTSLayout)
		for ; slot(j) <= now && slot(j) < end; j++ {
			g := int(j % n)
			fc := pl.conns[g]
			list := pl.buttons[g]
			if len(list) == 0 {
				continue
			}
			fc.mu.Lock()
			if now+off-fc.last > int64(fleetPingEvery) {
				// Its buttons have all fallen silent: keep the gateway
				// connected (PINGREQ), as a real gateway would, so the
				// broker does not drop it after 1.5 keepalives.
				fc.buf = append(fc.buf, 0xc0, 0)
			}
			k := 0
			for pl.round[g]*period+phase(list[pl.pos[g]]) <= now {
				i := int(list[pl.pos[g]])
				if now <= o.stopAt(i) {
					seq++
					fc.buf = pl.radio.appendRadio(fc.buf, i, fc.nextID(), seq, ts)
					k++
					if i < len(f.lastBeat) {
						f.lastBeat[i].Store(tsAt)
					}
				}
				if pl.pos[g]++; pl.pos[g] == len(list) {
					pl.pos[g], pl.round[g] = 0, pl.round[g]+1
				}
			}
			lags = append(lags, f.now()-off-slot(j))
			if len(fc.buf) > 0 {
				fc.last = now + off
			}
			werr := fc.writeLocked(k)
			fc.mu.Unlock()
			if werr != nil {
				return lags, fmt.Errorf("gateway %d: write: %w", g, werr)
			}
			f.beats.Add(int64(k))
		}
	}
}

// appendPress appends press p's event on button i.
func appendPress(dst []byte, p, i int, ts []byte) []byte {
	dst = append(dst, `{"v":1,"id":"`...)
	dst = append(dst, supPressBase...)
	dst = strconv.AppendInt(dst, int64(p), 10)
	dst = append(dst, `","device":"`...)
	dst = append(dst, fleetDevice(i)...)
	dst = append(dst, `","dty":"0003","stc":"0010","state":"pressed","ts":"`...)
	dst = append(dst, ts...)
	return append(dst, `"}`...)
}

// sendPresses sends press p at f.pressSched[p] on its own goroutine and
// pacer, recording when it was written. It returns how many it sent.
func (pl *fleetPlan) sendPresses(f *fleet, stop <-chan struct{}) (int, error) {
	o := f.o
	sleep, closePacer := fleetSleeper()
	defer closePacer()
	var payload, ts []byte
	for p := range f.pressSched {
		if d := f.pressSched[p] - f.now(); d > 0 {
			sleep(time.Duration(d))
		}
		select {
		case <-stop:
			return p, nil
		default:
		}
		i := o.pressButton(p)
		g := o.gatewayOf(i)
		tsAt := f.now()
		ts = f.base.Add(time.Duration(tsAt)).UTC().AppendFormat(ts[:0], time.RFC3339Nano)
		payload = appendPress(payload[:0], p, i, ts)
		f.pressSent[p] = f.now()
		if err := pl.conns[g].publish(pl.topics[g], payload); err != nil {
			return p, fmt.Errorf("press %d: gateway %d: write: %w", p, g, err)
		}
	}
	return len(f.pressSched), nil
}

// fleetSleeper is a precise sleep (timerfd, pace_linux.go) with Go's
// sleep as the fallback.
func fleetSleeper() (func(time.Duration), func()) {
	p, err := newPacer()
	if err != nil {
		return time.Sleep, func() {}
	}
	return func(d time.Duration) {
		if p.sleep(d) != nil {
			time.Sleep(d)
		}
	}, p.close
}

// schedLatency reads the generator process's scheduling latency histogram
// (how long runnable goroutines waited for the one processor: the stream
// reader's and the senders' own queueing).
func schedLatency() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	h := s[0].Value.Float64Histogram()
	return &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
}

// histQuantile is quantile q (0..1) of b − a in ms (the bucket's upper
// bound; 0 when empty).
func histQuantile(a, b *metrics.Float64Histogram, q float64) float64 {
	if a == nil || b == nil || len(a.Counts) != len(b.Counts) {
		return 0
	}
	var total uint64
	for k := range b.Counts {
		total += b.Counts[k] - a.Counts[k]
	}
	if total == 0 {
		return 0
	}
	want := uint64(float64(total)*q + 0.999999)
	var cum uint64
	for k := range b.Counts {
		cum += b.Counts[k] - a.Counts[k]
		if cum >= want {
			up := b.Buckets[k+1]
			if up > 1e9 { // +Inf
				up = b.Buckets[k]
			}
			return up * 1e3
		}
	}
	return 0
}

// procRunWait is how long a process's threads have waited, runnable, for a
// CPU the kernel gave to something else (/proc/PID/task/*/schedstat, its
// second field; 0 where unreadable). On a shared machine this is the time
// other processes took from it: a press that waits there waits for the
// machine, not for the hub's code.
func procRunWait(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum int64
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			sum += v
		}
	}
	return time.Duration(sum)
}

// runWaits is runWaitSampler's result: per process (the generator, the
// hub) the worst one-second window in ms of waiting per second, and the
// hub's wait in each second since the sampler started (ms).
type runWaits struct {
	genMax, hubMax float64
	hubSeries      []float64
	start          int64 // f.now() when the sampler started
}

// runWaitSampler samples procRunWait of the generator and the hub every
// second until stopped.
func runWaitSampler(hubPid int, now func() int64) (stop func() runWaits) {
	done := make(chan struct{})
	out := make(chan runWaits, 1)
	self := os.Getpid()
	go func() {
		r := runWaits{start: now()}
		prev := [2]time.Duration{procRunWait(self), procRunWait(hubPid)}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				out <- r
				return
			case <-t.C:
			}
			cur := [2]time.Duration{procRunWait(self), procRunWait(hubPid)}
			g, h := float64(cur[0]-prev[0])/1e6, float64(cur[1]-prev[1])/1e6
			r.genMax, r.hubMax = max(r.genMax, g), max(r.hubMax, h)
			r.hubSeries = append(r.hubSeries, h)
			prev = cur
		}
	}()
	return func() runWaits { close(done); return <-out }
}
