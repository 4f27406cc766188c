// Package rules decides which events become alarms. It is pure logic: it
// receives events and the evaluation time and returns actions; it never
// reads the clock, writes to disk or talks to the network. That keeps it
// fast enough to run inline on the broker's publish path, deterministic for
// replay, and testable across daylight-saving changes.
//
// Rules with a hold (bed exit, door open too long, geofence exit,
// inactivity, device supervision) go Inactive → Pending → Firing, as
// Prometheus alerting rules do: an event makes the rule pending with a
// deadline, Supervise(now) fires it if the condition still holds then, and
// an event that ends the condition first (back in bed, door closed, back
// inside the fence) returns it to inactive without an alarm.
package rules

import (
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// Device is what the hub knows about one registered device.
type Device struct {
	ID       string
	Site     string
	Gateway  string
	Type     event.DeviceType
	Resident string
	Unit     string
	Room     string
	Exit     bool // a unit exit door: opening it at night may mean a resident is leaving
	// Supervision, when set, overrides the site's period for the device
	// type: a zigbee call button that checks in hourly cannot meet the
	// 3 min of a SCAIP call button, and a watch on a night stand says
	// nothing all night. 0 turns supervision off for this device.
	Supervision *time.Duration
	// Links are the gateway-side links the device is heard through
	// ("zigbee2mqtt"): while the gateway reports one down (communication
	// link offline with that device name), the device's silence is a
	// symptom, not a new fault, and device_silent is held back.
	Links []string
}

// Gateway is what the hub knows about one gateway's supervision.
type Gateway struct {
	ID        string
	Site      string
	Heartbeat time.Duration // expected interval
	Missed    int           // missed heartbeats before the gateway is offline
}

// Resident is one person's individual plan.
type Resident struct {
	ID      string
	Unit    string
	Night   *Window // own night window, if set
	Plan    Plan    // resolved: defaults ← site ← unit ← resident
	Consent map[string]bool
	Fences  []*Fence
}

// Site holds one site's rule settings.
type Site struct {
	ID        string
	Night     Window
	Units     map[string]Window // per-unit night windows that override the site's
	Plan      Plan              // site default plan, resolved
	UnitPlans map[string]Plan   // per-unit plans, resolved
	Devices   map[string]*Device
	Gateways  map[string]*Gateway
	Residents map[string]*Resident
	// Supervision is the longest silence allowed per device type before a
	// device_silent alarm; missing types are not supervised.
	Supervision map[event.DeviceType]time.Duration
}

// Config is the rule set.
type Config struct {
	Location *time.Location
	Sites    map[string]*Site
	// StaffPresence is how long a staff presence (SCAIP 0088) in a room
	// silences door rules for that room. Zero means 15 minutes.
	StaffPresence time.Duration
	// BatteryLow is the percentage at or under which battery_low fires.
	// Zero means 15.
	BatteryLow int
}

// ActionKind says what the hub should do.
type ActionKind int

// Actions.
const (
	Raise ActionKind = iota + 1
	// Restore records that the cause has gone (SCAIP 0094 restoral; the
	// resident is back in bed or inside the fence). The alarm stays open:
	// staff still close it with an outcome.
	Restore
	// Update adds a newer position to the open alarm with the same key and
	// never raises one (a wander alarm follows the resident until staff
	// resolve it; after that, updates are dropped).
	Update
)

// Action is the result of a rule firing.
type Action struct {
	Kind     ActionKind
	Rule     string
	Key      string // groups repeats: an open alarm with the same key is updated, not raised again
	Alarm    alarm.Kind
	Priority alarm.Priority
	Status   event.StatusCode
	Location event.LocationCode
	Site     string
	Gateway  string
	Device   string
	Type     event.DeviceType
	Unit     string
	Room     string
	Resident string
	Event    *event.Event // the source event; nil for timers and supervision
	Position *event.Position
	Track    []event.Position // recent positions, oldest first (geofence)
	Note     string
	// CallerID and Callback are a SCAIP unit's crd and cha (hub/scaip.go):
	// the number staff can call back, and "1" when the unit asked for it.
	CallerID, Callback string
}

// Engine evaluates the rules. Eval and Supervise may be called
// concurrently; one mutex guards all state (the work under it is a few map
// look-ups per event).
type Engine struct {
	mu    sync.Mutex
	cfg   Config
	sites map[string]*siteState
	live  map[string]*liveness // by site/gateway
	// linksDown holds when each gateway link was reported down, by
	// "site/gateway/link".
	linksDown map[string]time.Time
	q         timerHeap
	gen       uint64
	stats     Stats
}

// Stats counts what the engine did, for /metrics.
type Stats struct {
	Events       int64
	GPSGated     int64 // fixes ignored for poor accuracy
	InvalidFixes int64 // fixes the device flagged as not valid, kept out of geofences
	NoConsent    int64 // rule evaluations skipped for want of consent
	StateRepeats int64 // sensor reports that repeated the known state (chatter, double reports)
}

type siteState struct {
	cfg        *Site
	devs       map[string]*devState
	byGateway  map[string][]*devState // a gateway's devices, so its return costs its devices, not the site's
	res        map[string]*resState
	staffUntil map[string]time.Time // room → staff present until
}

type devState struct {
	dev          *Device
	lastSeen     time.Time
	armed        bool
	silentRaised bool
	open         bool
	openSince    time.Time
	closedAt     time.Time
	openGen      uint64
	openRaised   bool
	lowBattery   bool
	tamper       bool
	heard        bool // an event arrived since the hub started (never heard: not paired?)
	battery      int  // last reported percent; -1 unknown
	state        event.State
	lastFix      *event.Position // last valid fix, for an alarm reported without one (tracker.go)
	// key is the last action key evAction built for this device
	// (actionKey), reused while the rule is the same: a call button
	// pressed again, or each press in an all-alarm storm, costs no new
	// string.
	key string
}

type resState struct {
	res          *Resident
	bedEmpty     bool
	bedSince     time.Time
	bedGen       uint64
	bedRaised    bool
	inBedSince   time.Time // last seen getting into bed (tillsyn's stillness)
	lastMotion   time.Time
	motionArmed  bool
	inactRaised  bool
	outside      bool
	outsideSince time.Time
	geoGen       uint64
	geoRaised    bool
	track        []event.Position
	gateway      string
	device       string
}

type liveness struct {
	gw       *Gateway
	lastBeat time.Time
	offline  bool // an offline action has been emitted and not restored
	known    bool // heard from (or expected) since start
}

// New returns an engine for cfg. A nil Location means UTC.
func New(cfg Config) *Engine {
	e := &Engine{}
	e.setConfig(cfg)
	return e
}

// SetConfig swaps the rule set (hot reload), keeping what the engine knows
// of devices and residents that are still configured.
func (e *Engine) SetConfig(cfg Config) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setConfig(cfg)
}

