package hub

import (
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/trackers"
)

// Clock sanity: an event stamped further than this from the hub's clock is
// flagged (counted, logged, noted on its alarm). The rules always evaluate
// at the hub's time, so a wrong device clock never delays an alarm.
const (
	ClockAhead  = 5 * time.Minute
	ClockBehind = 24 * time.Hour
)

// checkClock returns the note for an event whose source time is far from
// now, counting and logging it; "" when the clock is sane.
func (h *Hub) checkClock(ev *event.Event, now time.Time) string {
	d := ev.Time.Sub(now)
	if d <= ClockAhead && d >= -ClockBehind {
		return ""
	}
	h.m.clockSkew.Inc()
	d = d.Round(time.Second)
	h.log.Warn("hub: event time far from the hub's clock; evaluated at the hub's time",
		"site", ev.Site, "gateway", ev.Gateway, "device", ev.Device, "event", ev.ID, "skew", d.String())
	return "enhetens klocka avviker " + d.String() + ", hubbens tid används / device clock off by " + d.String() + ", hub time used"
}

// trackerIndex caches the config's tracker mappings, rebuilt when a reload
// swaps the config.
type trackerIndex struct {
	mu      sync.Mutex
	forCfg  *Config
	ot, osm map[string]TrackerRef
}

func (h *Hub) trackerRef(src trackers.Source, key string) (TrackerRef, bool) {
	cfg := h.Config()
	t := &h.trk
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.forCfg != cfg {
		t.ot, t.osm = cfg.trackerIndex()
		t.forCfg = cfg
	}
	var ref TrackerRef
	var ok bool
	if src == trackers.OwnTracks {
		ref, ok = t.ot[key]
	} else {
		ref, ok = t.osm[key]
	}
	return ref, ok
}

// HandleOwnTracks processes one OwnTracks message published on
// owntracks/<user>/<device>[/<leaf>]. The broker has checked that the
// client may write there. Locations and transitions of a mapped device
// become tracker events for the rules; an LWT, waypoints and other
// messages are counted and ignored. A malformed payload returns a
// *trackers.Error, an unmapped topic trackers.ErrUnknown.
func (h *Hub) HandleOwnTracks(user, device, leaf string, payload []byte) error {
	tp := trackers.OwnTracksTopic{User: user, Device: device, Leaf: leaf}
	if leaf != "" && leaf != trackers.OwnTracksEventLeaf {
		h.m.trackers.WithLabelValues(string(trackers.OwnTracks), "ignored").Inc()
		return nil
	}
	rep, err := trackers.DecodeOwnTracks(payload)
	if err == nil && rep.Kind == trackers.Encrypted {
		ref, ok := h.trackerRef(trackers.OwnTracks, tp.Key())
		if !ok {
			return h.track(rep, tp.Key(), tp.Key()) // counted and refused as unknown
		}
		if ref.Key == nil {
			// Never silently: the phone believes it reported.
			h.m.trackers.WithLabelValues(string(trackers.OwnTracks), "encrypted_no_key").Inc()
			h.log.Warn("hub: encrypted OwnTracks message and no owntracks_key for its device; not evaluated",
				"tracker", tp.Key(), "device", ref.Device)
			return trackers.ErrNoKey
		}
		if rep, err = trackers.DecodeOwnTracksSealed(payload, ref.Key); err != nil {
			h.m.trackers.WithLabelValues(string(trackers.OwnTracks), "undecryptable").Inc()
			h.log.Warn("hub: encrypted OwnTracks message refused", "tracker", tp.Key(), "device", ref.Device, "err", err.Error())
			return err
		}
	}
	if err != nil {
		h.m.trackers.WithLabelValues(string(trackers.OwnTracks), "malformed").Inc()
		h.log.Warn("hub: OwnTracks message refused", "tracker", tp.Key(), "err", err.Error())
		return err
	}
	return h.track(rep, tp.Key(), tp.Key())
}

