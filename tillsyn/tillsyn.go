// Package tillsyn is digital night supervision (digital tillsyn): planned
// look-ins that replace a physical night round for a resident who has
// consented to it. At each planned time the hub looks at the resident's
// sensors and records whether the resident was all right, not all right, or
// whether it cannot tell; only the first lets staff skip the visit.
//
// The package is pure: it receives the time and a snapshot of sensor state
// and returns a result, so a night can be replayed and tested across the
// daylight-saving changes of Europe/Stockholm. It imports only the standard
// library; the hub (adapter) builds the snapshot from the rule engine and
// journals the result.
//
// Safety rules that shape it:
//   - a silent, never-heard or unsupervised sensor is never evidence of
//     "all right": the look-in is "cannot tell", which asks for a physical
//     visit, exactly as "not all right" does;
//   - evidence that something is wrong wins over evidence that cannot be
//     read (an empty bed with a silent door sensor is "not all right");
//   - a look-in without recorded consent is "cannot tell" (no_consent).
package tillsyn

import (
	"fmt"
	"strings"
	"time"
)

// Outcome is a look-in's result.
type Outcome string

// Outcomes.
const (
	AllRight    Outcome = "all_right"     // allt väl
	NotAllRight Outcome = "not_all_right" // inte allt väl
	CannotTell  Outcome = "cannot_tell"   // kan inte avgöra
)

// Words returns the outcome in Swedish and English, for staff.
func (o Outcome) Words() (sv, en string) {
	switch o {
	case AllRight:
		return "Allt väl", "All right"
	case NotAllRight:
		return "Inte allt väl", "Not all right"
	case CannotTell:
		return "Kan inte avgöra – gör ett besök", "Cannot tell – make a visit"
	}
	return "Ej gjord ännu", "Not yet made"
}

// Cause says why a look-in could not tell. The pilot reports the
// cannot-tell rate by cause.
type Cause string

// Causes.
const (
	CauseNone         Cause = ""
	CauseSilent       Cause = "silent_sensor" // not heard within its limit, supervision alarm fired, gateway or link down
	CauseNoConsent    Cause = "no_consent"
	CauseNotFitted    Cause = "not_fitted"   // no sensor of the kind, or never heard since the hub started (not paired?)
	CauseUnsupervised Cause = "unsupervised" // supervision is off for the sensor: its silence would go unnoticed
	CauseNoState      Cause = "no_state"     // heard, but has not said what it senses since the hub started
	CauseLate         Cause = "late"         // the hub was not running at the planned time
)

// Causes lists the causes in report order.
var Causes = []Cause{CauseSilent, CauseNoConsent, CauseNotFitted, CauseUnsupervised, CauseNoState, CauseLate}

// Role is what a sensor tells a look-in.
type Role string

// Roles.
const (
	RoleBed      Role = "bed"      // bed monitor or mat: in bed or not
	RolePresence Role = "presence" // PIR or radar in the room
	RoleDoor     Role = "door"     // the resident's own door
)

// Criteria say what "all right" means for one resident; every criterion
// set must hold.
type Criteria struct {
	// InBed: a bed or mat sensor says occupied and no bed exit is pending.
	InBed bool
	// InBedFor, if set, also asks that the resident has been in bed this
	// long (stillness): back in bed a minute ago is not yet all right.
	InBedFor time.Duration
	// PresenceWithin, if set: motion or presence in the room within this
	// long, or a presence radar saying someone is there now.
	PresenceWithin time.Duration
	// DoorClosed: the resident's own door reports closed.
	DoorClosed bool
	// NoAlarmOpen: no care alarm of the resident is open.
	NoAlarmOpen bool
}

// Roles returns the sensor roles the criteria need.
func (c Criteria) Roles() []Role {
	var out []Role
	if c.InBed {
		out = append(out, RoleBed)
	}
	if c.PresenceWithin > 0 {
		out = append(out, RolePresence)
	}
	if c.DoorClosed {
		out = append(out, RoleDoor)
	}
	return out
}

