package hub

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/lograte"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/scaip"
)

// The SCAIP receiver's alarm side. The SIP layer (package scaipsip)
// authenticates the sender and hands the body here with the account it
// proved; what comes back is the <mrs> to send. The rule is the MQTT
// PUBACK's (durable.go): snu 0 only once every transition the message
// caused is in the journal; a journal that cannot write answers snu 6
// (busy) and the unit keeps and resends its message.

// scaipState is the receiver's memory: the references in use and the last
// heartbeat per unit. Bounded: the oldest references are forgotten first.
type scaipState struct {
	mu      sync.Mutex
	forCfg  *Config
	units   map[scaipUnitKey]SCAIPUnit
	byCid   map[string][]SCAIPUnit
	refs    map[string]scaipRef // cid/ref → what the ref is about
	order   []string            // refs in insertion order, for eviction
	lastHB  map[string]time.Time
	metrics *prometheus.CounterVec
	// counters are metrics' children by result, bound once: the message
	// path counts without the lock or the label hashing.
	counters atomic.Pointer[map[string]prometheus.Counter]
	// logLim thins refusal logs to a line a second per reason: a unit
	// resending bad messages, or a flood, must not become a log flood.
	logLim lograte.Limiter
}

type scaipRef struct {
	identity string
	key      string // the rule key of the alarm the ref raised, if any
	at       time.Time
}

// maxSCAIPRefs bounds the references remembered; maxSCAIPRefAge is how
// long a reference is kept (the standard's resend window is at most 30 min).
const (
	maxSCAIPRefs   = 100_000
	maxSCAIPRefAge = 24 * time.Hour
)

// SCAIP results counted in vaka_scaip_messages_total{result}.
var scaipResults = []string{"ok", "busy", "too_long", "invalid_format", "wrong_data", "mandatory_missing", "ref_missing",
	"unknown_device", "wrong_account", "ref_reused", "duplicate", "heartbeat", "heartbeat_flood", "test", "presence",
	"checkout", "accepted", "reset", "info", "no_open_alarm", "fsync_failed"}

func (h *Hub) scaipMetric(result string) {
	s := &h.sc
	if m := s.counters.Load(); m != nil {
		if c, ok := (*m)[result]; ok {
			c.Inc()
			return
		}
	}
	s.mu.Lock()
	m := s.metrics
	s.mu.Unlock()
	if m != nil {
		m.WithLabelValues(result).Inc()
	}
}

// scaipWarn logs a refusal, at most a line a second per reason (the
// metric counts every one).
func (h *Hub) scaipWarn(reason, msg string, attrs ...any) {
	ok, attrs := h.sc.logLim.Allow(reason, time.Now(), attrs)
	if ok {
		h.log.Warn(msg, attrs...)
	}
}

// RegisterSCAIPMetrics exports the receiver's counters; the service calls
// it once when the receiver is enabled.
func (h *Hub) RegisterSCAIPMetrics(reg prometheus.Registerer) error {
	m := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vaka_scaip_messages_total",
		Help: "SCAIP requests handled by the receiver, by result (snu words, unknown_device, ref_reused, heartbeat_flood …)."},
		[]string{"result"})
	counters := make(map[string]prometheus.Counter, len(scaipResults))
	for _, r := range scaipResults {
		counters[r] = m.WithLabelValues(r)
	}
	if err := reg.Register(m); err != nil {
		return err
	}
	h.sc.counters.Store(&counters)
	h.sc.mu.Lock()
	h.sc.metrics = m
	h.sc.mu.Unlock()
	h.warmSCAIP()
	return nil
}

// warmSCAIP builds the unit index of the current config now (the
// receiver starts, or the config was reloaded), so that the first message
// does not: for 10,000 units it is about 5 MB of maps and milliseconds of
// CPU, which the first alarm after a start used to wait for.
func (h *Hub) warmSCAIP() {
	if h.Config().SCAIP.Enabled {
		h.scaipUnit("", "")
	}
}

