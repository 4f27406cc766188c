package hub

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// EventLog records every accepted event as JSON lines, one file per UTC
// day (events-2026-11-23.jsonl), for `vaka rules replay`: pilot teams ask
// "what if the bed-exit hold had been 10 minutes?" of last month's events.
// It is an Observer: the alarm path only appends the event to a bounded
// in-memory batch; a full batch is a counted, raised drop, never a wait.
//
// Batching: the writer wakes every eventLogEvery (or when the batch is half
// full), encodes the whole batch and writes it with as few write(2)s as its
// 64 KiB buffer allows. The alarm path never wakes a goroutine per event.
//
// Durability contract: an accepted event reaches the OS (page cache) within
// about eventLogEvery, and is not fsynced: a killed hub can lose the last
// ≈ 100 ms of the replay log, a power cut what the OS had not written. The
// log is evidence for replays, not the alarm record: alarm transitions are
// in the journal (store), written before the PUBACK. Every event the log
// could not take or write is counted in Dropped, which the hub raises as
// hub_integrity. Close writes everything still held.
type EventLog struct {
	dir     string
	log     *slog.Logger
	mu      sync.Mutex
	batch   []event.Event
	closed  bool
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Int64
	written atomic.Int64
	failed  atomic.Int64
}

const (
	eventLogEvery = 100 * time.Millisecond
	eventLogMax   = 16384 // events held at most; more in one interval are dropped (counted)
)

// NewEventLog starts an event log writing under dir.
func NewEventLog(dir string, log *slog.Logger) (*EventLog, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("hub: event log: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &EventLog{dir: dir, log: log, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		batch: make([]event.Event, 0, 1024)}
	go l.run()
	return l, nil
}

// ObserveEvent queues ev without blocking.
func (l *EventLog) ObserveEvent(ev *event.Event, _ time.Time) {
	l.mu.Lock()
	if l.closed || len(l.batch) >= eventLogMax {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	l.batch = append(l.batch, *ev)
	n := len(l.batch)
	l.mu.Unlock()
	if n == eventLogMax/2 {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// ObserveTransition is not logged here: the alarm journal has transitions.
func (l *EventLog) ObserveTransition(*alarm.Alarm, alarm.Transition) {}

// Dropped counts events the log could not take (a DropSource).
func (l *EventLog) Dropped() int64 { return l.dropped.Load() + l.failed.Load() }

// Written counts events written.
func (l *EventLog) Written() int64 { return l.written.Load() }

func (l *EventLog) run() {
	defer close(l.done)
	var (
		f     *os.File
		w     *bufio.Writer
		dayY  int // the open file's day
		dayM  time.Month
		dayD  int
		spare = make([]event.Event, 0, 1024)
		tick  = time.NewTicker(eventLogEvery)
		enc   []byte
	)
	defer tick.Stop()
	closeFile := func() {
		if f != nil {
			if err := w.Flush(); err != nil {
				l.failed.Add(1)
				l.log.Error("hub: event log write failed", "err", err)
			}
			f.Close()
			f = nil
		}
	}
	defer closeFile()
	writeBatch := func() {
		l.mu.Lock()
		batch := l.batch
		l.batch = spare[:0]
		l.mu.Unlock()
		for k := range batch {
			ev := &batch[k]
			// The file's day by the date's numbers: Format (a string per
			// event) only when the day changes.
			y, m, dd := ev.Time.UTC().Date()
			if f == nil || y != dayY || m != dayM || dd != dayD {
				dayY, dayM, dayD = y, m, dd
				d := ev.Time.UTC().Format("2006-01-02")
				closeFile()
				var err error
				f, err = os.OpenFile(filepath.Join(l.dir, "events-"+d+".jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
				if err != nil {
					l.failed.Add(1)
					l.log.Error("hub: event log open failed", "err", err)
					continue
				}
				w = bufio.NewWriterSize(f, 64<<10)
			}
			var err error
			enc, err = appendEventJSON(enc[:0], ev)
			if err == nil {
				enc = append(enc, '\n')
				_, err = w.Write(enc)
			}
			if err != nil {
				l.failed.Add(1)
				l.log.Error("hub: event log write failed", "err", err)
				continue
			}
			l.written.Add(1)
		}
		if w != nil {
			if err := w.Flush(); err != nil {
				l.failed.Add(1)
				l.log.Error("hub: event log write failed", "err", err)
			}
		}
		clear(batch) // drop references to the events' strings
		spare = batch[:0]
	}
	for {
		select {
		case <-l.stop:
			writeBatch()
			return
		case <-l.kick:
			writeBatch()
		case <-tick.C:
			writeBatch()
		}
	}
}

// appendEventJSON appends exactly what json.Marshal(ev) gives, without
// reflection for the common event (plain ASCII strings, no position); any
// other event goes through json.Marshal.
func appendEventJSON(dst []byte, ev *event.Event) ([]byte, error) {
	if ev.Position != nil || !plainJSON(ev.ID) || !plainJSON(ev.Site) || !plainJSON(ev.Gateway) ||
		!plainJSON(ev.Device) || !plainJSON(string(ev.Type)) || !plainJSON(string(ev.Status)) ||
		!plainJSON(string(ev.State)) || !plainJSON(ev.Resident) || !plainJSON(ev.Unit) || !plainJSON(ev.Room) {
		b, err := json.Marshal(ev)
		return append(dst, b...), err
	}
	start := len(dst)
	str := func(key, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		dst = append(dst, key...)
		dst = append(dst, '"')
		dst = append(dst, v...)
		dst = append(dst, '"')
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(ev.V), 10)
	str(`,"id":`, ev.ID, false)
	str(`,"site":`, ev.Site, true)
	str(`,"gateway":`, ev.Gateway, true)
	str(`,"device":`, ev.Device, false)
	str(`,"dty":`, string(ev.Type), false)
	str(`,"stc":`, string(ev.Status), true)
	str(`,"state":`, string(ev.State), true)
	str(`,"resident":`, ev.Resident, true)
	str(`,"unit":`, ev.Unit, true)
	str(`,"room":`, ev.Room, true)
	// What Time.MarshalJSON writes, appended in place (it allocated
	// its own slice per event).
	dst = append(dst, `,"ts":"`...)
	ts, err := ev.Time.AppendText(dst)
	if err != nil {
		b, err := json.Marshal(ev)
		return append(dst[:start], b...), err
	}
	dst = append(ts, '"')
	if ev.Battery != nil {
		dst = append(dst, `,"battery":`...)
		dst = strconv.AppendInt(dst, int64(*ev.Battery), 10)
	}
	if ev.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, ev.Seq, 10)
	}
	return append(dst, '}'), nil
}

// plainJSON: s needs no escaping in encoding/json's output (printable
// ASCII, not a quote, backslash or one of the HTML characters it escapes).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// Close writes what is held and stops the log.
func (l *EventLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	return nil
}