func (e *Engine) setConfig(cfg Config) {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.StaffPresence == 0 {
		cfg.StaffPresence = 15 * time.Minute
	}
	if cfg.BatteryLow == 0 {
		cfg.BatteryLow = 15
	}
	old := e.sites
	oldLive := e.live
	e.cfg = cfg
	e.sites = map[string]*siteState{}
	e.live = map[string]*liveness{}
	for _, s := range cfg.Sites {
		if s.Plan == nil {
			s.Plan = DefaultPlan()
		}
		ss := &siteState{cfg: s, devs: map[string]*devState{}, byGateway: map[string][]*devState{},
			res: map[string]*resState{}, staffUntil: map[string]time.Time{}}
		var prev *siteState
		if old != nil {
			prev = old[s.ID]
			if prev != nil {
				ss.staffUntil = prev.staffUntil
			}
		}
		for id, d := range s.Devices {
			ds := &devState{dev: d, battery: -1}
			if prev != nil {
				if p, ok := prev.devs[id]; ok {
					*ds = *p
					ds.dev = d
				}
			}
			ss.devs[id] = ds
			ss.byGateway[d.Gateway] = append(ss.byGateway[d.Gateway], ds)
		}
		for id, r := range s.Residents {
			rs := &resState{res: r}
			if prev != nil {
				if p, ok := prev.res[id]; ok {
					*rs = *p
					rs.res = r
				}
			}
			ss.res[id] = rs
		}
		e.sites[s.ID] = ss
		for _, g := range s.Gateways {
			l := &liveness{gw: g}
			if p, ok := oldLive[s.ID+"/"+g.ID]; ok {
				*l = *p
				l.gw = g
			}
			e.live[s.ID+"/"+g.ID] = l
		}
	}
	// Re-arm every pending timer against the new settings.
	e.q = e.q[:0]
	for _, ss := range e.sites {
		for _, ds := range ss.devs {
			if ds.armed {
				e.pushDevSilence(ss, ds)
			}
			if ds.open && !ds.openRaised {
				e.pushDoor(ss, ds)
			}
		}
		for _, rs := range ss.res {
			if rs.bedEmpty && !rs.bedRaised {
				e.push(timer{at: rs.bedSince.Add(rs.res.Plan[RuleBedExit].Hold), kind: tBed, site: ss.cfg.ID, id: rs.res.ID, gen: rs.bedGen})
			}
			if rs.motionArmed {
				e.pushInactivity(ss, rs)
			}
			if rs.outside && !rs.geoRaised {
				e.push(timer{at: rs.outsideSince.Add(rs.res.Plan[RuleGeofenceExit].Hold), kind: tGeo, site: ss.cfg.ID, id: rs.res.ID, gen: rs.geoGen})
			}
		}
	}
}

