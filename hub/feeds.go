package hub

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/feed"
)

// feedState is the hub's set of staff-stream queues (package feed): care
// frames never dropped and a reading screen never cut, technical frames
// coalesced and, for a slow screen, dropped and summarised. It lives
// beside the older channel subscribers (Subscribe), which tests and
// in-process observers still use.
type feedState struct {
	feeds    map[uint64]*feed.Queue
	counters feed.Counters
}

func newFeedCounters(reg prometheus.Registerer) (feed.Counters, prometheus.Counter, error) {
	mk := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	c := struct {
		coalesced, dropped, summaries, cut, stalled, care, tech prometheus.Counter
	}{
		mk("vaka_stream_coalesced_total", "Stream frames replaced, before they were sent, by a newer state of the same alarm."),
		mk("vaka_stream_technical_dropped_total", "Technical stream frames dropped from a slow subscriber's queue (summarised; the client refetches)."),
		mk("vaka_stream_summaries_total", "Summary frames (\"N technical updates skipped\") queued to slow subscribers."),
		mk("vaka_stream_feed_cut_total", "Stream subscribers cut because their care lane reached http.stream_queue_max distinct alarms (a bound on memory; they reconnect to a full snapshot)."),
		mk("vaka_stream_feed_stalled_total", "Stream subscribers cut because they took nothing for http.stream_stall_timeout while frames waited (a dead connection; it reconnects to a full snapshot)."),
		mk("vaka_stream_care_frames_total", "Care alarm frames queued to stream subscribers (never dropped)."),
		mk("vaka_stream_technical_frames_total", "Technical alarm frames queued to stream subscribers."),
	}
	grouped := mk("vaka_alarms_grouped_total", "Technical alarms raised into a group alarm (shown and notified as their group).")
	var errs []error
	for _, x := range []prometheus.Collector{c.coalesced, c.dropped, c.summaries, c.cut, c.stalled, c.care, c.tech, grouped} {
		errs = append(errs, reg.Register(x))
	}
	return feed.Counters{Coalesced: c.coalesced, TechDropped: c.dropped, Summaries: c.summaries, Cut: c.cut,
		Stalled: c.stalled, CareFrames: c.care, TechnicalSent: c.tech}, grouped, errors.Join(errs...)
}

// registerFeedGauges exports the longest care backlog of any screen, so a
// screen far behind (but still reading, so never cut) shows before it
// matters.
func (h *Hub) registerFeedGauges(reg prometheus.Registerer) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vaka_stream_care_backlog_max",
		Help: "Care alarm frames waiting for the staff screen furthest behind (it is cut only when it takes nothing for http.stream_stall_timeout).",
	}, func() float64 {
		h.mu.RLock()
		defer h.mu.RUnlock()
		n := 0
		for _, q := range h.fs.feeds {
			c, _ := q.Len()
			n = max(n, c)
		}
		return float64(n)
	}))
}

// Feed returns a new staff-stream queue and its cancel function. Unlike a
// Subscribe channel it is never cut for falling behind while it reads:
// only a screen that takes nothing for http.stream_stall_timeout, or whose
// care backlog reaches http.stream_queue_max, is cut.
func (h *Hub) Feed() (*feed.Queue, func()) {
	h.mu.Lock()
	q := feed.New(feed.Options{CareMax: h.cfg.HTTP.StreamQueueMax, StallTimeout: h.cfg.HTTP.StreamStallTimeout,
		Counters: h.fs.counters})
	h.subSeq++
	id := h.subSeq
	if h.fs.feeds == nil {
		h.fs.feeds = map[uint64]*feed.Queue{}
	}
	h.fs.feeds[id] = q
	h.mu.Unlock()
	h.m.subscribers.Inc()
	return q, func() {
		h.mu.Lock()
		if _, ok := h.fs.feeds[id]; ok {
			delete(h.fs.feeds, id)
			if q.CutReason() != "" {
				// Its writer found it stalled (a write deadline passed).
				h.cutLocked(q)
			}
			q.Close()
			h.m.subscribers.Dec()
		}
		h.mu.Unlock()
	}
}

// feedLocked queues a to every staff-stream queue; a queue that was cut
// (it took nothing for the stall timeout, or its care backlog reached the
// bound) is removed, counted, and its stream ends.
func (h *Hub) feedLocked(a *alarm.Alarm) {
	for id, q := range h.fs.feeds {
		if !q.Push(a) {
			delete(h.fs.feeds, id)
			h.m.subscribers.Dec()
			h.cutLocked(q)
		}
	}
}

// cutLocked counts and logs a staff-stream queue that was cut.
func (h *Hub) cutLocked(q *feed.Queue) {
	h.m.subsCut.Inc()
	if q.CutReason() == feed.CutFull {
		h.log.Warn("hub: stream subscriber's care backlog reached http.stream_queue_max, cut; it will reconnect to a full snapshot")
	} else {
		h.log.Warn("hub: stream subscriber took nothing for http.stream_stall_timeout, cut; it will reconnect to a full snapshot")
	}
}