// scaipIndex returns the unit registry of the current config.
func (h *Hub) scaipUnit(cid, did string) (SCAIPUnit, []SCAIPUnit, bool) {
	cfg := h.Config()
	s := &h.sc
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forCfg != cfg {
		s.units, s.byCid = map[scaipUnitKey]SCAIPUnit{}, map[string][]SCAIPUnit{}
		if cfg.SCAIP.Enabled {
			for _, u := range cfg.SCAIP.Units {
				s.units[scaipUnitKey{u.Cid, u.Did}] = u
				s.byCid[u.Cid] = append(s.byCid[u.Cid], u)
			}
		}
		s.forCfg = cfg
	}
	u, ok := s.units[scaipUnitKey{cid, did}]
	return u, s.byCid[cid], ok
}

// scaipUnitKey names a registered unit: a struct, not "cid/did", so a
// lookup per message builds no string.
type scaipUnitKey struct{ cid, did string }

// HandleSCAIP answers one SCAIP request body sent by the Digest account
// account (already authenticated by the SIP layer). It never panics on bad
// input; every refusal is counted and logged without the message's content.
// With sync_each_write it waits for the journal's fsync before it returns
// snu 0; the SIP receiver uses HandleSCAIPAsync instead.
func (h *Hub) HandleSCAIP(account string, body []byte) scaip.Response {
	var end int64
	resp := h.handleSCAIP(account, body, &end)
	return h.scaipSynced(resp, h.syncTo(end))
}

// HandleSCAIPAsync is HandleSCAIP that does not wait for fsync: answer
// gets the <mrs> at once when there is nothing to wait for, else from the
// syncer goroutine once the event is on disk (syncwait.go), so the
// receiver's read loop takes the next message meanwhile, and messages
// waiting at once share one fsync. answer is called exactly once.
func (h *Hub) HandleSCAIPAsync(account string, body []byte, answer func(scaip.Response)) {
	var end int64
	resp := h.handleSCAIP(account, body, &end)
	h.afterSync(end, func(err error) { answer(h.scaipSynced(resp, err)) })
}

// scaipSynced is resp once the fsync it waited for returned err: snu 0
// becomes 6 (busy: send again) when the fsync failed, counted as
// fsync_failed (the hub raises hub_integrity for the failed fsync).
func (h *Hub) scaipSynced(resp scaip.Response, err error) scaip.Response {
	if err == nil || resp.SNU != scaip.OK {
		return resp
	}
	h.m.notKept.Inc()
	h.scaipMetric("fsync_failed")
	resp.SNU = scaip.Busy
	resp.Ste = "not on disk yet: the alarm journal's fsync failed; send again"
	return resp
}