// Lookup returns the registered device, if any.
func (e *Engine) Lookup(site, device string) (*Device, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.cfg.Sites[site]
	if !ok {
		return nil, false
	}
	d, ok := s.Devices[device]
	return d, ok
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Eval evaluates one event at time now, appending resulting actions to out.
// known is false when the device is not registered at the event's site and
// gateway; the caller counts that as bad input, but a call button or fall
// detector still raises its alarm, because losing a real alarm over a
// registration mistake is the worse error.
func (e *Engine) Eval(ev *event.Event, now time.Time, out []Action) ([]Action, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.Events++
	ss := e.sites[ev.Site]
	var ds *devState
	if ss != nil {
		ds = ss.devs[ev.Device]
	}
	known := ds != nil && ds.dev.Gateway == ev.Gateway
	if ev.Type == event.CommLink && ev.Status == event.Offline {
		e.setLink(ev.Site, ev.Gateway, ev.Device, true, now)
	}
	if ev.Type == event.CommLink && ev.Status == event.Restoral {
		e.setLink(ev.Site, ev.Gateway, ev.Device, false, now)
	}
	if ev.Type == event.CommLink && (ev.Status == event.IPConnectionFailed || ev.Status == event.Offline) {
		// The gateway speaking about itself: it lost events (0023) or a
		// driver is down (0073). Never silent: a technician must look.
		note := "gatewayen har tappat händelser / the gateway lost events"
		if ev.Status == event.Offline {
			// ev.Device names what is down: a driver, or zigbee2mqtt itself.
			note = "ur funktion i gatewayen: " + ev.Device + " / down in the gateway: " + ev.Device
		}
		out = append(out, Action{Kind: Raise, Rule: RuleGatewayFault, Key: RuleGatewayFault + "/" + ev.Site + "/" + ev.Gateway + "/" + ev.Device,
			Alarm: alarm.KindTechnical, Priority: 2, Status: ev.Status, Site: ev.Site, Gateway: ev.Gateway, Device: ev.Device,
			Type: event.CommLink, Event: ev, Note: note})
		return out, true
	}
	if ev.Type == event.CommLink && ev.Status == event.Restoral {
		// The gateway reports the fault gone (zigbee2mqtt back online).
		// The open alarm stays for staff to close with an outcome.
		out = append(out, Action{Kind: Restore, Rule: RuleGatewayFault, Key: RuleGatewayFault + "/" + ev.Site + "/" + ev.Gateway + "/" + ev.Device,
			Alarm: alarm.KindTechnical, Priority: 2, Status: event.Restoral, Site: ev.Site, Gateway: ev.Gateway, Device: ev.Device,
			Type: event.CommLink, Event: ev})
		return out, true
	}
	if !known {
		// Only resident-initiated alarms are raised for unknown devices.
		if a, ok := triggerAction(nil, ev); ok {
			out = append(out, a)
		}
		return out, false
	}
	dev := ds.dev
	// The registry is the truth for who and where; the payload may omit them.
	if ev.Resident == "" {
		ev.Resident = dev.Resident
	}
	if ev.Unit == "" {
		ev.Unit = dev.Unit
	}
	if ev.Room == "" {
		ev.Room = dev.Room
	}
	var rs *resState
	if ev.Resident != "" {
		rs = ss.res[ev.Resident]
	}

	if ev.Status == event.Offline {
		// The gateway says the device is gone (its driver failed): not a
		// sign of life.
		if !ds.silentRaised {
			ds.silentRaised = true
			out = append(out, e.devAction(ev, dev, Raise, RuleDeviceSilent, "gatewayen rapporterar enheten ur funktion / gateway reports the device offline"))
		}
		return out, true
	}
	// Any other message is a sign of life (supervision).
	ds.lastSeen, ds.heard = now, true
	if ev.Battery != nil {
		ds.battery = *ev.Battery
	}
	if ev.State != event.StateNone {
		ds.state = ev.State
	}
	if !ds.armed {
		ds.armed = true
		e.pushDevSilence(ss, ds)
	}
	if ds.silentRaised {
		ds.silentRaised = false
		e.pushDevSilence(ss, ds) // the fired timer is gone: supervise afresh
		out = append(out, e.devAction(ev, dev, Restore, RuleDeviceSilent, "enheten hörs igen / device heard again"))
	}

	// Technical state: battery and tamper.
	if ev.Status == event.BatteryLow || (ev.Battery != nil && *ev.Battery <= e.cfg.BatteryLow) {
		if !ds.lowBattery {
			ds.lowBattery = true
			out = append(out, e.devAction(ev, dev, Raise, RuleBatteryLow, ""))
		}
	} else if ev.Battery != nil && *ev.Battery >= e.cfg.BatteryLow+10 && ds.lowBattery {
		ds.lowBattery = false
		out = append(out, e.devAction(ev, dev, Restore, RuleBatteryLow, "batteriet bytt / battery replaced"))
	}
	if ev.State == event.StateTamper && !ds.tamper {
		ds.tamper = true
		out = append(out, e.devAction(ev, dev, Raise, RuleTamper, ""))
	}
	if ev.Status == event.Restoral && ev.State == event.StateNone {
		// A restoral from the device clears its technical conditions.
		if ds.tamper {
			ds.tamper = false
			out = append(out, e.devAction(ev, dev, Restore, RuleTamper, ""))
		}
	}
	if ev.Status == event.Presence && ev.Room != "" {
		ss.staffUntil[ev.Room] = now.Add(e.cfg.StaffPresence)
	}

	ds.noteFix(ev, now)
	if a, ok := triggerAction(ds, ev); ok {
		ds.attachLastKnown(&a)
		out = append(out, a)
		return out, true
	}

	switch ev.Type {
	case event.DoorSensor:
		out = e.door(ss, ds, rs, ev, now, out)
	case event.BedMonitor, event.ChairMonitor, event.MatSensor:
		out = e.bed(ss, rs, ev, now, out)
	case event.Occupancy, event.WanderSensor:
		if rs != nil && (ev.State == event.StateMotion || ev.State == event.StateOccupied || ev.Status == event.Movement) {
			out = e.motion(ss, rs, ev, now, out)
		}
	}
	if ev.Position != nil && rs != nil {
		out = e.position(ss, rs, ev, now, out)
	}
	return out, true
}

// triggerAction handles the resident-initiated alarms, which need no
// registry and no consent: a person asked for help.
func triggerAction(ds *devState, ev *event.Event) (Action, bool) {
	switch {
	case ev.Type.IsTrigger() && (ev.State == event.StatePressed || ev.Status == event.ManualAlarm || ev.Status == event.Assistance):
		return evAction(ds, ev, RuleCallButton, alarm.KindCall, 1, event.ManualAlarm, ""), true
	case ev.Type == event.FallDetector && (ev.Status == event.AutomaticAlarm || ev.State == event.StatePressed):
		return evAction(ds, ev, RuleFall, alarm.KindFall, 1, event.AutomaticAlarm, ""), true
	// A GPS watch's SOS key (Traccar "sos") is a call button; its fall
	// detection (Traccar "fallDown") is a fall detector.
	case ev.Type == event.Tracker && ev.Status == event.ManualAlarm:
		return evAction(ds, ev, RuleCallButton, alarm.KindCall, 1, event.ManualAlarm, ""), true
	case ev.Type == event.Tracker && ev.Status == event.AutomaticAlarm:
		return evAction(ds, ev, RuleFall, alarm.KindFall, 1, event.AutomaticAlarm, ""), true
	// A fall sensed by any device (a presence radar with fall detection),
	// and an SOS key on any device: whatever type it was registered as,
	// a person may be on the floor or asking for help.
	case ev.State == event.StateFall && ev.Status != event.Restoral:
		return evAction(ds, ev, RuleFall, alarm.KindFall, 1, event.AutomaticAlarm, ""), true
	case ev.State == event.StatePressed && ev.Status == event.ManualAlarm:
		return evAction(ds, ev, RuleCallButton, alarm.KindCall, 1, event.ManualAlarm, ""), true
	case ev.State.IsHazard():
		rule, p := hazardRule(ev.State)
		if ev.Status == event.Restoral {
			a := evAction(ds, ev, rule, alarm.KindHazard, p, event.Restoral, "")
			a.Kind, a.Note = Restore, "detektorn återställd / detector clear"
			return a, true
		}
		return evAction(ds, ev, rule, alarm.KindHazard, p, event.AutomaticAlarm, ""), true
	}
	return Action{}, false
}

// hazardRule names the rule and priority of a hazard state: fire and gas
// threaten life at once; water damages the home and may make a floor
// slippery, so it is urgent but second.
func hazardRule(s event.State) (string, alarm.Priority) {
	switch s {
	case event.StateSmoke:
		return RuleSmoke, 1
	case event.StateGas:
		return RuleGas, 1
	case event.StateCarbonMonoxide:
		return RuleCarbonMonoxide, 1
	}
	return RuleWaterLeak, 2
}

func (e *Engine) door(ss *siteState, ds *devState, rs *resState, ev *event.Event, now time.Time, out []Action) []Action {
	switch ev.State {
	case event.StateOpen:
		if ds.open {
			// A double report of the same state: nothing new happened.
			e.stats.StateRepeats++
			return out
		}
		ds.open, ds.openSince = true, now
		e.gen++
		ds.openGen = e.gen
		chatter := !ds.closedAt.IsZero() && now.Sub(ds.closedAt) < Debounce
		plan := e.planFor(ss, rs, ds.dev.Unit)
		if plan[RuleDoorOpenLong].Enabled {
			e.pushDoor(ss, ds)
		}
		if chatter {
			// Re-opened within the debounce of closing: contact chatter,
			// or the same person going through; the first opening alarmed.
			e.stats.StateRepeats++
			return out
		}
		night := e.night(ss, rs, ds.dev.Unit, now)
		if ds.dev.Exit && night && plan[RuleDoorAtNight].Enabled {
			out = append(out, evAction(ds, ev, RuleDoorAtNight, alarm.KindWander, 1, event.AutomaticAlarm, event.LocFrontDoor))
			return out
		}
		if !ds.dev.Exit && rs != nil && night && e.allowed(rs, RuleRoomDoor) {
			if until, ok := ss.staffUntil[ds.dev.Room]; ok && now.Before(until) {
				return out // staff are in the room
			}
			if rs.bedEmpty || !e.hasBedSensor(ss, rs.res.ID) {
				out = append(out, evAction(ds, ev, RuleRoomDoor, alarm.KindWander, 2, event.AutomaticAlarm, ""))
			}
		}
	case event.StateClosed:
		if !ds.open {
			e.stats.StateRepeats++
			return out
		}
		ds.open, ds.closedAt = false, now
		e.gen++ // cancels a pending open-too-long
		if ds.openRaised {
			ds.openRaised = false
			out = append(out, e.devAction(ev, ds.dev, Restore, RuleDoorOpenLong, "dörren stängd / door closed"))
		}
	}
	return out
}

func (e *Engine) hasBedSensor(ss *siteState, resident string) bool {
	for _, d := range ss.devs {
		if d.dev.Resident == resident && (d.dev.Type == event.BedMonitor || d.dev.Type == event.MatSensor || d.dev.Type == event.ChairMonitor) {
			return true
		}
	}
	return false
}

func (e *Engine) bed(ss *siteState, rs *resState, ev *event.Event, now time.Time, out []Action) []Action {
	if rs == nil {
		return out
	}
	switch {
	case ev.State == event.StateEmpty:
		if rs.bedEmpty {
			e.stats.StateRepeats++
			return out
		}
		rs.bedEmpty, rs.bedSince = true, now
		rs.gateway, rs.device = ev.Gateway, ev.Device
		e.gen++
		rs.bedGen = e.gen
		if e.allowed(rs, RuleBedExit) && e.night(ss, rs, rs.res.Unit, now) {
			e.push(timer{at: now.Add(rs.res.Plan[RuleBedExit].Hold), kind: tBed, site: ss.cfg.ID, id: rs.res.ID, gen: rs.bedGen})
		}
	case ev.State == event.StateOccupied || ev.Status == event.LyingInBed:
		if !rs.bedEmpty {
			if rs.inBedSince.IsZero() {
				rs.inBedSince = now // the first report since the hub started
			}
			e.stats.StateRepeats++
			return out
		}
		rs.bedEmpty, rs.inBedSince = false, now
		e.gen++
		if rs.bedRaised {
			rs.bedRaised = false
			out = append(out, e.resAction(ss, rs, Restore, RuleBedExit, "tillbaka i sängen / back in bed"))
		}
	}
	return out
}

func (e *Engine) motion(ss *siteState, rs *resState, ev *event.Event, now time.Time, out []Action) []Action {
	rs.lastMotion = now
	rs.gateway, rs.device = ev.Gateway, ev.Device
	if !rs.motionArmed && e.allowed(rs, RuleInactivity) {
		rs.motionArmed = true
		e.pushInactivity(ss, rs)
	}
	if rs.inactRaised {
		rs.inactRaised = false
		e.pushInactivity(ss, rs)
		out = append(out, e.resAction(ss, rs, Restore, RuleInactivity, "rörelse igen / movement again"))
	}
	return out
}

// fence handles a valid GPS fix: the accuracy gate, then inside/outside
// with the fix's accuracy as a margin, so jitter along the edge is not an
// exit. position (tracker.go) calls it.
func (e *Engine) fence(ss *siteState, rs *resState, ev *event.Event, p event.Position, now time.Time, out []Action) []Action {
	rs.track = append(rs.track, p)
	if len(rs.track) > trackLen {
		rs.track = rs.track[len(rs.track)-trackLen:]
	}
	if len(rs.res.Fences) == 0 || !e.allowed(rs, RuleGeofenceExit) {
		return out
	}
	set := rs.res.Plan[RuleGeofenceExit]
	if p.Accuracy <= 0 || (set.MaxAccuracy > 0 && p.Accuracy > set.MaxAccuracy) {
		e.stats.GPSGated++
		return out
	}
	inside := false
	for _, f := range rs.res.Fences {
		if f.Contains(p.Lat, p.Lon, p.Accuracy) {
			inside = true
			break
		}
	}
	rs.gateway, rs.device = ev.Gateway, ev.Device
	switch {
	case inside && rs.outside:
		rs.outside = false
		e.gen++
		if rs.geoRaised {
			rs.geoRaised = false
			a := e.resAction(ss, rs, Restore, RuleGeofenceExit, "tillbaka inom området / back inside")
			a.Position = &p
			out = append(out, a)
		}
	case !inside && !rs.outside:
		rs.outside, rs.outsideSince = true, now
		e.gen++
		rs.geoGen = e.gen
		e.push(timer{at: now.Add(set.Hold), kind: tGeo, site: ss.cfg.ID, id: rs.res.ID, gen: rs.geoGen})
	}
	return out
}

const trackLen = 10

// superviseBatch is how many due timers Supervise handles per lock hold.
const superviseBatch = 256

// Debounce is how soon after closing a door's re-opening counts as chatter
// (contact sensors that double-report quick toggles), not a new opening.
const Debounce = 3 * time.Second

// allowed reports whether a rule runs for a resident: enabled in the plan
// and, for digital supervision, consented to.
func (e *Engine) allowed(rs *resState, rule string) bool {
	if !rs.res.Plan[rule].Enabled {
		return false
	}
	if Rules[rule].Consent && !rs.res.Consent[rule] {
		e.stats.NoConsent++
		return false
	}
	return true
}

func (e *Engine) planFor(ss *siteState, rs *resState, unit string) Plan {
	if rs != nil && rs.res.Plan != nil {
		return rs.res.Plan
	}
	if p, ok := ss.cfg.UnitPlans[unit]; ok {
		return p
	}
	return ss.cfg.Plan
}

func (e *Engine) night(ss *siteState, rs *resState, unit string, now time.Time) bool {
	w := ss.cfg.Night
	if uw, ok := ss.cfg.Units[unit]; ok {
		w = uw
	}
	if rs != nil && rs.res.Night != nil {
		w = *rs.res.Night
	}
	return w.Contains(now, e.cfg.Location)
}

// evAction is an action about ev's device; ds is the device's state, nil
// for an unregistered device.
func evAction(ds *devState, ev *event.Event, rule string, k alarm.Kind, p alarm.Priority, st event.StatusCode, lco event.LocationCode) Action {
	return Action{
		Kind: Raise, Rule: rule, Key: ds.actionKey(rule, ev.Site, ev.Device),
		Alarm: k, Priority: p, Status: st, Location: lco,
		Site: ev.Site, Gateway: ev.Gateway, Device: ev.Device, Type: ev.Type,
		Unit: ev.Unit, Room: ev.Room, Resident: ev.Resident, Event: ev, Position: ev.Position,
	}
}

// devAction is a technical or door action keyed by device.
func (e *Engine) devAction(ev *event.Event, d *Device, k ActionKind, rule, note string) Action {
	a := Action{Kind: k, Rule: rule, Key: rule + "/" + d.Site + "/" + d.ID, Alarm: alarm.KindTechnical, Priority: 3,
		Site: d.Site, Gateway: d.Gateway, Device: d.ID, Type: d.Type, Unit: d.Unit, Room: d.Room, Resident: d.Resident,
		Event: ev, Note: note}
	switch rule {
	case RuleBatteryLow:
		a.Status = event.BatteryLow
	case RuleDeviceSilent:
		a.Status = event.Offline
		if d.Type.IsTrigger() {
			a.Status = event.RadioTestMissing
		}
	case RuleDoorOpenLong:
		a.Status, a.Alarm, a.Priority = event.OpenTooLong, alarm.KindWander, 2
	case RuleTamper:
		a.Priority = 2
	}
	if k == Restore {
		a.Status = event.Restoral
	}
	return a
}

// resAction is an action keyed by resident (bed exit, geofence, inactivity).
func (e *Engine) resAction(ss *siteState, rs *resState, k ActionKind, rule, note string) Action {
	a := Action{Kind: k, Rule: rule, Key: rule + "/" + ss.cfg.ID + "/" + rs.res.ID, Priority: 1,
		Site: ss.cfg.ID, Gateway: rs.gateway, Device: rs.device, Unit: rs.res.Unit, Resident: rs.res.ID, Note: note}
	if d, ok := ss.devs[rs.device]; ok {
		a.Type, a.Room = d.dev.Type, d.dev.Room
	}
	switch rule {
	case RuleBedExit:
		a.Alarm, a.Status = alarm.KindWander, event.AutomaticAlarm
	case RuleGeofenceExit:
		a.Alarm, a.Status, a.Location = alarm.KindWander, event.AutomaticAlarm, event.LocGeofence
		a.Track = append([]event.Position(nil), rs.track...)
		if n := len(rs.track); n > 0 {
			p := rs.track[n-1]
			a.Position = &p
		}
	case RuleInactivity:
		a.Alarm, a.Status, a.Priority = alarm.KindCall, event.AutomaticAlarm, 2
	}
	if k == Restore {
		a.Status = event.Restoral
	}
	return a
}

// Timers.

type timerKind uint8

const (
	tSilence timerKind = iota + 1
	tDoor
	tBed
	tGeo
	tInactivity
)

type timer struct {
	at   time.Time
	kind timerKind
	site string
	id   string // device or resident id
	gen  uint64
}

// timerHeap is a min-heap of timers by due time, typed rather than through
// container/heap: heap.Push and heap.Pop box each 72-byte timer in an
// interface, an allocation per push and per pop on the alarm path (every
// first event of a device arms its supervision timer). The sift steps are
// container/heap's, so equal due times come out in the same order as before.
type timerHeap []timer

func (h timerHeap) less(i, j int) bool { return h[i].at.Before(h[j].at) }

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	q := *h
	j := len(q) - 1
	for {
		i := (j - 1) / 2 // parent
		if i == j || !q.less(j, i) {
			break
		}
		q[i], q[j] = q[j], q[i]
		j = i
	}
}

