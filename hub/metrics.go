package hub

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/rules"
)

type metrics struct {
	received    *prometheus.CounterVec
	recvEvent   prometheus.Counter // received{leaf="event"}, looked up once: it counts every event
	rejected    *prometheus.CounterVec
	duplicates  prometheus.Counter
	raised      *prometheus.CounterVec
	transitions *prometheus.CounterVec
	storeErrors prometheus.Counter
	held        prometheus.Gauge
	notKept     prometheus.Counter
	subscribers prometheus.Gauge
	subsCut     prometheus.Counter
	silenced    *prometheus.CounterVec
	trackers    *prometheus.CounterVec
	clockSkew   prometheus.Counter
	// Children of raised and transitions, resolved once per label set
	// (under h.mu; hotpath.go): WithLabelValues hashes its labels and
	// takes the vector's lock on every call, twice per alarm.
	raisedBy map[[2]string]prometheus.Counter
	transBy  map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, h *Hub) (*metrics, error) {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaka_messages_received_total", Help: "Gateway messages received by the hub, by topic leaf."}, []string{"leaf"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaka_events_rejected_total", Help: "Gateway messages refused as bad input, by reason."}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaka_events_duplicate_total", Help: "Events seen before (same gateway and id), answered and not evaluated again."}),
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaka_alarms_raised_total", Help: "Alarms raised, by kind and rule."}, []string{"kind", "rule"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaka_alarm_transitions_total", Help: "Alarm transitions committed, by action."}, []string{"action"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaka_store_errors_total", Help: "Journal writes that failed (the transition was held in memory and the alarm still shown)."}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vaka_store_held_transitions", Help: "Alarm transitions held in memory because the journal cannot write; events are answered busy while it is above 0."}),
		notKept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaka_events_not_acknowledged_total", Help: "Events answered busy (no PUBACK) because what they caused was not durable; the sender keeps and resends them."}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vaka_stream_subscribers", Help: "Connected alarm stream subscribers."}),
		subsCut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaka_stream_subscribers_cut_total", Help: "Stream subscribers cut off (they refetch on reconnect): a staff stream that took nothing for http.stream_stall_timeout or reached http.stream_queue_max; an in-process channel subscriber 4,096 changes behind."}),
	}
	m.silenced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vaka_alarms_silenced_total", Help: "Alarms held back by a silence (with an author and an end), by rule."}, []string{"rule"})
	m.trackers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vaka_tracker_reports_total", Help: "OwnTracks and OsmAnd reports, by source and result (ok, malformed, unknown, ignored, lwt)."},
		[]string{"source", "result"})
	m.clockSkew = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vaka_events_clock_skew_total", Help: "Events stamped more than 5 min ahead of or 24 h behind the hub's clock (evaluated at the hub's time, flagged in the alarm note)."})
	for _, src := range []string{"owntracks", "osmand"} {
		for _, r := range []string{"ok", "malformed", "unknown", "ignored", "lwt"} {
			m.trackers.WithLabelValues(src, r)
		}
	}
	engineStat := func(name, help string, f func(s rules.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(h.engine.Stats())) })
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vaka_alarms_open", Help: "Alarms not yet resolved."}, func() float64 {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return float64(len(h.openByKey))
	})
	// The loss counters are cumulative across restarts (store.LossFile):
	// a restart must not make a loss look like it never happened.
	journal := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vaka_store_corrupt_records_total", Help: "Journal records skipped as damaged or cut as a torn tail, since the data directory was made (each damaged line counted once)."},
		func() float64 { l := h.journal.LossTotals(); return float64(l.Corrupt + l.Torn) })
	torn := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vaka_store_torn_tails_total", Help: "Torn last journal records cut at start (a record written and lost), since the data directory was made."},
		func() float64 { return float64(h.journal.LossTotals().Torn) })
	writeFails := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vaka_store_write_failures_total", Help: "Journal appends the disk refused (cut back, never joined to the next record), since the data directory was made."},
		func() float64 { return float64(h.journal.LossTotals().WriteFails) })
	syncFails := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vaka_store_fsync_failures_total", Help: "Journal fsync failures, since the data directory was made."},
		func() float64 { return float64(h.journal.LossTotals().SyncFails) })
	slowWrites := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vaka_store_slow_writes_total", Help: "Journal appends whose write took over 5 ms (an alarm's PUBACK waits for it)."},
		func() float64 { return float64(h.journal.Stats().SlowWrites) })
	maxWrite := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vaka_store_write_max_seconds", Help: "The longest journal append write since the hub started."},
		func() float64 { return float64(h.journal.Stats().MaxWriteNanos) / 1e9 })
	syncs := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vaka_store_fsyncs_total", Help: "Journal fsyncs (each costs CPU and disk; grouped per store.sync_every)."},
		func() float64 { return float64(h.journal.Stats().Syncs) })
	syncWindow := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vaka_store_sync_window_seconds", Help: "The longest a journaled transition waits for fsync (store.sync_every; 0 with store.sync_each_write): what a power cut can lose."},
		func() float64 { return h.journal.SyncWindow().Seconds() })
	var errs []error
	for _, c := range []prometheus.Collector{m.received, m.rejected, m.duplicates, m.raised, m.transitions,
		m.storeErrors, m.held, m.notKept, m.subscribers, m.subsCut, open, journal, torn, writeFails, syncFails, slowWrites, maxWrite, syncs, syncWindow, m.silenced, m.trackers, m.clockSkew,
		newInputCollector(h),
		engineStat("vaka_rules_events_total", "Events evaluated by the rules.", func(s rules.Stats) int64 { return s.Events }),
		engineStat("vaka_rules_gps_gated_total", "GPS fixes ignored by geofence rules for poor or unknown accuracy.", func(s rules.Stats) int64 { return s.GPSGated }),
		engineStat("vaka_rules_invalid_fixes_total", "GPS fixes the tracker flagged as not valid (valid=false, mock), kept out of geofences.", func(s rules.Stats) int64 { return s.InvalidFixes }),
		engineStat("vaka_rules_no_consent_total", "Rule evaluations skipped because the resident has no recorded consent.", func(s rules.Stats) int64 { return s.NoConsent }),
		engineStat("vaka_rules_state_repeats_total", "Sensor reports repeating the known state (contact chatter, double reports).", func(s rules.Stats) int64 { return s.StateRepeats }),
	} {
		errs = append(errs, reg.Register(c))
	}
	for _, l := range []string{"event", "status", "heartbeat"} {
		m.received.WithLabelValues(l)
	}
	m.recvEvent = m.received.WithLabelValues("event")
	// Pre-create the label sets that must read 0 rather than be absent.
	for _, r := range []string{"invalid_format", "wrong_data", "too_long", "missing_field", "unknown_device", "invalid_status"} {
		m.rejected.WithLabelValues(r)
	}
	return m, errors.Join(errs...)
}