// HandleOsmAnd processes one OsmAnd/Traccar HTTP report's parameters (it
// implements trackers.OsmAndSink). The id is a secret and never logged.
func (h *Hub) HandleOsmAnd(v url.Values) error {
	rep, err := trackers.DecodeOsmAnd(v)
	if err != nil {
		h.m.trackers.WithLabelValues(string(trackers.OsmAnd), "malformed").Inc()
		h.log.Warn("hub: OsmAnd report refused", "err", err.Error())
		return err
	}
	return h.track(rep, rep.ID, "")
}

// HandleOsmAndJSON processes one JSON body of the protocol (Traccar
// Client; it implements trackers.OsmAndJSONSink). Every decodable report in
// it is evaluated, even when another element is malformed, so an SOS is
// never lost to its neighbour. The answer is the worst outcome: not stored
// (the client resends the body; event ids make that safe), then
// malformed, then unknown id.
func (h *Hub) HandleOsmAndJSON(body []byte) error {
	reps, derr := trackers.DecodeOsmAndJSON(body)
	if derr != nil {
		h.m.trackers.WithLabelValues(string(trackers.OsmAnd), "malformed").Inc()
		h.log.Warn("hub: OsmAnd JSON report refused", "err", derr.Error(), "accepted", len(reps))
	}
	var notStored, unknown, other error
	for _, rep := range reps {
		err := h.track(rep, rep.ID, "")
		switch {
		case err == nil:
		case errors.Is(err, trackers.ErrNotStored):
			notStored = err
		case errors.Is(err, trackers.ErrUnknown):
			unknown = err
		default:
			other = err
		}
	}
	for _, err := range []error{notStored, derr, other, unknown} {
		if err != nil {
			return err
		}
	}
	return nil
}

var (
	_ trackers.OsmAndSink     = (*Hub)(nil)
	_ trackers.OsmAndJSONSink = (*Hub)(nil)
)

// track maps a decoded report to its device and runs it through the same
// path as a gateway's event (de-duplication, clock check, rules, metrics).
// logKey names the tracker in logs ("" for OsmAnd, whose id is a secret).
func (h *Hub) track(rep trackers.Report, key, logKey string) error {
	src := string(rep.Source)
	switch rep.Kind {
	case trackers.LWT:
		h.m.trackers.WithLabelValues(src, "lwt").Inc()
		h.log.Info("hub: tracker connection lost (last will); supervision catches a lasting silence", "tracker", logKey)
		return nil
	case trackers.Other:
		h.m.trackers.WithLabelValues(src, "ignored").Inc()
		return nil
	}
	ref, ok := h.trackerRef(rep.Source, key)
	if !ok {
		h.m.trackers.WithLabelValues(src, "unknown").Inc()
		h.log.Warn("hub: report from a tracker mapped to no device", "source", src, "tracker", logKey)
		return trackers.ErrUnknown
	}
	if len(rep.Ignored) > 0 {
		h.log.Debug("hub: tracker report fields ignored as unusable", "device", ref.Device, "fields", rep.Ignored)
	}
	ev, ok := rep.Event(ref.Site, ref.Gateway, ref.Device, h.now())
	if !ok {
		h.m.trackers.WithLabelValues(src, "ignored").Inc()
		return nil
	}
	if err := ev.Validate(); err != nil {
		// The decoders promise valid events (fuzzed); never trust that blindly.
		h.m.trackers.WithLabelValues(src, "malformed").Inc()
		h.log.Error("hub: tracker report made an invalid event", "device", ref.Device, "err", err.Error())
		var te *trackers.Error
		if !errors.As(err, &te) {
			te = &trackers.Error{Reason: "unusable report"}
		}
		return te
	}
	h.m.received.WithLabelValues(src).Inc()
	h.m.trackers.WithLabelValues(src, "ok").Inc()
	if r := h.accept(&ev); r.Code == event.ReplyBusy {
		return trackers.ErrNotStored
	}
	return nil
}
