// Package pilot is the evidence a pilot team and an innovation lead need to
// judge a trial: the trial model with success criteria agreed up front, the
// pilot record of each alarm (pseudonymous, no personal data), and the
// measures of "Metrics a pilot report should show" (docs: shared domain
// notes), computed from records over a period whichever store they come
// from (the embedded store or InfluxDB).
//
// It is pure: no I/O, no clocks. Adapters (pilot/influx, pilot/local,
// pilot/web) depend on it.
package pilot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// Source is what caught an alarm, as pilots compare them.
type Source string

// Sources.
const (
	SrcButton    Source = "button" // call button (trygghetslarm), personal or fixed
	SrcDoor      Source = "door"   // door and wandering sensors
	SrcBed       Source = "bed"    // bed, mat and chair monitors
	SrcMotion    Source = "motion" // occupancy / PIR
	SrcFall      Source = "fall"   // fall detector
	SrcGPS       Source = "gps"    // tracker, geofence
	SrcTechnical Source = "technical"
	SrcOther     Source = "other"
)

// Sources lists every source in display order.
var Sources = []Source{SrcButton, SrcDoor, SrcBed, SrcMotion, SrcFall, SrcGPS, SrcTechnical, SrcOther}

// Sensor reports whether s is a sensor that catches a need without the
// resident pressing anything.
func (s Source) Sensor() bool {
	switch s {
	case SrcDoor, SrcBed, SrcMotion, SrcFall, SrcGPS:
		return true
	}
	return false
}

// SourceOf maps a device type (and the alarm kind) to a source.
func SourceOf(d event.DeviceType, k alarm.Kind) Source {
	if k == alarm.KindTechnical {
		return SrcTechnical
	}
	switch d {
	case event.PersonalTrigger, event.FixedTrigger:
		return SrcButton
	case event.DoorSensor, event.WanderSensor:
		return SrcDoor
	case event.BedMonitor, event.MatSensor, event.ChairMonitor:
		return SrcBed
	case event.Occupancy:
		return SrcMotion
	case event.FallDetector:
		return SrcFall
	case event.Tracker:
		return SrcGPS
	case event.CommLink:
		return SrcTechnical
	}
	switch k {
	case alarm.KindFall:
		return SrcFall
	case alarm.KindWander:
		return SrcDoor
	case alarm.KindCall:
		return SrcButton
	}
	return SrcOther
}

// Record is one alarm as pilot evidence, written when it is resolved.
// Resident and Device are keyed pseudonyms; durations are seconds from
// the raise, -1 when the step never happened.
type Record struct {
	Alarm      string    `json:"alarm"`
	Trial      string    `json:"trial,omitempty"`
	Arm        string    `json:"arm,omitempty"`
	Site       string    `json:"site"`
	Unit       string    `json:"unit,omitempty"`
	Resident   string    `json:"resident,omitempty"`
	Device     string    `json:"device,omitempty"`
	Source     Source    `json:"source"`
	Kind       string    `json:"kind"`
	Rule       string    `json:"rule,omitempty"`
	RaisedAt   time.Time `json:"raised_at"`
	Night      bool      `json:"night"`
	ToPhone    float64   `json:"to_phone_s"`
	ToAccept   float64   `json:"to_accept_s"`
	ToPresence float64   `json:"to_presence_s"`
	ToResolve  float64   `json:"to_resolve_s"`
	Escalated  bool      `json:"escalated"`
	Outcome    string    `json:"outcome,omitempty"`
	// PhoneVia is the channel of the first receipt (push, app, webhook).
	PhoneVia string `json:"phone_via,omitempty"`
}

// Missing marks a step that did not happen.
const Missing = -1.0

// Step is what an observer copies from the hub at a transition: cheap,
// with ids not yet pseudonymised (that happens off the alarm path).
type Step struct {
	Alarm      string
	Action     alarm.Action
	At         time.Time
	Site       string
	Unit       string
	Resident   string
	Device     string
	DeviceType event.DeviceType
	Kind       alarm.Kind
	Rule       string
	Outcome    alarm.Outcome
	RaisedAt   time.Time
	AcceptedAt time.Time // zero: not (yet) accepted
	PresenceAt time.Time
	ResolvedAt time.Time
	Delivered  time.Time // first phone's delivery receipt
	// DeliveredVia is that receipt's channel: alarm.ChannelPush, ChannelApp…
	DeliveredVia string
	RestoredAt   time.Time // the cause went away (device heard again)
	Escalated    bool
}

