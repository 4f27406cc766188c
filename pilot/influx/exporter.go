// Package influx exports pilot evidence to InfluxDB (2.x/Cloud, or 1.8+
// with bucket "db/rp") off the alarm path, and reads pilot records back
// with Flux.
//
// The hub calls the Exporter as a hub.Observer while it holds its alarm
// lock, so the Exporter only copies and hands off to a bounded channel
// (full: counted and logged, never waiting). A pump turns what it takes
// into line protocol (tags in key order, pseudonyms cached), appends it to
// a durable on-disk Spool (one fsync per batch), times device outages from
// each device's last sign of life, and gives pilot records and outages to
// the embedded store; a writer posts the spool to InfluxDB's write
// endpoint, up to Options.Writers batches side by side, retrying with
// backoff and advancing the spool's cursor only past a prefix of batches
// that InfluxDB has answered 2xx. An outage therefore loses nothing that
// reached the spool; every drop (channel full, spool full, a batch
// InfluxDB refuses as malformed) is counted in Dropped, which the hub
// raises as a technical alarm. A config reload (SetModel) passes through
// the same channel, so points observed after it carry the new trial and
// arm tags.
package influx

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/pilot"
	"github.com/vaka-care/vaka/tillsyn"
)

// Sink writes a batch of line-protocol lines, each ending in '\n',
// somewhere (InfluxDB). It must not keep body after returning. An error
// that implements Permanent() bool returning true is not retried.
type Sink interface {
	Write(ctx context.Context, body []byte) error
}

// RecordStore keeps pilot records (the embedded store).
type RecordStore interface {
	Add(recs []pilot.Record) error
}

// OutageStore keeps device outage records; a RecordStore that is one
// also gets them.
type OutageStore interface {
	AddOutages(os []pilot.Outage) error
}

// Options configure an Exporter.
type Options struct {
	Model *pilot.Model
	// Spool and Sink are both set (InfluxDB configured) or both nil.
	Spool *Spool
	Sink  Sink
	// Local receives the pilot record of each resolved alarm. Optional.
	Local  RecordStore
	Logger *slog.Logger
	// Queue bounds the in-memory hand-off (default 16384 items).
	Queue int
	// Batch is the most lines per InfluxDB write (default 10000).
	Batch int
	// Writers is how many batches may be in flight to InfluxDB at once
	// (default 2); the spool's cursor only ever moves past a prefix of
	// batches that all succeeded, so a failure resends (InfluxDB keeps one
	// point per series and time: a resent point is not a second one).
	Writers int
	// MinBackoff and MaxBackoff bound the retry delay (100 ms, 30 s).
	MinBackoff, MaxBackoff time.Duration
	// WriteTimeout bounds one write (default 10 s).
	WriteTimeout time.Duration
}

// item is one thing for the pump, passed by value (the channel holds
// small items; only the event or step copy is allocated).
type item struct {
	ev       *event.Event // an accepted event (a copy), with InfluxDB
	alive    alive        // or, without it, only a device's sign of life
	received time.Time
	step     *pilot.Step // or an alarm transition's step
	// model, when set, is a reloaded config: items after it are tagged
	// with its trials and arms, and its participants are exported.
	model *pilot.Model
	// lookin and visit are digital night supervision (tillsyn.go).
	lookin *tillsyn.Record
	visit  *tillsyn.Visit
}

// alive names a device heard at item.received.
type alive struct{ site, device string }

// maxTracked bounds the devices whose last sign of life (and open
// outage) the pump remembers.
const maxTracked = 1 << 16

