package hub

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/feed"
)

// feedState is the hub's set of staff-stream queues (package feed): care
// frames never dropped, technical frames coalesced and, for a slow screen,
// dropped and summarised. It lives beside the older channel subscribers
// (Subscribe), which tests and in-process observers still use.
type feedState struct {
	feeds    map[uint64]*feed.Queue
	counters feed.Counters
}

func newFeedCounters(reg prometheus.Registerer) (feed.Counters, prometheus.Counter, error) {
	mk := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	c := struct {
		coalesced, dropped, summaries, cut, care, tech prometheus.Counter
	}{
		mk("vaka_stream_coalesced_total", "Stream frames replaced, before they were sent, by a newer state of the same alarm."),
		mk("vaka_stream_technical_dropped_total", "Technical stream frames dropped from a slow subscriber's queue (summarised; the client refetches)."),
		mk("vaka_stream_summaries_total", "Summary frames (\"N technical updates skipped\") queued to slow subscribers."),
		mk("vaka_stream_feed_cut_total", "Stream subscribers cut because even their care frames could not be queued (a dead client; it reconnects to a full snapshot)."),
		mk("vaka_stream_care_frames_total", "Care alarm frames queued to stream subscribers (never dropped)."),
		mk("vaka_stream_technical_frames_total", "Technical alarm frames queued to stream subscribers."),
	}
	grouped := mk("vaka_alarms_grouped_total", "Technical alarms raised into a group alarm (shown and notified as their group).")
	var errs []error
	for _, x := range []prometheus.Collector{c.coalesced, c.dropped, c.summaries, c.cut, c.care, c.tech, grouped} {
		errs = append(errs, reg.Register(x))
	}
	return feed.Counters{Coalesced: c.coalesced, TechDropped: c.dropped, Summaries: c.summaries, Cut: c.cut,
		CareFrames: c.care, TechnicalSent: c.tech}, grouped, errors.Join(errs...)
}

// Feed returns a new staff-stream queue and its cancel function. Unlike a
// Subscribe channel it is never cut for technical traffic.
func (h *Hub) Feed() (*feed.Queue, func()) {
	q := feed.New(0, 0, h.fs.counters)
	h.mu.Lock()
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
			q.Close()
			h.m.subscribers.Dec()
		}
		h.mu.Unlock()
	}
}

// feedLocked queues a to every staff-stream queue; a queue that could not
// take even a care frame is removed (it was cut and counted) and its
// stream ends.
func (h *Hub) feedLocked(a *alarm.Alarm) {
	for id, q := range h.fs.feeds {
		if !q.Push(a) {
			delete(h.fs.feeds, id)
			h.m.subscribers.Dec()
			h.m.subsCut.Inc()
			h.log.Warn("hub: stream subscriber takes nothing, cut; it will reconnect to a full snapshot")
		}
	}
}
