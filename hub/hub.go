// Package hub is the alarm service at the centre of Vaka: it takes decoded
// gateway traffic from the broker, runs the rules inline, persists every
// alarm transition before anyone is told of it, and fans alarm changes out
// to staff screens. It owns the only mutable alarm state; the HTTP API and
// the broker reach it through small interfaces they declare themselves.
package hub

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
)

// Options wire a hub.
type Options struct {
	Config  *Config // validated
	Journal Journal
	Replay  []alarm.Transition // what the journal held at open
	// Rebuilt, if set, is what the journal held, replayed as it was read
	// (store.OpenEach into a Rebuilder); Replay is then ignored.
	Rebuilt  *Rebuilder
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time // nil means time.Now
	// RecentWindow is how long resolved alarms stay in the list and in memory.
	RecentWindow time.Duration
	// Observers see every accepted event and every committed transition,
	// for pilot data export. They are called on the alarm path and must
	// not block: queue and return.
	Observers []Observer
}

// Observer receives a copy of what the hub does, for pilot evidence. An
// implementation must return at once (hand off to its own bounded queue,
// counting what it cannot take): the alarm path waits for it.
type Observer interface {
	ObserveEvent(ev *event.Event, received time.Time)
	ObserveTransition(a *alarm.Alarm, t alarm.Transition)
}

// Hub is the alarm service.
type Hub struct {
	cfg     *Config
	log     *slog.Logger
	engine  *rules.Engine
	journal Journal
	ds      deferredSync // syncwait.go: sync_each_write's fsync outside the lock
	now     func() time.Time
	recent  time.Duration
	m       *metrics

	mu        sync.RWMutex
	alarms    map[string]*alarm.Alarm
	openByKey map[string]string // rule key → open alarm id
	nextID    uint64
	seen      *dedup
	subs      map[uint64]chan *alarm.Alarm
	subSeq    uint64
	drops     []DropSource
	lastDrops int64
	// hs holds transitions the journal could not take (durable.go);
	// integrityDue and recoveredDue queue the hub_integrity raise and
	// restore that a commit found necessary.
	hs           heldState
	heldN        atomic.Int64 // len(hs.held), read without the lock
	integrityDue string
	recoveredDue bool
	observers    []Observer
	silences     []Silence
	dataDir      string
	reports      map[string]GatewayReport
	trk          trackerIndex  // OwnTracks and OsmAnd → device (trackers.go)
	sc           scaipState    // SCAIP receiver: units, refs, heartbeats (scaip.go)
	fs           feedState     // staff-stream queues (feeds.go)
	pq           pendingState  // appends waiting for their quorum (pending.go)
	gs           groupState    // technical alarm groups (group.go)
	ln           laneState     // care events before technical loops (lanes.go)
	ts           *tillsynState // digital night supervision (tillsyn.go)
}

// DropSource reports a cumulative count of messages lost somewhere (the
// broker's queues). A rise raises a technical alarm: no drop is silent.
type DropSource func() int64