// StepOf copies what pilot evidence needs from an alarm after t was applied.
func StepOf(a *alarm.Alarm, t alarm.Transition) Step {
	s := Step{Alarm: a.ID, Action: t.Action, At: t.At, Site: a.Site, Unit: a.Unit, Resident: a.Resident,
		Device: a.Device, DeviceType: a.DeviceType, Kind: a.Kind, Rule: a.Rule, Outcome: a.Outcome(),
		RaisedAt: a.RaisedAt, Escalated: a.Tier() > 0}
	if a.AcceptedAt() != nil {
		s.AcceptedAt = *a.AcceptedAt()
	}
	if a.PresenceAt() != nil {
		s.PresenceAt = *a.PresenceAt()
	}
	if a.ResolvedAt() != nil {
		s.ResolvedAt = *a.ResolvedAt()
	}
	if a.RestoredAt() != nil {
		s.RestoredAt = *a.RestoredAt()
	}
	for _, d := range a.Deliveries {
		if d.Via() == alarm.ChannelSCAIP {
			continue // an alarm receiving centre has it: not a staff phone
		}
		if s.Delivered.IsZero() || d.At.Before(s.Delivered) {
			s.Delivered, s.DeliveredVia = d.At, d.Via()
		}
	}
	return s
}

// Pseudonymizer turns ids into keyed pseudonyms (HMAC-SHA-256): stable
// within one hub so records can be grouped per resident, but not
// reversible or linkable without the key. It remembers recent results
// (a hub has a bounded set of devices and residents), so the exporter
// does not compute an HMAC per event.
type Pseudonymizer struct {
	key []byte

	mu    sync.Mutex
	cache map[pseudKey]string
}

type pseudKey struct{ site, id string }

// pseudCache bounds the remembered pseudonyms (cleared when full).
const pseudCache = 1 << 14

// NewPseudonymizer keys a pseudonymizer.
func NewPseudonymizer(key []byte) *Pseudonymizer {
	return &Pseudonymizer{key: append([]byte(nil), key...), cache: map[pseudKey]string{}}
}

// ID pseudonymises id within site; "" stays "".
func (p *Pseudonymizer) ID(site, id string) string {
	if id == "" {
		return ""
	}
	k := pseudKey{site, id}
	p.mu.Lock()
	v, ok := p.cache[k]
	p.mu.Unlock()
	if ok {
		return v
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(site))
	m.Write([]byte{0})
	m.Write([]byte(id))
	v = "p" + hex.EncodeToString(m.Sum(nil)[:8])
	p.mu.Lock()
	if len(p.cache) >= pseudCache {
		clear(p.cache)
	}
	p.cache[k] = v
	p.mu.Unlock()
	return v
}

// Model is a compiled pilot config: trials, night window, zone, key.
type Model struct {
	Config *Config
	Loc    *time.Location
	Pseud  *Pseudonymizer
}

// NewModel compiles a checked config.
func NewModel(c *Config, loc *time.Location, key []byte) *Model {
	if loc == nil {
		loc = time.UTC
	}
	if c.Night == nil {
		n := DefaultNight
		c.Night = &n
	}
	return &Model{Config: c, Loc: loc, Pseud: NewPseudonymizer(key)}
}

func secs(from, to time.Time) float64 {
	if to.IsZero() || from.IsZero() {
		return Missing
	}
	d := to.Sub(from).Seconds()
	if d < 0 {
		return 0
	}
	return d
}

// Record builds the pilot record of a resolved alarm from its last step.
func (m *Model) Record(s Step) Record {
	trial, arm := m.Config.Assign(s.Site, s.Unit, s.Resident, s.RaisedAt, m.Loc)
	return Record{Alarm: s.Alarm, Trial: trial, Arm: arm, Site: s.Site, Unit: s.Unit,
		Resident: m.Pseud.ID(s.Site, s.Resident), Device: m.Pseud.ID(s.Site, s.Device),
		Source: SourceOf(s.DeviceType, s.Kind), Kind: string(s.Kind), Rule: s.Rule, RaisedAt: s.RaisedAt,
		Night:   m.Config.Night.Contains(s.RaisedAt, m.Loc),
		ToPhone: secs(s.RaisedAt, s.Delivered), ToAccept: secs(s.RaisedAt, s.AcceptedAt),
		ToPresence: secs(s.RaisedAt, s.PresenceAt), ToResolve: secs(s.RaisedAt, s.ResolvedAt),
		Escalated: s.Escalated, Outcome: string(s.Outcome), PhoneVia: s.DeliveredVia}
}