// pop removes and returns the earliest timer; h must not be empty.
func (h *timerHeap) pop() timer {
	q := *h
	n := len(q) - 1
	q[0], q[n] = q[n], q[0]
	i := 0
	for {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 {
			break
		}
		j := j1 // left child
		if j2 := j1 + 1; j2 < n && q.less(j2, j1) {
			j = j2 // right child
		}
		if !q.less(j, i) {
			break
		}
		q[i], q[j] = q[j], q[i]
		i = j
	}
	t := q[n]
	q[n] = timer{} // drop the strings for the GC
	*h = q[:n]
	return t
}

func (e *Engine) push(t timer) { e.q.push(t) }

// pushDevSilence schedules a supervision check for the device's class. The
// check is lazy: a heartbeat only updates lastSeen, and the timer re-arms
// itself when it finds the device was heard, so 250,000 devices cost one
// heap entry each.
func (e *Engine) pushDevSilence(ss *siteState, ds *devState) {
	max, ok := ss.cfg.period(ds.dev)
	if !ok || max <= 0 {
		return
	}
	e.push(timer{at: ds.lastSeen.Add(max), kind: tSilence, site: ss.cfg.ID, id: ds.dev.ID})
}

func (e *Engine) pushDoor(ss *siteState, ds *devState) {
	plan := e.planFor(ss, ss.res[ds.dev.Resident], ds.dev.Unit)
	e.push(timer{at: ds.openSince.Add(plan[RuleDoorOpenLong].Hold), kind: tDoor, site: ss.cfg.ID, id: ds.dev.ID, gen: ds.openGen})
}