// handleSCAIP is HandleSCAIP without the wait for fsync: *end is where
// the journal must be synced to before resp is sent (0: nothing).
func (h *Hub) handleSCAIP(account string, body []byte, end *int64) scaip.Response {
	h.m.received.WithLabelValues("scaip").Inc()
	req, err := scaip.Parse(body)
	if err != nil {
		e := err.(*scaip.Error)
		h.scaipMetric(e.SNU.Label())
		h.scaipWarn(e.SNU.Label(), "hub: SCAIP request refused", "account", account, "snu", int(e.SNU), "err", e.Error())
		return refuse(e.Ref, e.SNU, e.Error())
	}
	u, _, ok := h.scaipUnit(req.Cid, req.Did)
	if !ok {
		h.scaipMetric("unknown_device")
		h.scaipWarn("unknown_device", "hub: SCAIP request from an unregistered unit; refused", "account", account, "cid", req.Cid, "did", req.Did)
		return refuse(req.Ref, scaip.WrongData, "unit not registered (cid/did)")
	}
	if u.Account != account {
		h.scaipMetric("wrong_account")
		h.scaipWarn("wrong_account", "hub: SCAIP unit sent with an account not its own; refused", "account", account, "cid", req.Cid, "device", u.Device)
		return refuse(req.Ref, scaip.WrongData, "this account may not send for this unit")
	}
	now := h.now()
	class := req.Class()
	resp := scaip.NewResponse(req.Ref, scaip.OK)
	if req.AcceptsInterval() {
		resp.Hbi = int(h.Config().SCAIP.Heartbeat / time.Minute)
	}
	if class == scaip.ClassHeartbeat {
		return h.scaipHeartbeat(req, resp, now, end)
	}
	// A reference names one event: ME with a ref already used for
	// another event is refused; IN and RE must name a known event.
	refKey := req.Cid + "/" + req.Ref
	prev, known := h.scaipRef(refKey, now)
	// Presence, check-out and accept may name the alarm's own ref (the
	// same event, as IN and RE do): liberal there.
	moves := class == scaip.ClassPresence || class == scaip.ClassCheckout || class == scaip.ClassAccepted
	if req.Mty == scaip.Message && known && prev.identity != req.Identity() && !moves {
		h.scaipMetric("ref_reused")
		h.scaipWarn("ref_reused", "hub: SCAIP ref reused for another event; refused", "cid", req.Cid, "device", u.Device, "ref", req.Ref)
		return refuse(req.Ref, scaip.WrongData, "ref already used for another event; use a new ref")
	}
	target := scaip.Target{Site: u.Site, Device: u.Device, Resident: u.Resident, Unit: u.Unit, Room: u.Room}
	if u.Type != "" {
		// Empty is no type (ParseDeviceType would build an error to say so).
		target.Type, _ = event.ParseDeviceType(u.Type)
	}
	ev := req.Event(target, now)
	var raisedKey string
	fix := func(a *rules.Action) {
		if a.Kind != rules.Raise || a.Event != &ev {
			return
		}
		if a.Location == "" {
			a.Location = req.Location()
		}
		if _, callable := scaip.MediumNumber(req.Crd); callable {
			a.CallerID = req.Crd
		}
		if req.CallbackRequested() {
			a.Callback = "1"
		}
		if a.Rule == rules.RuleCallButton || a.Rule == rules.RuleFall {
			raisedKey = a.Key
		}
		a.Priority = unitPriority(a.Alarm, a.Priority, req.Priority())
	}
	rep := h.acceptDeferred(&ev, fix, end)
	snu := replySNU(rep.Code)
	if raisedKey == "" {
		raisedKey = prev.key
	}
	if (!known || raisedKey != "") && !moves {
		h.rememberRef(refKey, scaipRef{identity: req.Identity(), key: raisedKey, at: now})
	}
	if snu == scaip.OK {
		switch class {
		case scaip.ClassPresence, scaip.ClassCheckout, scaip.ClassAccepted, scaip.ClassReset, scaip.ClassInfo:
			snu = h.scaipMove(class, req, u, ev.Key(), prev.key, ev.Position, now, end)
		case scaip.ClassTest:
			h.scaipMetric("test")
		}
	}
	resp.SNU = snu
	switch snu {
	case scaip.OK:
		h.scaipMetric("ok")
		resp.Cre = callbackAnswer(req, class, h.Config().SCAIP.CallbackMinutes())
	case scaip.Busy:
		h.scaipMetric("busy")
		resp.Ste = "not stored yet: the alarm journal cannot write; send again"
	default:
		h.scaipMetric(snu.Label())
		resp.Ste = rep.Reason
	}
	return resp
}

// unitPriority is an alarm's priority given the unit's own (pri, mapped
// by scaip.Request.Priority; 0 not stated): the more urgent of the rules'
// and the unit's, so a unit can raise an alarm but never lower one. A
// unit's pri is set by whoever installed it, per button, and most send 0;
// the rules' priority (and, through them, the resident's plan) is what
// the care team decided, and a call that waits behind others because of
// a setting nobody on the night shift can see is the failure SCAIP's
// field history warns of. Technical alarms (battery, tamper, silence)
// rise to 2 at most: they rank below care alarms, whatever the unit says.
func unitPriority(k alarm.Kind, rule alarm.Priority, unit int) alarm.Priority {
	if unit == 0 {
		return rule
	}
	p := alarm.Priority(unit)
	if k == alarm.KindTechnical {
		p = max(p, 2)
	}
	return min(rule, p)
}

// callbackAnswer is the cre for a kept request: a unit that asks to be
// called back (cha 1) about an alarm, with a number staff can dial on the
// card, is told to keep auto-answer open for minutes. Without a number
// nobody can call, and promising it would keep the unit waiting for a
// call that cannot come; technical messages, tests, heartbeats and updates
// are not calls for help.
func callbackAnswer(req *scaip.Request, class scaip.Class, minutes int) string {
	if minutes <= 0 || !req.CallbackRequested() || class != scaip.ClassAlarm {
		return ""
	}
	if _, callable := scaip.MediumNumber(req.Crd); !callable {
		return ""
	}
	return fmt.Sprintf("%02d", min(minutes, 60))
}

func refuse(ref string, snu scaip.SNU, reason string) scaip.Response {
	r := scaip.NewResponse(ref, snu)
	r.Ste = reason
	return r
}