// New builds a hub and rebuilds its state from the journal's transitions.
func New(o Options) (*Hub, error) {
	if o.Config == nil || o.Journal == nil {
		return nil, errors.New("hub: config and journal are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RecentWindow == 0 {
		o.RecentWindow = 7 * 24 * time.Hour
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	h := &Hub{
		cfg: o.Config, log: o.Logger, journal: o.Journal, now: o.Now, recent: o.RecentWindow,
		engine:    rules.New(o.Config.RuleConfig()),
		alarms:    map[string]*alarm.Alarm{},
		openByKey: map[string]string{},
		seen:      newDedup(1 << 16),
		subs:      map[uint64]chan *alarm.Alarm{},
		observers: o.Observers,
		dataDir:   o.Config.DataDir,
		reports:   map[string]GatewayReport{},
	}
	h.ds.init(o.Journal)
	if err := h.loadSilences(); err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registry, h)
	if err != nil {
		return nil, err
	}
	h.m = m
	if h.fs.counters, h.gs.grouped, err = newFeedCounters(o.Registry); err != nil {
		return nil, err
	}
	if err := h.registerFeedGauges(o.Registry); err != nil {
		return nil, err
	}
	if err := h.initTillsyn(o); err != nil {
		return nil, err
	}
	rebuilt := h.rebuild(o)
	h.raiseJournalLoss(o.Journal.Loss(), rebuilt)
	h.engine.Expect(h.now())
	return h, nil
}

// AddDropSource registers a counter of lost messages to watch.
func (h *Hub) AddDropSource(d DropSource) {
	h.mu.Lock()
	h.drops = append(h.drops, d)
	h.mu.Unlock()
}

// alarmKey is the repeat-grouping key of an alarm, matching rules.Action.Key.
func alarmKey(a *alarm.Alarm) string {
	if a.Rule == rules.RuleGatewayOffline {
		return rules.GatewayKey(a.Site, a.Gateway)
	}
	if a.Rule == rules.RuleHubIntegrity {
		return rules.RuleHubIntegrity
	}
	if a.Group() != nil {
		return groupKey(a.Group().Key)
	}
	return a.Rule + "/" + a.Site + "/" + a.Device
}

// HandleEvent processes one event payload received on (site, gateway)'s
// event topic. It never panics on bad input and never loses an alarm that
// a valid payload carried.
func (h *Hub) HandleEvent(site, gateway string, payload []byte) event.Reply {
	// From the first byte: it may be a care alarm (lanes.go), and
	// background work that sees it steps aside before the event reaches
	// the engine's lock, not after.
	h.ln.evaluating.Add(1)
	defer h.ln.evaluating.Add(-1)
	h.m.recvEvent.Inc()
	ev, err := event.Decode(site, gateway, payload)
	if err != nil {
		var de *event.DecodeError
		if !errors.As(err, &de) {
			de = &event.DecodeError{Code: event.ReplyInvalidFormat, Reason: "undecodable"}
		}
		h.m.rejected.WithLabelValues(de.Label()).Inc()
		h.log.Warn("hub: event refused", "site", site, "gateway", gateway, "err", de.Error())
		return event.Reply{Code: de.Code, Reason: de.Error(), ID: safeID(payload)}
	}
	return h.accept(&ev)
}

// accept de-duplicates a decoded, valid event, checks its clock, runs the
// rules at the hub's time and applies what they decide. Gateway events and
// tracker reports (trackers.go) share it.
func (h *Hub) accept(ev *event.Event) event.Reply { return h.acceptWith(ev, nil) }

// acceptWith is accept with a hook that may add to each action the rules
// decided before it is applied (the SCAIP receiver adds the unit's
// location code and callback number).
func (h *Hub) acceptWith(ev *event.Event, fix func(*rules.Action)) event.Reply {
	var end int64
	reply := h.acceptDeferred(ev, fix, &end)
	if err := h.syncTo(end); err != nil { // syncwait.go: sync_each_write, outside the lock
		h.m.notKept.Inc()
		return busyReply(ev.ID)
	}
	return reply
}

// acceptDeferred is acceptWith without the wait for fsync: with
// sync_each_write, *end is where the journal must be synced to before
// the reply may be sent (0: nothing to wait for).
func (h *Hub) acceptDeferred(ev *event.Event, fix func(*rules.Action), end *int64) event.Reply {
	site, gateway := ev.Site, ev.Gateway
	if h.full() {
		h.m.notKept.Inc()
		return busyReply(ev.ID)
	}
	key := ev.Key()
	if !h.seen.addIfNew(key) {
		h.m.duplicates.Inc()
		h.seen.waitDone(key) // the first delivery's outcome first (dedup.go)
		if !h.heldAnswer(key) {
			h.m.notKept.Inc()
			return busyReply(ev.ID)
		}
		*end = h.resendSyncEnd() // syncwait.go
		return event.Reply{Code: event.ReplyOK, ID: ev.ID}
	}
	defer h.seen.done(key) // after the wait for the journal below: durable or held by then
	now := h.now()
	skewNote := h.checkClock(ev, now)
	var buf [4]rules.Action
	h.ln.evaluating.Add(1) // lanes.go: background work steps aside meanwhile
	acts, known := h.engine.Eval(ev, now, buf[:0])
	care := h.evaluated(acts)
	defer h.careDone(care)
	for _, o := range h.observers {
		o.ObserveEvent(ev, now)
	}
	reply := event.Reply{Code: event.ReplyOK, ID: ev.ID}
	if !known {
		h.m.rejected.WithLabelValues("unknown_device").Inc()
		h.log.Warn("hub: event from unregistered device", "site", site, "gateway", gateway, "device", ev.Device, "alarm_raised", len(acts) > 0)
		reply = event.Reply{Code: event.ReplyWrongData, Reason: "event: device is not registered for this gateway", ID: ev.ID, Evaluated: true}
		for i := range acts {
			acts[i].Note = "enheten är inte registrerad / unregistered device"
		}
	}
	if skewNote != "" {
		for i := range acts {
			acts[i].Note = strings.TrimPrefix(acts[i].Note+"; "+skewNote, "; ")
		}
	}
	if len(acts) == 0 {
		return reply
	}
	if fix != nil {
		for i := range acts {
			// Through a copy: &acts[i] handed to a func value would move
			// buf (four actions, 1.3 KB) to the heap on every event.
			a := acts[i]
			fix(&a)
			acts[i] = a
		}
	}
	h.lockForEvent(care) // lanes.go: a care event goes before technical loops
	h.beginDeferLocked()
	h.ln.ev, h.ln.evKey = ev, key
	mark := h.pendingMark()
	durable := true
	for _, a := range acts {
		if !h.applyLocked(a, now) {
			durable = false
		}
	}
	h.ln.ev, h.ln.evKey = nil, ""
	var pend *pendingEntry
	if !durable {
		h.holdEventLocked(key)
	} else {
		pend = h.pendingSince(mark, key) // pending.go: queued, not yet written
	}
	h.raiseStoreTroubleLocked(now)
	*end = h.endDeferLocked()
	h.mu.Unlock()
	if pend != nil && !pend.wait() {
		durable = false // refused: held now, the event answered busy
	}
	if !durable {
		h.m.notKept.Inc()
		return busyReply(ev.ID)
	}
	return reply
}

// safeID pulls the "id" out of a refused payload so the reply can name it,
// without keeping anything else from the payload.
func safeID(payload []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	if len(payload) > event.MaxPayload || json.Unmarshal(payload, &v) != nil || len(v.ID) > 64 {
		return ""
	}
	return v.ID
}

// HandleStatus processes a gateway's retained status or Last Will.
func (h *Hub) HandleStatus(site, gateway string, payload []byte) {
	h.m.received.WithLabelValues(event.LeafStatus).Inc()
	var st struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(payload, &st); err != nil || (st.State != "online" && st.State != "offline") {
		// zigbee2mqtt-style plain words are accepted too.
		switch string(payload) {
		case "online", "offline":
			st.State = string(payload)
		default:
			h.m.rejected.WithLabelValues("invalid_status").Inc()
			h.log.Warn("hub: status payload refused", "site", site, "gateway", gateway)
			return
		}
	}
	now := h.now()
	if act, ok := h.engine.GatewayStatus(site, gateway, st.State == "online", now); ok {
		h.apply(act, now)
	}
}

// GatewayReport is the health a gateway reports in its heartbeat.
type GatewayReport struct {
	At      time.Time `json:"at"`
	Seq     uint64    `json:"seq"` // 1 is the gateway's first since it started
	Spool   int       `json:"spool"`
	Dropped int64     `json:"dropped"`
	Drivers []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Err   string `json:"err,omitempty"`
		// What the driver could not use (gwinput.go): counted at the
		// gateway since it started, exported per gateway and driver.
		Malformed   int64    `json:"malformed,omitempty"`
		Unmapped    int64    `json:"unmapped,omitempty"`
		Unsupported int64    `json:"unsupported,omitempty"`
		Words       []string `json:"words,omitempty"`
		Problems    []string `json:"problems,omitempty"` // devices that cannot work as configured
	} `json:"drivers,omitempty"`
}