func (e *Engine) pushInactivity(ss *siteState, rs *resState) {
	e.push(timer{at: rs.lastMotion.Add(rs.res.Plan[RuleInactivity].Hold), kind: tInactivity, site: ss.cfg.ID, id: rs.res.ID})
}

// NextDeadline is the earliest pending timer, for replay to step through.
func (e *Engine) NextDeadline() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.q) == 0 {
		return time.Time{}, false
	}
	return e.q[0].at, true
}

// Supervise fires due timers and checks gateways for missed heartbeats at
// time now.
//
// Due timers are handled in batches, releasing the lock between them, so a
// tick over 250,000 supervised devices never holds up an alarm for long.
func (e *Engine) Supervise(now time.Time) []Action {
	var all []Action
	e.SuperviseEach(now, func(acts []Action) { all = append(all, acts...) })
	return all
}

// SuperviseEach is Supervise handing the actions to apply a batch at a
// time (at most superviseBatch, e's lock not held), in the same order:
// a storm of 250,000 silent devices then never holds all their actions
// (about 330 bytes each, in a slice grown by doubling) at once. apply
// must not keep the slice: it is reused for the next batch.
func (e *Engine) SuperviseEach(now time.Time, apply func([]Action)) {
	var out []Action
	for more := true; more; {
		e.mu.Lock()
		more = false
		for n := 0; len(e.q) > 0 && !e.q[0].at.After(now); n++ {
			if n == superviseBatch {
				more = true
				break
			}
			t := e.q.pop()
			if ss := e.sites[t.site]; ss != nil {
				out = e.fire(ss, t, now, out)
			}
		}
		e.mu.Unlock()
		if len(out) > 0 {
			apply(out)
			clear(out)
			out = out[:0]
		}
		if more {
			// Let the alarm path run between batches: on a hub with one
			// CPU (GOMAXPROCS 1) the lock alone is not enough, as this
			// goroutine would keep the processor until preempted (10 ms).
			runtime.Gosched()
		}
	}
	e.mu.Lock()
	for _, l := range e.live {
		if !l.known || l.offline || l.gw == nil || l.gw.Heartbeat <= 0 {
			continue
		}
		missed := l.gw.Missed
		if missed <= 0 {
			missed = 3
		}
		if now.Sub(l.lastBeat) > time.Duration(missed)*l.gw.Heartbeat {
			l.offline = true
			out = append(out, gatewayAction(l.gw.Site, l.gw.ID, Raise, "heartbeats missed"))
		}
	}
	e.mu.Unlock()
	if len(out) > 0 {
		apply(out)
	}
}