func replySNU(c event.ReplyCode) scaip.SNU {
	switch c {
	case event.ReplyOK:
		return scaip.OK
	case event.ReplyBusy:
		return scaip.Busy
	case event.ReplyTooLong:
		return scaip.TooLong
	case event.ReplyInvalidFormat:
		return scaip.InvalidFormat
	case event.ReplyMandatoryMissed:
		return scaip.MandatoryMiss
	case event.ReplyNotTreated:
		return scaip.NotTreated
	}
	return scaip.WrongData
}

// scaipHeartbeat answers a PI: a sign of life for every device of the
// unit (their supervision), snu 0. Heartbeats closer than min_heartbeat
// are answered and counted but not evaluated: a flood must not cost the
// alarm path.
func (h *Hub) scaipHeartbeat(req *scaip.Request, resp scaip.Response, now time.Time, end *int64) scaip.Response {
	cfg := h.Config()
	s := &h.sc
	s.mu.Lock()
	if s.lastHB == nil {
		s.lastHB = map[string]time.Time{}
	}
	last, seen := s.lastHB[req.Cid]
	flood := seen && now.Sub(last) < cfg.SCAIP.MinHeartbeat && now.Sub(last) >= 0
	if !flood {
		s.lastHB[req.Cid] = now
	}
	units := s.byCid[req.Cid]
	s.mu.Unlock()
	if flood {
		h.scaipMetric("heartbeat_flood")
		h.log.Debug("hub: SCAIP heartbeats closer than min_heartbeat; answered, not evaluated", "cid", req.Cid)
		return resp
	}
	h.scaipMetric("heartbeat")
	for i, u := range units {
		t, _ := event.ParseDeviceType(u.Type)
		// Each heartbeat is a fresh sign of life, even when a unit reuses
		// its ref and bytes: never de-duplicated away.
		id := req.Ref + ".PI." + strconv.FormatInt(now.UnixNano(), 36) + "." + strconv.Itoa(i)
		ev := event.Event{V: event.Version, ID: id, Site: u.Site, Device: u.Device, Type: t, Time: now}
		var e int64
		if rep := h.acceptDeferred(&ev, nil, &e); rep.Code == event.ReplyBusy {
			resp.SNU = scaip.Busy
		}
		*end = max(*end, e)
	}
	if resp.SNU == scaip.OK {
		h.scaipMetric("ok")
	} else {
		h.scaipMetric("busy")
	}
	return resp
}

// scaipMove applies what the unit says about an open alarm: presence and
// check-out keys move it as staff actions do, 0004 accepts it, RE records
// the abort, IN updates it. key de-duplicates a resent message; refKey is
// the rule key the message's ref raised (for RE and IN).
func (h *Hub) scaipMove(class scaip.Class, req *scaip.Request, u SCAIPUnit, key, refKey string,
	pos *event.Position, now time.Time, end *int64) scaip.SNU {
	key += "#scaip"
	if h.full() {
		h.m.notKept.Inc()
		return scaip.Busy
	}
	if !h.seen.addIfNew(key) {
		h.m.duplicates.Inc()
		h.scaipMetric("duplicate")
		h.seen.waitDone(key)
		if !h.heldAnswer(key) {
			return scaip.Busy
		}
		*end = max(*end, h.resendSyncEnd())
		return scaip.OK
	}
	defer h.seen.done(key)
	// "unit:<device>", like "rule:<name>": not a staff login, so the
	// staff app names it in words and staff need not take it over.
	by := alarm.ByUnitPrefix + u.Device
	h.mu.Lock()
	h.beginDeferLocked() // syncwait.go: the caller waits for the fsync
	mark := h.pendingMark()
	snu := h.scaipMoveLocked(class, req, u, key, refKey, by, pos, now)
	var pend *pendingEntry
	if snu == scaip.OK {
		pend = h.pendingSince(mark, key) // pending.go: answered once written
	}
	*end = max(*end, h.endDeferLocked())
	h.mu.Unlock()
	if pend != nil && !pend.wait() {
		h.m.notKept.Inc()
		return scaip.Busy
	}
	return snu
}