// Exporter is a hub.Observer that exports pilot evidence.
type Exporter struct {
	o   Options
	log *slog.Logger
	// model is the current pilot model (trials, arms); the pump swaps it
	// in order with the items around a reload.
	model atomic.Pointer[pilot.Model]
	// Pump-only state: each device's last sign of life and its outage
	// not yet ended (pilot.Outage), keyed site + "\x00" + device.
	lastSeen map[string]time.Time
	open     map[string]pilot.Outage
	closed   map[string]string // device → outage id its next event ended
	ch       chan item
	wake     chan struct{}
	stop     chan struct{}
	ctx      context.Context // cancelled by Close: ends a write in flight
	quit     context.CancelFunc

	pumpDone   chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once

	queueDropped atomic.Int64
	inflight     atomic.Int64 // taken into the queue, not yet spooled (for Flush)
	storeDropped atomic.Int64 // records the embedded store could not take
	rejected     atomic.Int64 // lines InfluxDB refused as malformed
	written      atomic.Int64
	writeErrors  atomic.Int64
	lastDropLog  atomic.Int64
}

// New starts an exporter's pump and writer.
func New(o Options) *Exporter {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Queue <= 0 {
		o.Queue = 16384
	}
	if o.Batch <= 0 {
		o.Batch = 10000
	}
	if o.Writers <= 0 {
		o.Writers = 2
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	e := &Exporter{o: o, log: o.Logger, ch: make(chan item, o.Queue), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), pumpDone: make(chan struct{}), writerDone: make(chan struct{})}
	e.ctx, e.quit = context.WithCancel(context.Background())
	e.lastSeen, e.open, e.closed = map[string]time.Time{}, map[string]pilot.Outage{}, map[string]string{}
	e.model.Store(o.Model)
	if o.Model != nil && o.Spool != nil {
		e.inflight.Add(1)
		e.ch <- item{model: o.Model} // export the participants
	}
	go e.pump()
	if o.Sink != nil && o.Spool != nil {
		go e.writer()
	} else {
		close(e.writerDone)
	}
	return e
}

// ObserveEvent implements hub.Observer: copy, hand off, never wait.
// Without InfluxDB, only the device's sign of life passes (site, device,
// time: no copy of the event on the heap), which times device outages for
// the embedded store; an offline report is no sign of life and stays out.
func (e *Exporter) ObserveEvent(ev *event.Event, received time.Time) {
	if e.o.Spool == nil {
		if ev.Status != event.Offline && ev.Device != "" { // device "" would read as no sign
			e.offer(item{alive: alive{site: ev.Site, device: ev.Device}, received: received})
		}
		return
	}
	c := new(event.Event)
	*c = *ev
	e.offer(item{ev: c, received: received})
}

// ObserveTransition implements hub.Observer.
func (e *Exporter) ObserveTransition(a *alarm.Alarm, t alarm.Transition) {
	if e.o.Spool == nil && t.Action != alarm.ActResolve && a.Rule != pilot.RuleDeviceSilent {
		return // without InfluxDB: pilot records and outages only
	}
	st := pilot.StepOf(a, t)
	e.offer(item{step: &st})
}

// SetModel swaps in a reloaded pilot model: points observed after the
// call carry its trial and arm tags (those before keep the old ones), and
// its participants are exported. It is not on the alarm path: it waits up
// to 5 s for room in the queue, else applies the model at once.
func (e *Exporter) SetModel(m *pilot.Model) {
	if m == nil {
		return
	}
	e.inflight.Add(1)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case e.ch <- item{model: m}:
	case <-t.C:
		e.inflight.Add(-1)
		e.model.Store(m)
		e.log.Warn("pilot: export queue full at a config reload; new trial tags apply at once")
	case <-e.stop:
		e.inflight.Add(-1)
	}
}

// Model is the pilot model the exporter tags with now.
func (e *Exporter) Model() *pilot.Model { return e.model.Load() }

func (e *Exporter) offer(it item) {
	e.inflight.Add(1)
	select {
	case e.ch <- it:
	default:
		e.inflight.Add(-1)
		n := e.queueDropped.Add(1)
		// Log at most once a second; the count is exact in Dropped.
		now := time.Now().UnixNano()
		if last := e.lastDropLog.Load(); now-last > int64(time.Second) && e.lastDropLog.CompareAndSwap(last, now) {
			e.log.Error("pilot: export queue full, pilot data dropped", "dropped_total", n)
		}
	}
}