// setLink records a gateway link (zigbee2mqtt, its broker) down or back.
// Back, the devices heard through it get a fresh supervision period, as
// when a gateway returns.
func (e *Engine) setLink(site, gateway, link string, down bool, now time.Time) {
	k := site + "/" + gateway + "/" + link
	if down {
		if e.linksDown == nil {
			e.linksDown = map[string]time.Time{}
		}
		if _, ok := e.linksDown[k]; !ok {
			e.linksDown[k] = now
		}
		return
	}
	if _, ok := e.linksDown[k]; !ok {
		return
	}
	delete(e.linksDown, k)
	if ss := e.sites[site]; ss != nil {
		for _, ds := range ss.byGateway[gateway] {
			if slices.Contains(ds.dev.Links, link) && ds.armed && !ds.silentRaised && ds.lastSeen.Before(now) {
				ds.lastSeen = now
			}
		}
	}
}

// MaxLinkInhibit bounds how long a link reported down holds back its
// devices' device_silent: a restoral that never comes (the driver removed,
// a lost message) must not leave them unsupervised for good.
const MaxLinkInhibit = 12 * time.Hour

// linkDown reports whether a link the device is heard through is down,
// and has not been for longer than MaxLinkInhibit.
func (e *Engine) linkDown(site string, d *Device, now time.Time) bool {
	for _, l := range d.Links {
		if since, ok := e.linksDown[site+"/"+d.Gateway+"/"+l]; ok && now.Sub(since) < MaxLinkInhibit {
			return true
		}
	}
	return false
}