func (h *Hub) scaipMoveLocked(class scaip.Class, req *scaip.Request, u SCAIPUnit, key, refKey, by string,
	pos *event.Position, now time.Time) scaip.SNU {
	var a *alarm.Alarm
	if id, ok := h.openByKey[refKey]; ok && refKey != "" {
		a = h.alarms[id] // the alarm this ref raised
	} else if class != scaip.ClassReset && class != scaip.ClassInfo {
		a = h.openAlarmOfDeviceLocked(u.Site, u.Device)
	}
	if a == nil {
		h.scaipMetric("no_open_alarm")
		return scaip.OK // nothing open to move: the unit's word is still taken
	}
	var ts []alarm.Transition
	tr := func(act alarm.Action, note string) alarm.Transition {
		return alarm.Transition{Alarm: a.ID, Action: act, At: now, By: by, Note: note, EventID: key}
	}
	switch class {
	case scaip.ClassAccepted:
		h.scaipMetric("accepted")
		if a.State == alarm.Raised {
			ts = append(ts, tr(alarm.ActAccept, "kvitterat på larmenheten (0004) / accepted at the alarm unit"))
		}
	case scaip.ClassPresence:
		h.scaipMetric("presence")
		if a.State == alarm.Raised {
			ts = append(ts, tr(alarm.ActAccept, "närvaro på larmenheten / presence key on the alarm unit"))
		}
		ts = append(ts, tr(alarm.ActPresence, "närvaro registrerad på larmenheten ("+req.Stc+") / presence key on the alarm unit"))
	case scaip.ClassCheckout:
		h.scaipMetric("checkout")
		if a.State == alarm.Raised {
			ts = append(ts, tr(alarm.ActAccept, "avregistrerad på larmenheten / check-out on the alarm unit"))
		}
		if a.State != alarm.Presence {
			ts = append(ts, tr(alarm.ActPresence, "närvaro (avregistrering) / presence (check-out)"))
		}
		ts = append(ts, tr(alarm.ActPresence, "insats klar (0111), utfall ska kodas i appen / intervention complete, awaiting outcome"))
	case scaip.ClassReset:
		h.scaipMetric("reset")
		t := tr(alarm.ActRestore, "avbrutet av larmenheten (RE) / aborted by the alarm unit (RE)")
		t.By = "rule:scaip"
		ts = append(ts, t)
	case scaip.ClassInfo:
		h.scaipMetric("info")
		t := tr(alarm.ActRepeat, "ny information från larmenheten (IN) / information update from the alarm unit")
		t.By, t.Pos = "rule:scaip", pos
		ts = append(ts, t)
	}
	durable := true
	for _, t := range ts {
		if alarm.Check(a, t) != nil {
			continue // e.g. accepted by staff already: their word stands
		}
		if !h.commitLocked(a, t) {
			durable = false
		}
		if t.Action == alarm.ActPresence && a.Room != "" {
			h.engine.StaffPresent(a.Site, a.Room, now)
		}
	}
	if !durable {
		h.holdEventLocked(key)
	}
	h.raiseStoreTroubleLocked(now)
	if !durable {
		h.m.notKept.Inc()
		return scaip.Busy
	}
	return scaip.OK
}

// openAlarmOfDeviceLocked is the device's newest open care alarm (call or
// fall first), else its newest open alarm of any kind.
func (h *Hub) openAlarmOfDeviceLocked(site, device string) *alarm.Alarm {
	for _, rule := range []string{rules.RuleCallButton, rules.RuleFall} {
		if id, ok := h.openByKey[rule+"/"+site+"/"+device]; ok {
			return h.alarms[id]
		}
	}
	var best *alarm.Alarm
	for _, a := range h.alarms {
		if a.Open() && a.Site == site && a.Device == device && (best == nil || a.RaisedAt.After(best.RaisedAt)) {
			best = a
		}
	}
	return best
}

func (h *Hub) scaipRef(k string, now time.Time) (scaipRef, bool) {
	s := &h.sc
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refs[k]
	if ok && now.Sub(r.at) > maxSCAIPRefAge {
		return scaipRef{}, false
	}
	return r, ok
}

func (h *Hub) rememberRef(k string, r scaipRef) {
	s := &h.sc
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs == nil {
		s.refs = map[string]scaipRef{}
	}
	if _, ok := s.refs[k]; !ok {
		s.order = append(s.order, k)
	}
	s.refs[k] = r
	for len(s.order) > maxSCAIPRefs {
		delete(s.refs, s.order[0])
		s.order = s.order[1:]
	}
}