// Dropped is every item lost anywhere in the export: queue full, spool
// full, refused by InfluxDB as malformed, or not taken by the embedded
// store. The hub raises a rise as a technical alarm.
func (e *Exporter) Dropped() int64 {
	n := e.queueDropped.Load() + e.storeDropped.Load() + e.rejected.Load()
	if e.o.Spool != nil {
		n += e.o.Spool.Dropped() + e.o.Spool.Corrupt()
	}
	return n
}

// Stats are the exporter's counters, for metrics.
type Stats struct {
	QueueDropped, SpoolDropped, SpoolCorrupt, StoreDropped, Rejected, Written, WriteErrors, SpoolBytes int64
	Queued                                                                                             int
}

// Stats returns the counters now.
func (e *Exporter) Stats() Stats {
	st := Stats{QueueDropped: e.queueDropped.Load(), StoreDropped: e.storeDropped.Load(), Rejected: e.rejected.Load(),
		Written: e.written.Load(), WriteErrors: e.writeErrors.Load(), Queued: len(e.ch)}
	if e.o.Spool != nil {
		st.SpoolDropped, st.SpoolCorrupt, st.SpoolBytes = e.o.Spool.Dropped(), e.o.Spool.Corrupt(), e.o.Spool.Pending()
	}
	return st
}

func (e *Exporter) pump() {
	defer close(e.pumpDone)
	batch := make([]item, 0, 4096)
	var lines [][]byte
	var buf []byte
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		clear(batch) // let the copies go
		batch = batch[:0]
		select {
		case it := <-e.ch:
			batch = append(batch, it)
		case <-e.stop:
			// Drain what is queued, then stop.
			for {
				select {
				case it := <-e.ch:
					batch = append(batch, it)
					if len(batch) < cap(batch) {
						continue
					}
					e.flush(batch, &lines, &buf)
					batch = batch[:0]
					continue
				default:
				}
				break
			}
			e.flush(batch, &lines, &buf)
			return
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case it := <-e.ch:
				batch = append(batch, it)
			default:
				break more
			}
		}
		e.flush(batch, &lines, &buf)
		if len(batch) < cap(batch) {
			// Linger before taking more: items gather in the channel
			// meanwhile, so the hub's send rarely has to wake a parked
			// pump (the costly part of a channel send on the alarm path),
			// and batches (one fsync each) grow.
			t.Reset(pumpLinger)
			select {
			case <-t.C:
			case <-e.stop:
				t.Stop()
			}
		}
	}
}

// pumpLinger is how long the pump waits after a batch that did not fill:
// pilot data reaches the spool at most this much later.
const pumpLinger = 2 * time.Millisecond

// flushSlice is how many items flush encodes before it gives up the
// processor: a full batch (4,096 items) is a few milliseconds of
// encoding, which with one processor (GOMAXPROCS 1) a care alarm's
// goroutine would wait out whole (the runtime trace of a storm counted
// 150 ms of the exporter in a press's waits).
const flushSlice = 256