// HandleHeartbeat processes a gateway heartbeat. Its payload may carry the
// gateway's health (outbox depth, drops, driver states); an older or
// foreign gateway that sends none is still alive.
func (h *Hub) HandleHeartbeat(site, gateway string, payload []byte) {
	h.m.received.WithLabelValues(event.LeafBeat).Inc()
	now := h.now()
	var rep GatewayReport
	if len(payload) <= event.MaxPayload && json.Unmarshal(payload, &rep) == nil {
		rep.At = now
		h.mu.Lock()
		prev, had := h.reports[site+"/"+gateway]
		h.reports[site+"/"+gateway] = rep
		h.mu.Unlock()
		if had || rep.Seq == 1 {
			h.checkInput(site, gateway, &prev, &rep, now)
		}
	}
	if act, ok := h.engine.Heartbeat(site, gateway, now); ok {
		h.apply(act, now)
	}
}

// Tick runs supervision at the hub's clock: missed heartbeats, drops, and
// forgetting old resolved alarms. Run calls it every second.
func (h *Hub) Tick() {
	now := h.now()
	h.engine.SuperviseEach(now, func(acts []rules.Action) { h.applyTechnical(acts, now) }) // lanes.go: in slices, care first
	h.checkJournal(now)
	h.checkDrops(now)
	h.forget(now)
	h.tillsynTick(now)
}

