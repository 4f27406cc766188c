// Package rules decides which events become alarms. It is pure logic: it
// receives events and the evaluation time and returns actions; it never
// reads the clock, writes to disk or talks to the network. That keeps it
// fast enough to run inline on the broker's publish path, deterministic for
// replay, and testable across daylight-saving changes.
package rules

import (
	"sync"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// Rule names, stable: they appear in alarms, metrics and pilot reports.
const (
	RuleCallButton     = "call_button"
	RuleFall           = "fall"
	RuleDoorAtNight    = "door_at_night"
	RuleGatewayOffline = "gateway_offline"
	RuleHubIntegrity   = "hub_integrity"
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
}

// Gateway is what the hub knows about one gateway's supervision.
type Gateway struct {
	ID        string
	Site      string
	Heartbeat time.Duration // expected interval
	Missed    int           // missed heartbeats before the gateway is offline
}

// Site holds one site's rule settings.
type Site struct {
	ID       string
	Night    Window
	Units    map[string]Window // per-unit night windows that override the site's
	Devices  map[string]*Device
	Gateways map[string]*Gateway
}

// Config is the rule set.
type Config struct {
	Location *time.Location
	Sites    map[string]*Site
}

// ActionKind says what the hub should do.
type ActionKind int

// Actions.
const (
	Raise ActionKind = iota + 1
	// Restore records that the cause of a technical alarm has gone (SCAIP
	// 0094 restoral). The alarm stays open: staff still close it.
	Restore
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
	Event    *event.Event // the source event; nil for supervision
	Note     string
}

// Engine evaluates the rules. Eval and the supervision methods may be
// called concurrently from many broker connections.
type Engine struct {
	cfg Config

	mu   sync.Mutex
	live map[string]*liveness // by site/gateway
}

type liveness struct {
	gw       *Gateway
	lastBeat time.Time
	offline  bool // an offline action has been emitted and not restored
	known    bool // heard from at least once since start
}

// New returns an engine for cfg. A nil Location means UTC.
func New(cfg Config) *Engine {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	e := &Engine{cfg: cfg, live: map[string]*liveness{}}
	for _, s := range cfg.Sites {
		for _, g := range s.Gateways {
			e.live[s.ID+"/"+g.ID] = &liveness{gw: g}
		}
	}
	return e
}

// Lookup returns the registered device, if any.
func (e *Engine) Lookup(site, device string) (*Device, bool) {
	s, ok := e.cfg.Sites[site]
	if !ok {
		return nil, false
	}
	d, ok := s.Devices[device]
	return d, ok
}

// Eval evaluates one event at time now. known is false when the device is
// not registered at the event's site and gateway; the caller counts that as
// bad input, but a call button or fall detector still raises its alarm,
// because losing a real alarm over a registration mistake is the worse error.
func (e *Engine) Eval(ev *event.Event, now time.Time) (act Action, fired bool, known bool) {
	site := e.cfg.Sites[ev.Site]
	var dev *Device
	if site != nil {
		dev = site.Devices[ev.Device]
	}
	known = dev != nil && dev.Gateway == ev.Gateway
	if known {
		// The registry is the truth for who and where; the payload may
		// omit them.
		if ev.Resident == "" {
			ev.Resident = dev.Resident
		}
		if ev.Unit == "" {
			ev.Unit = dev.Unit
		}
		if ev.Room == "" {
			ev.Room = dev.Room
		}
	}

	switch {
	case ev.Type.IsTrigger() && (ev.State == event.StatePressed || ev.Status == event.ManualAlarm || ev.Status == event.Assistance):
		act = e.action(ev, RuleCallButton, alarm.KindCall, 1, event.ManualAlarm, "")
		return act, true, known
	case ev.Type == event.FallDetector && (ev.Status == event.AutomaticAlarm || ev.State == event.StatePressed):
		act = e.action(ev, RuleFall, alarm.KindFall, 1, event.AutomaticAlarm, "")
		return act, true, known
	case ev.Type == event.DoorSensor && ev.State == event.StateOpen && known && dev.Exit:
		if e.night(site, ev.Unit, now) {
			act = e.action(ev, RuleDoorAtNight, alarm.KindWander, 1, event.AutomaticAlarm, event.LocFrontDoor)
			return act, true, known
		}
	}
	return Action{}, false, known
}

func (e *Engine) night(s *Site, unit string, now time.Time) bool {
	w := s.Night
	if uw, ok := s.Units[unit]; ok {
		w = uw
	}
	return w.Contains(now, e.cfg.Location)
}

func (e *Engine) action(ev *event.Event, rule string, k alarm.Kind, p alarm.Priority, st event.StatusCode, lco event.LocationCode) Action {
	return Action{
		Kind: Raise, Rule: rule, Key: rule + "/" + ev.Site + "/" + ev.Device,
		Alarm: k, Priority: p, Status: st, Location: lco,
		Site: ev.Site, Gateway: ev.Gateway, Device: ev.Device, Type: ev.Type,
		Unit: ev.Unit, Room: ev.Room, Resident: ev.Resident, Event: ev,
	}
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
			return e.gatewayAction(l, site, gateway, Restore, "gateway back online"), true
		}
		return Action{}, false
	}
	if l.offline {
		return Action{}, false
	}
	l.offline = true
	return e.gatewayAction(l, site, gateway, Raise, "gateway connection lost (last will)"), true
}

// Heartbeat records a gateway's proof of life. A heartbeat from a gateway
// marked offline restores it.
func (e *Engine) Heartbeat(site, gateway string, now time.Time) (Action, bool) {
	return e.GatewayStatus(site, gateway, true, now)
}

// Supervise checks every gateway heard from since start for missed
// heartbeats at time now.
func (e *Engine) Supervise(now time.Time) []Action {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Action
	for key, l := range e.live {
		if !l.known || l.offline || l.gw == nil || l.gw.Heartbeat <= 0 {
			continue
		}
		missed := l.gw.Missed
		if missed <= 0 {
			missed = 3
		}
		if now.Sub(l.lastBeat) > time.Duration(missed)*l.gw.Heartbeat {
			l.offline = true
			out = append(out, e.gatewayAction(l, l.gw.Site, l.gw.ID, Raise, "heartbeats missed"))
			_ = key
		}
	}
	return out
}

// Expect arms supervision for a gateway as if it had been heard at now: the
// hub calls it at start for every configured gateway, so one that never
// comes back after a hub restart is still caught.
func (e *Engine) Expect(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.live {
		if l.gw != nil && !l.known {
			l.known = true
			l.lastBeat = now
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

func (e *Engine) gatewayAction(l *liveness, site, gateway string, k ActionKind, note string) Action {
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
