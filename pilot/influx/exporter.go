// Package influx exports pilot evidence to InfluxDB (2.x/Cloud, or 1.8+
// with bucket "db/rp") off the alarm path, and reads pilot records back
// with Flux.
//
// The hub calls the Exporter as a hub.Observer while it holds its alarm
// lock, so the Exporter only copies and hands off to a bounded channel
// (full: counted and logged, never waiting). A pump turns what it takes
// into line protocol, appends it to a durable on-disk Spool (one fsync per
// batch) and gives pilot records to the embedded store; a writer sends the
// spool to InfluxDB with the blocking write API, retrying with backoff and
// advancing the spool's cursor only after InfluxDB has answered 2xx. An
// outage therefore loses nothing that reached the spool; every drop
// (channel full, spool full, a batch InfluxDB refuses as malformed) is
// counted in Dropped, which the hub raises as a technical alarm.
package influx

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/pilot"
)

// Sink writes line-protocol lines somewhere (InfluxDB). An error that
// implements Permanent() bool returning true is not retried.
type Sink interface {
	Write(ctx context.Context, lines []string) error
}

// RecordStore keeps pilot records (the embedded store).
type RecordStore interface {
	Add(recs []pilot.Record) error
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
	// Batch is the most lines per InfluxDB write (default 5000).
	Batch int
	// MinBackoff and MaxBackoff bound the retry delay (100 ms, 30 s).
	MinBackoff, MaxBackoff time.Duration
	// WriteTimeout bounds one write (default 10 s).
	WriteTimeout time.Duration
}

type item struct {
	ev       event.Event
	received time.Time
	step     pilot.Step
	isStep   bool
}

// Exporter is a hub.Observer that exports pilot evidence.
type Exporter struct {
	o    Options
	log  *slog.Logger
	ch   chan *item
	wake chan struct{}
	stop chan struct{}
	ctx  context.Context // cancelled by Close: ends a write in flight
	quit context.CancelFunc

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
		o.Batch = 5000
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
	e := &Exporter{o: o, log: o.Logger, ch: make(chan *item, o.Queue), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), pumpDone: make(chan struct{}), writerDone: make(chan struct{})}
	e.ctx, e.quit = context.WithCancel(context.Background())
	go e.pump()
	if o.Sink != nil && o.Spool != nil {
		go e.writer()
	} else {
		close(e.writerDone)
	}
	return e
}

// ObserveEvent implements hub.Observer: copy, hand off, never wait.
func (e *Exporter) ObserveEvent(ev *event.Event, received time.Time) {
	if e.o.Spool == nil {
		return // events go to InfluxDB only
	}
	e.offer(&item{ev: *ev, received: received})
}

// ObserveTransition implements hub.Observer.
func (e *Exporter) ObserveTransition(a *alarm.Alarm, t alarm.Transition) {
	if e.o.Spool == nil && t.Action != alarm.ActResolve {
		return
	}
	e.offer(&item{step: pilot.StepOf(a, t), isStep: true})
}

func (e *Exporter) offer(it *item) {
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
	batch := make([]*item, 0, 1024)
	var lines [][]byte
	var buf []byte
	for {
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
	}
}

func (e *Exporter) flush(batch []*item, lines *[][]byte, buf *[]byte) {
	if len(batch) == 0 {
		return
	}
	m := e.o.Model
	*lines = (*lines)[:0]
	b := (*buf)[:0]
	var recs []pilot.Record
	for _, it := range batch {
		start := len(b)
		if !it.isStep {
			b = EventLine(m, &it.ev, it.received, b)
			*lines = append(*lines, b[start:])
			continue
		}
		if e.o.Spool != nil {
			b = TransitionLine(m, &it.step, b)
			*lines = append(*lines, b[start:])
		}
		if it.step.Action == alarm.ActResolve {
			r := m.Record(it.step)
			recs = append(recs, r)
			if e.o.Spool != nil {
				start = len(b)
				b = RecordLine(&r, b)
				*lines = append(*lines, b[start:])
			}
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
	if e.o.Spool != nil && len(*lines) > 0 {
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
	e.inflight.Add(-int64(len(batch)))
}

type permanent interface{ Permanent() bool }

func (e *Exporter) writer() {
	defer close(e.writerDone)
	backoff := time.Duration(0)
	for {
		lines, next, err := e.o.Spool.Read(e.o.Batch)
		if err != nil {
			e.log.Error("pilot: spool read failed", "err", err)
		}
		if len(lines) == 0 {
			if next != (Cursor{}) && err == nil {
				// Skipped only corrupt lines: move on past them.
				_ = e.o.Spool.Commit(next)
			}
			select {
			case <-e.wake:
				continue
			case <-e.stop:
				return
			}
		}
		ctx, cancel := context.WithTimeout(e.ctx, e.o.WriteTimeout)
		err = e.o.Sink.Write(ctx, lines)
		cancel()
		if err != nil {
			var p permanent
			if errors.As(err, &p) && p.Permanent() {
				e.rejected.Add(int64(len(lines)))
				e.log.Error("pilot: InfluxDB refused a batch as malformed; skipped", "lines", len(lines), "err", err)
			} else {
				e.writeErrors.Add(1)
				backoff = min(max(backoff*2, e.o.MinBackoff), e.o.MaxBackoff)
				e.log.Warn("pilot: InfluxDB write failed; kept in the spool, retrying", "lines", len(lines), "retry_in", backoff, "err", err)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
					continue
				case <-e.stop:
					t.Stop()
					return
				}
			}
		} else {
			e.written.Add(int64(len(lines)))
			if backoff > 0 {
				e.log.Info("pilot: InfluxDB writes resumed", "spool_bytes", e.o.Spool.Pending())
			}
			backoff = 0
		}
		if err := e.o.Spool.Commit(next); err != nil {
			e.log.Error("pilot: spool commit failed", "err", err)
		}
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
