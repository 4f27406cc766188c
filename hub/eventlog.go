package hub

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// EventLog records every accepted event as JSON lines, one file per UTC
// day (events-2026-11-23.jsonl), for `vaka rules replay`: pilot teams ask
// "what if the bed-exit hold had been 10 minutes?" of last month's events.
// It is an Observer: the alarm path only hands an event to a bounded
// channel; a full channel is a counted, raised drop, never a wait.
type EventLog struct {
	dir     string
	log     *slog.Logger
	ch      chan event.Event
	done    chan struct{}
	dropped atomic.Int64
	written atomic.Int64
	failed  atomic.Int64
}

// NewEventLog starts an event log writing under dir.
func NewEventLog(dir string, log *slog.Logger) (*EventLog, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("hub: event log: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &EventLog{dir: dir, log: log, ch: make(chan event.Event, 16384), done: make(chan struct{})}
	go l.run()
	return l, nil
}

// ObserveEvent queues ev without blocking.
func (l *EventLog) ObserveEvent(ev *event.Event, _ time.Time) {
	select {
	case l.ch <- *ev:
	default:
		l.dropped.Add(1)
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
		f    *os.File
		w    *bufio.Writer
		day  string
		tick = time.NewTicker(time.Second)
	)
	defer tick.Stop()
	closeFile := func() {
		if f != nil {
			w.Flush()
			f.Close()
			f = nil
		}
	}
	defer closeFile()
	for {
		select {
		case ev, ok := <-l.ch:
			if !ok {
				return
			}
			d := ev.Time.UTC().Format("2006-01-02")
			if f == nil || d != day {
				closeFile()
				var err error
				f, err = os.OpenFile(filepath.Join(l.dir, "events-"+d+".jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
				if err != nil {
					l.failed.Add(1)
					l.log.Error("hub: event log open failed", "err", err)
					continue
				}
				w, day = bufio.NewWriterSize(f, 64<<10), d
			}
			b, err := json.Marshal(&ev)
			if err == nil {
				b = append(b, '\n')
				_, err = w.Write(b)
			}
			if err != nil {
				l.failed.Add(1)
				l.log.Error("hub: event log write failed", "err", err)
				continue
			}
			l.written.Add(1)
		case <-tick.C:
			if w != nil {
				if err := w.Flush(); err != nil {
					l.failed.Add(1)
				}
			}
		}
	}
}

// Close flushes and stops the log.
func (l *EventLog) Close() error {
	close(l.ch)
	<-l.done
	return nil
}