// Run ticks until stop is closed.
func (h *Hub) Run(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.Tick()
		}
	}
}

func (h *Hub) checkDrops(now time.Time) {
	h.mu.RLock()
	srcs := h.drops
	h.mu.RUnlock()
	var total int64
	for _, d := range srcs {
		total += d()
	}
	h.mu.Lock()
	grew := total > h.lastDrops
	h.lastDrops = total
	h.mu.Unlock()
	if grew {
		h.log.Error("hub: messages were dropped", "total", total)
		h.apply(rules.Action{Kind: rules.Raise, Rule: rules.RuleHubIntegrity, Key: rules.RuleHubIntegrity,
			Alarm: alarm.KindTechnical, Priority: 2, Status: event.IPConnectionFailed, Site: "hub",
			// The sources are the broker, the event log and the pilot
			// export (AddDropSource): say so, not "MQTT" alone, so the
			// technician looks at all three.
			Note: fmt.Sprintf("meddelanden tappade (%d) / messages dropped (total %d): broker, event log or pilot export, see /metrics", total, total)}, now)
	}
}

// apply turns a rule action into a persisted alarm transition.
func (h *Hub) apply(act rules.Action, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.applyLocked(act, now)
	h.raiseStoreTroubleLocked(now)
}

// applyLocked is apply under h.mu; it reports whether what it committed is
// durable (true when it committed nothing).
func (h *Hub) applyLocked(act rules.Action, now time.Time) bool {
	id, open := h.openByKey[act.Key]
	if act.Kind == rules.Raise && !open {
		if sl, ok := h.silencedLocked(act, now); ok {
			h.m.silenced.WithLabelValues(act.Rule).Inc()
			h.log.Info("hub: alarm held back by a silence", "rule", act.Rule, "site", act.Site, "resident", act.Resident, "device", act.Device, "silence", sl.ID)
			return true
		}
	}
	switch {
	case act.Kind == rules.Restore && open:
		return h.commitLocked(h.alarms[id], alarm.Transition{Alarm: id, Action: alarm.ActRestore, At: now, By: ruleBy(act.Rule), Note: act.Note, Pos: act.Position})
	case act.Kind == rules.Restore, act.Kind == rules.Update && !open:
		// Nothing open to restore or update (it was resolved already).
		return true
	case open:
		t := alarm.Transition{Alarm: id, Action: alarm.ActRepeat, At: now, By: ruleBy(act.Rule), Note: act.Note}
		if act.Event != nil {
			t.EventID = h.eventKeyLocked(act.Event)
		}
		t.Pos = act.Position
		return h.commitLocked(h.alarms[id], t)
	default:
		h.nextID++
		a := alarm.New(alarmID(h.nextID), now) // hotpath.go
		a.Kind, a.Rule, a.Priority = act.Alarm, act.Rule, act.Priority
		a.Site, a.Gateway, a.Device, a.DeviceType = act.Site, act.Gateway, act.Device, act.Type
		a.Status, a.Location = act.Status, act.Location
		a.Unit, a.Room, a.Resident = act.Unit, act.Room, act.Resident
		a.SetCallerID(act.CallerID)
		a.SetCallback(act.Callback)
		a.SourceTime = now
		a.Note = act.Note
		t := alarm.Transition{Alarm: a.ID, Action: alarm.ActRaise, At: now, By: ruleBy(act.Rule), Note: act.Note}
		a.SetPosition(act.Position)
		a.SetTrack(act.Track)
		if ev := act.Event; ev != nil {
			a.EventID = h.eventKeyLocked(ev)
			a.SourceTime = ev.Time
			t.EventID = a.EventID
		}
		a.Own() // compact history, shared strings (alarm/history.go)
		// The raise record carries the alarm as raised: a itself, encoded
		// before anything changes it; a raise the journal cannot take yet
		// is held with a copy (holdLocked), so it is not copied here.
		t.Raise = a
		h.alarms[a.ID] = a
		h.openByKey[act.Key] = a.ID
		h.countRaisedLocked(a.Kind, a.Rule)
		return h.raiseLocked(a, t, now) // group.go: grouping, one frame with its notify
	}
}