func (e *Exporter) flush(batch []item, lines *[][]byte, buf *[]byte) {
	if len(batch) == 0 {
		return
	}
	*lines = (*lines)[:0]
	b := (*buf)[:0]
	var recs []pilot.Record
	var outs []pilot.Outage
	var lookins []pilot.LookIn
	var visits []pilot.Visit
	influx := e.o.Spool != nil
	add := func(start int) { *lines = append(*lines, b[start:]) }
	for i, it := range batch {
		if i > 0 && i%flushSlice == 0 {
			runtime.Gosched() // see flushSlice
		}
		m := e.model.Load()
		start := len(b)
		switch {
		case it.model != nil:
			e.model.Store(it.model)
			if influx {
				for _, p := range it.model.Participation() {
					start = len(b)
					b = ParticipationLine(&p, b)
					add(start)
				}
			}
		case it.lookin != nil:
			x := m.LookIn(*it.lookin)
			lookins = append(lookins, x)
			if influx {
				b = LookInLine(&x, b)
				add(start)
			}
		case it.visit != nil:
			x := m.Visit(*it.visit, it.visit.Unit)
			visits = append(visits, x)
			if influx {
				b = VisitLine(&x, b)
				add(start)
			}
		case it.alive.device != "":
			outs = e.heard(it.alive.site, it.alive.device, it.received, outs)
		case it.ev != nil:
			if it.ev.Status != event.Offline { // a sign of life
				outs = e.heard(it.ev.Site, it.ev.Device, it.received, outs)
			}
			if influx {
				b = EventLine(m, it.ev, it.received, b)
				add(start)
			}
		default:
			st := it.step
			if influx {
				b = TransitionLine(m, st, b)
				add(start)
			}
			if st.IsOutage() {
				if o, ok := e.outage(m, st); ok {
					outs = append(outs, o)
				}
			}
			if st.Action == alarm.ActResolve {
				r := m.Record(*st)
				recs = append(recs, r)
				if influx {
					start = len(b)
					b = RecordLine(&r, b)
					add(start)
				}
			}
		}
	}
	if influx {
		for i := range outs {
			start := len(b)
			b = OutageLine(&outs[i], b)
			add(start)
		}
	}
	// b may have grown (moved): re-slice lines from the final buffer.
	if len(*lines) > 0 {
		off := 0
		for i, l := range *lines {
			(*lines)[i] = b[off : off+len(l)]
			off += len(l)
		}
	}
	*buf = b
	if influx && len(*lines) > 0 {
		if _, err := e.o.Spool.Append(*lines); err != nil {
			e.log.Error("pilot: spool write failed", "err", err)
		}
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	if e.o.Local != nil && len(recs) > 0 {
		if err := e.o.Local.Add(recs); err != nil {
			e.storeDropped.Add(int64(len(recs)))
			e.log.Error("pilot: embedded store write failed", "records", len(recs), "err", err)
		}
	}
	if ss, ok := e.o.Local.(SupervisionStore); ok && len(lookins)+len(visits) > 0 {
		if err := ss.AddSupervision(lookins, visits); err != nil {
			e.storeDropped.Add(int64(len(lookins) + len(visits)))
			e.log.Error("pilot: embedded store write failed", "lookins", len(lookins), "visits", len(visits), "err", err)
		}
	}
	if os, ok := e.o.Local.(OutageStore); ok && len(outs) > 0 {
		if err := os.AddOutages(outs); err != nil {
			e.storeDropped.Add(int64(len(outs)))
			e.log.Error("pilot: embedded store write failed", "outages", len(outs), "err", err)
		}
	}
	e.inflight.Add(-int64(len(batch)))
}

// heard records a device's sign of life at t; if it ends the device's
// open outage, that outage is appended to outs, ended at t.
func (e *Exporter) heard(site, device string, t time.Time, outs []pilot.Outage) []pilot.Outage {
	k := site + "\x00" + device
	e.track(e.lastSeen, k, t)
	if o, ok := e.open[k]; ok {
		delete(e.open, k)
		o.RestoredAt = t
		outs = append(outs, o)
		// The hub's restore of the same outage follows.
		if len(e.closed) >= maxTracked {
			clear(e.closed)
		}
		e.closed[k] = o.ID
	}
	return outs
}

// track remembers k → v in a map bounded by maxTracked (a full map
// forgets an arbitrary entry: a device of a misconfigured flood, most
// likely).
func (e *Exporter) track(m map[string]time.Time, k string, v time.Time) {
	if _, ok := m[k]; !ok && len(m) >= maxTracked {
		for old := range m {
			delete(m, old)
			break
		}
	}
	m[k] = v
}

// outage turns a device_silent alarm's step into an outage record to
// write: at the raise (from the device's last sign of life) and at the
// restore. A device heard again after its alarm was resolved ends the
// outage at that event (flush).
func (e *Exporter) outage(m *pilot.Model, st *pilot.Step) (pilot.Outage, bool) {
	k := st.Site + "\x00" + st.Device
	switch st.Action {
	case alarm.ActRaise:
		o := m.OutageOf(*st, e.lastSeen[k])
		if _, ok := e.open[k]; !ok && len(e.open) >= maxTracked {
			for old := range e.open {
				delete(e.open, old)
				break
			}
		}
		e.open[k] = o
		return o, true
	case alarm.ActRestore:
		o, ok := e.open[k]
		if ok && o.ID == st.Alarm {
			delete(e.open, k)
			o.RestoredAt = st.At
			return o, true
		}
		if e.closed[k] == st.Alarm {
			delete(e.closed, k) // ended already by the event that restored it
			return pilot.Outage{}, false
		}
		if st.RestoredAt.IsZero() {
			return pilot.Outage{}, false
		}
		// Raised before a restart: what the alarm itself knows.
		return m.OutageOf(*st, time.Time{}), true
	}
	return pilot.Outage{}, false
}

type permanent interface{ Permanent() bool }

func (e *Exporter) writer() {
	defer close(e.writerDone)
	backoff := time.Duration(0)
	bufs := make([][]byte, e.o.Writers)
	batches := make([]Batch, 0, e.o.Writers)
	errs := make([]error, e.o.Writers)
	for {
		// Up to Writers batches from the committed cursor on.
		cur := e.o.Spool.Committed()
		batches = batches[:0]
		skipped := false
		for i := 0; i < e.o.Writers; i++ {
			b, err := e.o.Spool.ReadBatch(cur, e.o.Batch, bufs[i])
			bufs[i] = b.Body
			if err != nil {
				e.log.Error("pilot: spool read failed", "err", err)
			}
			if b.Lines == 0 {
				if i == 0 && err == nil && b.Next != cur {
					// Only corrupt lines (counted): move on past them.
					_ = e.o.Spool.Commit(b.Next)
					skipped = true
				}
				break
			}
			batches = append(batches, b)
			cur = b.Next
		}
		if skipped {
			continue
		}
		if len(batches) == 0 {
			select {
			case <-e.wake:
				continue
			case <-e.stop:
				return
			}
		}
		// Send them side by side.
		var wg sync.WaitGroup
		for i := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(e.ctx, e.o.WriteTimeout)
				errs[i] = e.o.Sink.Write(ctx, batches[i].Body)
				cancel()
			}()
		}
		wg.Wait()
		// Commit the prefix that InfluxDB took (or refused for good).
		var commit Cursor
		failed := false
		for i, b := range batches {
			err := errs[i]
			if err != nil {
				var p permanent
				if !errors.As(err, &p) || !p.Permanent() {
					failed = true
					e.writeErrors.Add(1)
					backoff = min(max(backoff*2, e.o.MinBackoff), e.o.MaxBackoff)
					e.log.Warn("pilot: InfluxDB write failed; kept in the spool, retrying", "lines", b.Lines, "retry_in", backoff, "err", err)
					break
				}
				e.rejected.Add(int64(b.Lines))
				e.log.Error("pilot: InfluxDB refused a batch as malformed; skipped", "lines", b.Lines, "err", err)
			} else {
				e.written.Add(int64(b.Lines))
			}
			commit = b.Next
		}
		if commit != (Cursor{}) {
			if err := e.o.Spool.Commit(commit); err != nil {
				e.log.Error("pilot: spool commit failed", "err", err)
			}
		}
		if failed {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
				continue
			case <-e.stop:
				t.Stop()
				return
			}
		}
		if backoff > 0 {
			e.log.Info("pilot: InfluxDB writes resumed", "spool_bytes", e.o.Spool.Pending())
		}
		backoff = 0
		select {
		case <-e.stop:
			return
		default:
		}
	}
}

// Flush waits until the spool is empty or ctx ends (tests, shutdown).
func (e *Exporter) Flush(ctx context.Context) error {
	for {
		// inflight counts items from offer until the pump has spooled
		// them, so a batch the pump is holding is never missed.
		if e.inflight.Load() == 0 && (e.o.Spool == nil || e.o.Spool.Pending() == 0) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops the exporter: queued items reach the spool (and the
// embedded store), the writer stops, and the spool closes. What InfluxDB
// has not taken is written at the next start.
func (e *Exporter) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.stop)
		e.quit()
		<-e.pumpDone
		<-e.writerDone
		if e.o.Spool != nil {
			err = e.o.Spool.Close()
		}
	})
	return err
}