func (e *Engine) gatewayOffline(site, gateway string) bool {
	l, ok := e.live[site+"/"+gateway]
	return ok && l.offline
}

func (e *Engine) fire(ss *siteState, t timer, now time.Time, out []Action) []Action {
	switch t.kind {
	case tSilence:
		ds := ss.devs[t.id]
		if ds == nil || ds.silentRaised {
			return out
		}
		max, ok := ss.cfg.period(ds.dev)
		if !ok || max <= 0 {
			return out // supervision turned off by a reload
		}
		if due := ds.lastSeen.Add(max); due.After(now) {
			e.push(timer{at: due, kind: tSilence, site: t.site, id: t.id})
			return out
		}
		if e.gatewayOffline(ss.cfg.ID, ds.dev.Gateway) || e.linkDown(ss.cfg.ID, ds.dev, now) {
			// Inhibited: staff see the gateway alarm, or the gateway_fault
			// of the link it is heard through (the cause), not one alarm
			// per silent device (the symptoms). Re-check later.
			e.push(timer{at: now.Add(max), kind: tSilence, site: t.site, id: t.id})
			return out
		}
		ds.silentRaised = true
		out = append(out, e.devAction(nil, ds.dev, Raise, RuleDeviceSilent,
			"ingen signal på "+max.String()+" / silent for "+max.String()))
	case tDoor:
		ds := ss.devs[t.id]
		if ds == nil || !ds.open || ds.openGen != t.gen || ds.openRaised {
			return out
		}
		ds.openRaised = true
		out = append(out, e.devAction(nil, ds.dev, Raise, RuleDoorOpenLong, ""))
	case tBed:
		rs := ss.res[t.id]
		if rs == nil || !rs.bedEmpty || rs.bedGen != t.gen || rs.bedRaised {
			return out
		}
		rs.bedRaised = true
		out = append(out, e.resAction(ss, rs, Raise, RuleBedExit, ""))
	case tGeo:
		rs := ss.res[t.id]
		if rs == nil || !rs.outside || rs.geoGen != t.gen || rs.geoRaised {
			return out
		}
		rs.geoRaised = true
		out = append(out, e.resAction(ss, rs, Raise, RuleGeofenceExit, ""))
	case tInactivity:
		rs := ss.res[t.id]
		if rs == nil || rs.inactRaised || !rs.motionArmed {
			return out
		}
		set := rs.res.Plan[RuleInactivity]
		if due := rs.lastMotion.Add(set.Hold); due.After(now) {
			e.push(timer{at: due, kind: tInactivity, site: t.site, id: t.id})
			return out
		}
		if set.HasWindow && !set.Window.Contains(now, e.cfg.Location) {
			e.push(timer{at: now.Add(time.Minute), kind: tInactivity, site: t.site, id: t.id})
			return out
		}
		if rs.gateway != "" && e.gatewayOffline(ss.cfg.ID, rs.gateway) {
			e.push(timer{at: now.Add(time.Minute), kind: tInactivity, site: t.site, id: t.id})
			return out
		}
		rs.inactRaised = true
		out = append(out, e.resAction(ss, rs, Raise, RuleInactivity, ""))
	}
	return out
}