// commitLocked persists t, applies it and tells subscribers, and reports
// whether t is durable. If the journal cannot write, t is held in memory
// (durable.go) and the alarm is still shown: staff seeing it matters more
// than the disk. Whoever sent what caused t must then not be told it was
// kept.
func (h *Hub) commitLocked(a *alarm.Alarm, t alarm.Transition) bool {
	durable := h.commitQuietLocked(a, t)
	h.showLocked(a)
	return durable
}

// commitQuietLocked is commitLocked without telling the screens, for a
// caller that commits several transitions and shows them in one frame.
func (h *Hub) commitQuietLocked(a *alarm.Alarm, t alarm.Transition) bool {
	return h.commitRaiseLocked(a, t, nil) // group.go: one write, no copy of t on the heap
}

// appliedLocked applies t, just persisted (or held), to a and tells the
// observers (on a fenced journal, a held t only once written: fenced.go).
func (h *Hub) appliedLocked(a *alarm.Alarm, t alarm.Transition, held bool) {
	held = held && h.fencedLocked()
	if t.Action != alarm.ActRaise {
		if err := alarm.Apply(a, t); err != nil {
			// Checked before; only a programming error lands here.
			h.log.Error("hub: transition refused after commit", "alarm", a.ID, "err", err)
			if held {
				h.deferLocked(nil, t, true)
			}
			return
		}
	} else {
		t.Raise = nil // observers see the raise without its snapshot, as before
		a.AddHistory(t)
	}
	h.countTransitionLocked(t.Action)
	if held {
		h.deferLocked(a, t, false)
	} else {
		for _, o := range h.observers {
			o.ObserveTransition(a, t)
		}
	}
	if !a.Open() && h.openByKey[alarmKey(a)] == a.ID {
		delete(h.openByKey, alarmKey(a))
	}
}

// ErrNotFound is returned for an unknown alarm id.
var ErrNotFound = errors.New("hub: no such alarm")

// Act applies a staff action (accept, presence, resolve) to an alarm.
func (h *Hub) Act(id string, action alarm.Action, by string, outcome alarm.Outcome, note string) (*alarm.Alarm, error) {
	switch action {
	case alarm.ActAccept, alarm.ActPresence, alarm.ActResolve, alarm.ActTakeOver:
	default:
		return nil, alarm.ErrUnknownAction
	}
	if len(note) > 2000 {
		return nil, errors.New("hub: note longer than 2000 characters")
	}
	h.mu.Lock()
	mark := h.pendingMark()
	a, err := h.actLocked(id, action, by, outcome, note)
	pend := h.pendingSince(mark, "")
	h.mu.Unlock()
	if pend != nil {
		// pending.go: answered once a quorum has the step (or it is held
		// and shown, as on a full disk), as with a synchronous append.
		pend.wait()
	}
	return a, err
}