// Sensor is one sensor's state as the hub knows it at the look-in.
type Sensor struct {
	Device string `json:"device"`
	Role   Role   `json:"role"`
	// Heard is false when nothing was heard from it since the hub started.
	Heard    bool      `json:"heard"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Period is its supervision period; 0 means unsupervised.
	Period time.Duration `json:"period"`
	// Silent is true when its supervision alarm has fired, or its gateway
	// or the link it is heard through is down.
	Silent bool `json:"silent,omitempty"`
	// State is the last state it reported: occupied, empty, open, closed,
	// motion; "" if none since the hub started.
	State string `json:"state,omitempty"`
}

// Snapshot is what the hub knows of one resident at At.
type Snapshot struct {
	At      time.Time
	Consent bool
	Sensors []Sensor
	// BedEmpty: the last bed report was empty (a bed exit is pending or
	// has fired). InBedSince is when the resident was last seen getting
	// into bed (zero if not seen since the hub started).
	BedEmpty   bool
	InBedSince time.Time
	// LastMotion is the last motion or presence in the resident's room.
	LastMotion time.Time
	// OpenAlarms are the resident's open care alarms ("A000012 bed_exit").
	OpenAlarms []string
}

// Evidence is what one sensor said, for the supervision record.
type Evidence struct {
	Device   string    `json:"device"`
	Role     Role      `json:"role"`
	Said     string    `json:"said"` // occupied, empty, open, closed, motion, "" (nothing)
	LastSeen time.Time `json:"last_seen,omitzero"`
	Usable   bool      `json:"usable"`
	Why      string    `json:"why,omitempty"` // why not usable
}

// Result is one evaluation of a look-in.
type Result struct {
	Outcome  Outcome    `json:"outcome"`
	Cause    Cause      `json:"cause,omitempty"`
	Reasons  []string   `json:"reasons,omitempty"` // Swedish / English, what was not right or not known
	Evidence []Evidence `json:"evidence"`
}

// Limits bound how fresh a sensor's evidence must be.
type Limits struct {
	// HeardWithin: a sensor not heard within this long is silent for the
	// look-in. 0 means its own supervision period.
	HeardWithin time.Duration
}

// Evaluate judges a look-in at s.At. It is deterministic: the same
// criteria and snapshot always give the same result.
func Evaluate(c Criteria, l Limits, s Snapshot) Result {
	r, _ := evaluate(c, l, s, make([]Evidence, 0, len(s.Sensors)))
	return r
}

// evaluate is Evaluate with the evidence appended to buf (returned, grown
// if it had to be): r.Evidence is the part it appended, capped, so later
// appends to buf never touch it. Why: the hub judges a chunk of look-ins
// into one array instead of one per look-in.
func evaluate(c Criteria, l Limits, s Snapshot, buf []Evidence) (Result, []Evidence) {
	var r Result
	if !s.Consent {
		r.Outcome, r.Cause = CannotTell, CauseNoConsent
		r.Reasons = append(r.Reasons, "samtycke saknas / no recorded consent")
		return r, buf
	}
	var (
		wrong   []string
		unknown []string
		cause   Cause
	)
	noteUnknown := func(c Cause, why string) {
		if cause == CauseNone {
			cause = c
		}
		unknown = append(unknown, why)
	}
	// usable sensors by role (bed, presence, door) are counted here and
	// found again by their evidence (one per sensor, in order): no slice
	// per role, as a region's night makes 30,000 of these at once.
	var nUsable [3]int
	ri := func(r Role) int {
		switch r {
		case RoleBed:
			return 0
		case RolePresence:
			return 1
		}
		return 2
	}
	start := len(buf)
	for _, sn := range s.Sensors {
		ev := Evidence{Device: sn.Device, Role: sn.Role, Said: sn.State, LastSeen: sn.LastSeen}
		limit := sn.Period
		if l.HeardWithin > 0 && (limit <= 0 || l.HeardWithin < limit) {
			limit = l.HeardWithin
		}
		switch {
		case !sn.Heard:
			ev.Why = string(CauseNotFitted)
		case sn.Period <= 0:
			ev.Why = string(CauseUnsupervised)
		case sn.Silent || s.At.Sub(sn.LastSeen) > limit:
			ev.Why = string(CauseSilent)
		case sn.State == "":
			ev.Why = string(CauseNoState)
		default:
			ev.Usable = true
			nUsable[ri(sn.Role)]++
		}
		buf = append(buf, ev)
	}
	r.Evidence = buf[start:len(buf):len(buf)]
	if r.Evidence == nil {
		r.Evidence = []Evidence{} // encoded [] (no sensors), not null
	}
	// usable reports whether sensor i is usable and of role's kind.
	usable := func(i int, role Role) bool {
		return r.Evidence[i].Usable && ri(s.Sensors[i].Role) == ri(role)
	}
	// A role without a usable sensor cannot be judged; its cause is the
	// first unusable sensor's, or not_fitted if it has none.
	judge := func(role Role) bool {
		if nUsable[ri(role)] > 0 {
			return true
		}
		why := CauseNotFitted
		for _, ev := range r.Evidence {
			if ev.Role == role {
				why = Cause(ev.Why)
				break
			}
		}
		noteUnknown(why, fmt.Sprintf("%s: %s", roleSV[role], causeWords[why]))
		return false
	}
	if c.InBed && judge(RoleBed) {
		occupied := false
		for i, sn := range s.Sensors {
			if !usable(i, RoleBed) {
				continue
			}
			if sn.State == "occupied" {
				occupied = true
			}
		}
		switch {
		case !occupied || s.BedEmpty:
			wrong = append(wrong, "inte i sängen / not in bed")
		case c.InBedFor > 0 && (s.InBedSince.IsZero() || s.At.Sub(s.InBedSince) < c.InBedFor):
			if s.InBedSince.IsZero() {
				// Occupied, but when it began is not known (the hub
				// started since): count from the sensor's report.
				break
			}
			wrong = append(wrong, fmt.Sprintf("i sängen bara %s, kräver %s / in bed only %s, needs %s",
				short(s.At.Sub(s.InBedSince)), short(c.InBedFor), short(s.At.Sub(s.InBedSince)), short(c.InBedFor)))
		}
	}
	if c.PresenceWithin > 0 && judge(RolePresence) {
		present := !s.LastMotion.IsZero() && s.At.Sub(s.LastMotion) <= c.PresenceWithin && !s.LastMotion.After(s.At)
		for i, sn := range s.Sensors {
			if !usable(i, RolePresence) {
				continue
			}
			if sn.State == "occupied" {
				present = true
			}
		}
		if !present {
			wrong = append(wrong, fmt.Sprintf("ingen rörelse på %s / no movement for %s", short(c.PresenceWithin), short(c.PresenceWithin)))
		}
	}
	if c.DoorClosed && judge(RoleDoor) {
		for i, sn := range s.Sensors {
			if !usable(i, RoleDoor) {
				continue
			}
			if sn.State == "open" {
				wrong = append(wrong, "dörren öppen / door open")
				break
			}
			if sn.State != "closed" {
				noteUnknown(CauseNoState, "dörr: okänt läge / door: state unknown")
				break
			}
		}
	}
	if c.NoAlarmOpen && len(s.OpenAlarms) > 0 {
		wrong = append(wrong, "öppet larm / alarm open: "+strings.Join(s.OpenAlarms, ", "))
	}
	switch {
	case len(wrong) > 0:
		r.Outcome = NotAllRight
		r.Reasons = append(wrong, unknown...)
	case len(unknown) > 0:
		r.Outcome, r.Cause, r.Reasons = CannotTell, cause, unknown
	default:
		r.Outcome = AllRight
	}
	return r, buf
}

var roleSV = map[Role]string{RoleBed: "säng / bed", RolePresence: "rörelse / presence", RoleDoor: "dörr / door"}

var causeWords = map[Cause]string{
	CauseSilent:       "tyst givare / silent sensor",
	CauseNoConsent:    "samtycke saknas / no consent",
	CauseNotFitted:    "ingen givare monterad eller aldrig hörd / sensor not fitted or never heard",
	CauseUnsupervised: "givaren övervakas inte / sensor not supervised",
	CauseNoState:      "givaren har inte rapporterat läge / sensor reported no state",
	CauseLate:         "larmservern var inte igång / hub was not running",
}

// CauseWords returns a cause in Swedish / English.
func CauseWords(c Cause) string { return causeWords[c] }

func short(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