// GatewayKey is the alarm key of a gateway's offline alarm.
func GatewayKey(site, gateway string) string {
	return RuleGatewayOffline + "/" + site + "/" + gateway
}

// GatewayStatus handles a gateway's retained status or Last Will. An
// "offline" (the Will: the broker saw the link die) raises at once; an
// "online" after an offline restores.
func (e *Engine) GatewayStatus(site, gateway string, online bool, now time.Time) (Action, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.liveLocked(site, gateway)
	l.known = true
	if online {
		l.lastBeat = now
		if l.offline {
			l.offline = false
			e.regrace(site, gateway, now)
			return gatewayAction(site, gateway, Restore, "gateway back online"), true
		}
		return Action{}, false
	}
	if l.offline {
		return Action{}, false
	}
	l.offline = true
	return gatewayAction(site, gateway, Raise, "gateway connection lost (last will)"), true
}

// regrace gives a gateway's devices a fresh supervision period when the
// gateway returns, so its outage does not become a flood of device alarms.
func (e *Engine) regrace(site, gateway string, now time.Time) {
	ss := e.sites[site]
	if ss == nil {
		return
	}
	for _, ds := range ss.byGateway[gateway] {
		if ds.armed && !ds.silentRaised && ds.lastSeen.Before(now) {
			ds.lastSeen = now
		}
	}
}

// Heartbeat records a gateway's proof of life. A heartbeat from a gateway
// marked offline restores it.
func (e *Engine) Heartbeat(site, gateway string, now time.Time) (Action, bool) {
	return e.GatewayStatus(site, gateway, true, now)
}

// Expect arms supervision for every configured gateway and supervised
// device as if heard at now: the hub calls it at start, so one that never
// comes back after a restart (or was never paired) is still caught.
func (e *Engine) Expect(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.live {
		if l.gw != nil && !l.known {
			l.known = true
			l.lastBeat = now
		}
	}
	for _, ss := range e.sites {
		for _, ds := range ss.devs {
			if !ds.armed {
				ds.armed, ds.lastSeen = true, now
				e.pushDevSilence(ss, ds)
			}
		}
	}
}

// MarkOffline tells the engine that an offline alarm for the gateway is
// already open (rebuilt from the journal), so it is not raised twice.
func (e *Engine) MarkOffline(site, gateway string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.liveLocked(site, gateway).offline = true
}

func (e *Engine) liveLocked(site, gateway string) *liveness {
	k := site + "/" + gateway
	l, ok := e.live[k]
	if !ok {
		var gw *Gateway
		if s := e.cfg.Sites[site]; s != nil {
			gw = s.Gateways[gateway]
		}
		l = &liveness{gw: gw}
		e.live[k] = l
	}
	return l
}

// StaffPresent records staff in a room (an alarm's "Hos brukaren"), which
// silences door rules for the room for Config.StaffPresence.
func (e *Engine) StaffPresent(site, room string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ss := e.sites[site]; ss != nil && room != "" {
		ss.staffUntil[room] = now.Add(e.cfg.StaffPresence)
	}
}

func gatewayAction(site, gateway string, k ActionKind, note string) Action {
	st := event.Offline
	if k == Restore {
		st = event.Restoral
	}
	return Action{
		Kind: k, Rule: RuleGatewayOffline, Key: GatewayKey(site, gateway),
		Alarm: alarm.KindTechnical, Priority: 3, Status: st,
		Site: site, Gateway: gateway, Type: event.CommLink, Note: note,
	}
}

// actionKey is rule + "/" + site + "/" + device, an action's key, reusing
// the string built for the device's last action when it is the same (ds
// nil: built each time). Called under the engine's lock.
func (ds *devState) actionKey(rule, site, device string) string {
	if ds == nil {
		return rule + "/" + site + "/" + device
	}
	if k := ds.key; len(k) == len(rule)+len(site)+len(device)+2 &&
		k[:len(rule)] == rule && k[len(rule)] == '/' &&
		k[len(rule)+1:len(rule)+1+len(site)] == site && k[len(rule)+1+len(site)] == '/' &&
		k[len(k)-len(device):] == device {
		return k
	}
	ds.key = rule + "/" + site + "/" + device
	return ds.key
}