func (h *Hub) actLocked(id string, action alarm.Action, by string, outcome alarm.Outcome, note string) (*alarm.Alarm, error) {
	a, ok := h.alarms[id]
	if !ok {
		return nil, ErrNotFound
	}
	t := alarm.Transition{Alarm: id, Action: action, At: h.now(), By: by, Outcome: outcome, Note: note}
	if err := alarm.Check(a, t); err != nil {
		return nil, err
	}
	// One owner per alarm (issue 15): checked here, under the lock, so
	// two phones cannot both slip past it.
	if err := alarm.CheckOwner(a, t); err != nil {
		return nil, err
	}
	if action == alarm.ActTakeOver {
		t.From = a.AcceptedBy()
	}
	if len(h.hs.held) >= maxHeld {
		return nil, errNotKept
	}
	// A staff step that the journal cannot take yet is held and shown
	// like any other: losing it with the process errs on the safe side
	// (the alarm comes back as not accepted or not resolved).
	h.commitLocked(a, t)
	h.afterActLocked(a, action, by) // group.go: a group's members
	h.raiseStoreTroubleLocked(t.At)
	if action == alarm.ActPresence && a.Room != "" {
		// Staff in the room: door rules there keep quiet for a while.
		h.engine.StaffPresent(a.Site, a.Room, t.At)
	}
	return a.Clone(), nil
}

// Record commits a step of the notifier (package notify): notify,
// delivered, escalate or reminder. Like every transition it is persisted
// before anyone is told, so the steps survive a restart.
func (h *Hub) Record(t alarm.Transition) error {
	switch t.Action {
	case alarm.ActNotify, alarm.ActDelivered, alarm.ActEscalate, alarm.ActReminder, alarm.ActHandover:
	default:
		return alarm.ErrUnknownAction
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.alarms[t.Alarm]
	if !ok {
		return ErrNotFound
	}
	if t.At.IsZero() {
		t.At = h.now()
	}
	t.Raise = nil
	if err := alarm.Check(a, t); err != nil {
		return err
	}
	if len(h.hs.held) >= maxHeld {
		return errNotKept
	}
	if h.fencedLocked() {
		return h.recordFencedLocked(a, t) // fenced.go: journaled before anyone is alerted
	}
	h.commitLocked(a, t)
	h.raiseStoreTroubleLocked(t.At)
	return nil
}

// Alarm returns one alarm with its whole history: the steps it no longer
// keeps in memory are read back from the journal, outside the hub's lock.
func (h *Hub) Alarm(id string) (*alarm.Alarm, bool) {
	h.mu.RLock()
	a, ok := h.alarms[id]
	if !ok {
		h.mu.RUnlock()
		return nil, false
	}
	c, older := a.Clone(), a.Spilled()
	h.mu.RUnlock()
	if len(older) > 0 {
		ts, err := h.journal.Read(older)
		if err != nil {
			// The list's view (the last steps, history_omitted > 0) is
			// still right; say why the rest is missing.
			h.log.Error("hub: older alarm history not read from the journal", "alarm", id, "err", err)
			return c, true
		}
		c.WithOlder(ts)
	}
	return c, true
}

// Alarms lists open alarms (most urgent, then oldest first) followed by
// alarms resolved within the last 24 hours (newest first).
func (h *Hub) Alarms() []*alarm.Alarm {
	now := h.now()
	h.mu.RLock()
	var open, done []*alarm.Alarm
	for _, a := range h.alarms {
		switch {
		case a.GroupID() != "":
			// A group member: its group is the card (GroupMembers lists it).
		case a.Open():
			open = append(open, a.Clone())
		case a.ResolvedAt() != nil && now.Sub(*a.ResolvedAt()) < 24*time.Hour:
			done = append(done, a.Clone())
		}
	}
	h.mu.RUnlock()
	slices.SortFunc(open, func(x, y *alarm.Alarm) int {
		return cmp.Or(cmp.Compare(x.Priority, y.Priority), x.RaisedAt.Compare(y.RaisedAt), cmp.Compare(x.ID, y.ID))
	})
	slices.SortFunc(done, func(x, y *alarm.Alarm) int {
		return cmp.Or(y.ResolvedAt().Compare(*x.ResolvedAt()), cmp.Compare(y.ID, x.ID))
	})
	if len(done) > 200 {
		done = done[:200]
	}
	return append(open, done...)
}

// forget drops resolved alarms older than the recent window from memory;
// they stay in the journal. Each Tick looks at forgetScan alarms at most
// (lanes.go): see there why.
func (h *Hub) forget(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for id, a := range h.alarms {
		if n++; n > forgetScan {
			break
		}
		if !a.Open() && a.ResolvedAt() != nil && now.Sub(*a.ResolvedAt()) > h.recent {
			delete(h.alarms, id)
			delete(h.gs.members, id) // a group's member list goes with it
		}
	}
}

// subscriberBuffer is how far a stream subscriber may fall behind. A staff
// screen on a busy or shared machine can stall for a few hundred ms; 4,096
// pointers cost 32 KiB per screen.
const subscriberBuffer = 4096

// Subscribe returns a channel of alarm changes, for tests and in-process
// readers; staff screens read a Feed (feeds.go), which is never cut for
// technical traffic. A channel subscriber that falls
// subscriberBuffer changes behind (about 1 s at 2,000 alarms/s, each raise
// followed by its notify step) is cut off (its channel closed, counted)
// rather than ever slowing the alarm path; a cut-off client reconnects and
// refetches.
func (h *Hub) Subscribe() (<-chan *alarm.Alarm, func()) {
	ch := make(chan *alarm.Alarm, subscriberBuffer)
	h.mu.Lock()
	h.subSeq++
	id := h.subSeq
	h.subs[id] = ch
	h.mu.Unlock()
	h.m.subscribers.Inc()
	return ch, func() {
		h.mu.Lock()
		if c, ok := h.subs[id]; ok {
			delete(h.subs, id)
			close(c)
			h.m.subscribers.Dec()
		}
		h.mu.Unlock()
	}
}

func (h *Hub) broadcastLocked(a *alarm.Alarm) {
	h.feedLocked(a)
	var listed *alarm.Alarm // for channel subscribers: History listed (a is a Snapshot)
	for id, ch := range h.subs {
		if listed == nil {
			listed = a.Clone()
		}
		select {
		case ch <- listed:
		default:
			delete(h.subs, id)
			close(ch)
			h.m.subscribers.Dec()
			h.m.subsCut.Inc()
			h.log.Warn("hub: slow stream subscriber cut off; it will reconnect and refetch")
		}
	}
}

// Healthy reports problems that make the hub unfit to be trusted now: it
// cannot keep what it is sent. It clears by itself when the journal writes
// again.
func (h *Hub) Healthy() error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if n := len(h.hs.held); n > 0 {
		return fmt.Errorf("alarm journal cannot write (%v): %d transitions held in memory, events answered busy", h.hs.lastErr, n)
	}
	return nil
}

// Degraded lists what staff or a technician must still look at although
// the hub works: every open hub_integrity alarm (a journal that could not
// write, damage found at start, dropped messages) until someone resolves it.
func (h *Hub) Degraded() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []string
	for _, a := range h.alarms {
		if a.Open() && a.Rule == rules.RuleHubIntegrity {
			out = append(out, a.ID+": "+a.Note)
		}
	}
	slices.Sort(out)
	return out
}

// GatewayHealth is a gateway's liveness and its own report.
type GatewayHealth struct {
	rules.GatewayHealth
	Report *GatewayReport `json:"report,omitempty"`
}

// Health is the technicians' view: every device and gateway, trouble first.
type Health struct {
	Gateways []GatewayHealth      `json:"gateways"`
	Devices  []rules.DeviceHealth `json:"devices"`
}

// Health returns the device-health view.
func (h *Hub) Health() Health {
	devs, gws := h.engine.Health()
	out := Health{Devices: devs}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, g := range gws {
		gh := GatewayHealth{GatewayHealth: g}
		if r, ok := h.reports[g.Site+"/"+g.Gateway]; ok {
			gh.Report = &r
		}
		out.Gateways = append(out.Gateways, gh)
	}
	if out.Devices == nil {
		out.Devices = []rules.DeviceHealth{}
	}
	return out
}

// Reload swaps in a new, validated config's rules (hot reload). Engine
// state for devices and residents that remain is kept. Credentials and
// listeners are not reloaded: they need a restart.
func (h *Hub) Reload(cfg *Config) {
	h.engine.SetConfig(cfg.RuleConfig())
	h.reloadTillsyn(cfg)
	h.mu.Lock()
	h.cfg = cfg
	h.mu.Unlock()
	h.warmSCAIP() // scaip.go: the unit index of the new config, before the next message
	h.log.Info("hub: rules reloaded", "sites", len(cfg.Sites))
}

// Engine exposes the rule engine (read-only use: lookups).
func (h *Hub) Engine() *rules.Engine { return h.engine }

// Config returns the hub's config.
func (h *Hub) Config() *Config {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cfg
}
