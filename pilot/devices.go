package pilot

import (
	"slices"
	"strings"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// RuleDeviceSilent is the supervision rule whose alarms are device
// outages (rules.RuleDeviceSilent; named here to keep this package pure).
const RuleDeviceSilent = "device_silent"

// Outage is one spell in which a supervised device was found silent or
// offline: from its last sign of life, through the offline alarm (the
// detection), to the moment it was heard again. ID is the alarm's id;
// Device is a keyed pseudonym.
type Outage struct {
	ID     string `json:"outage"`
	Trial  string `json:"trial,omitempty"`
	Arm    string `json:"arm,omitempty"`
	Site   string `json:"site"`
	Unit   string `json:"unit,omitempty"`
	Device string `json:"device,omitempty"`
	Source Source `json:"source"` // what the device is (button, bed, door…)
	// SilentFrom is the last sign of life before detection; zero when
	// unknown (the hub restarted in between).
	SilentFrom time.Time `json:"silent_from"`
	DetectedAt time.Time `json:"detected_at"` // the offline alarm was raised
	// RestoredAt is when the device was heard again; zero: still down as
	// far as this record knows.
	RestoredAt time.Time `json:"restored_at"`
}

// Detect is the seconds from the last sign of life to the offline alarm,
// or Missing when the last sign of life is unknown.
func (o Outage) Detect() float64 { return secs(o.SilentFrom, o.DetectedAt) }

// down is the outage's span [start, end) clipped to [from, to); an open
// outage lasts until `until`.
func (o Outage) down(from, to, until time.Time) time.Duration {
	start := o.SilentFrom
	if start.IsZero() {
		start = o.DetectedAt
	}
	end := o.RestoredAt
	if end.IsZero() || end.After(until) {
		end = until
	}
	start, end = later(start, from), earlier(end, to)
	if !end.After(start) {
		return 0
	}
	return end.Sub(start)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Latest keeps, per outage id, the record that knows most (restored
// beats open; among equals the later in the list), in a stable order.
// Stores append a second record when an outage ends.
func Latest(os []Outage) []Outage {
	idx := map[string]int{}
	var out []Outage
	for _, o := range os {
		i, ok := idx[o.ID]
		if !ok {
			idx[o.ID] = len(out)
			out = append(out, o)
			continue
		}
		cur := out[i]
		if o.RestoredAt.IsZero() && !cur.RestoredAt.IsZero() {
			o, cur = cur, o // keep the restored one
		}
		if o.SilentFrom.IsZero() {
			o.SilentFrom = cur.SilentFrom
		}
		out[i] = o
	}
	slices.SortStableFunc(out, func(a, b Outage) int {
		if c := a.DetectedAt.Compare(b.DetectedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// OutageOf builds the outage record of a device_silent alarm's step: at
// the raise (RestoredAt zero) and again at the restore. silentFrom is the
// device's last sign of life the caller saw (zero if unknown).
func (m *Model) OutageOf(s Step, silentFrom time.Time) Outage {
	trial, arm := m.Config.Assign(s.Site, s.Unit, s.Resident, s.RaisedAt, m.Loc)
	if !silentFrom.IsZero() && silentFrom.After(s.RaisedAt) {
		silentFrom = time.Time{}
	}
	return Outage{ID: s.Alarm, Trial: trial, Arm: arm, Site: s.Site, Unit: s.Unit, Device: m.Pseud.ID(s.Site, s.Device),
		Source: SourceOf(s.DeviceType, ""), SilentFrom: silentFrom, DetectedAt: s.RaisedAt, RestoredAt: s.RestoredAt}
}

// IsOutage reports whether a step belongs to a device outage alarm.
func (s Step) IsOutage() bool { return s.Rule == RuleDeviceSilent && s.Kind == alarm.KindTechnical }

// Participation is one resident's part in a trial, from the consent
// registry in the trial config: when they started (consent recorded) and,
// if they stopped, when and why. Resident is a keyed pseudonym when built
// with a Pseudonymizer.
type Participation struct {
	Trial    string    `json:"trial"`
	Arm      string    `json:"arm,omitempty"`
	Site     string    `json:"site"`
	Resident string    `json:"resident"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"` // zero: continues
	Reason   string    `json:"reason,omitempty"`
}

// Participation lists the trial's participants from its consent records
// (dates at midnight in loc). With ps nil, residents keep their
// configured ids (measures need only distinct ids).
func (t *Trial) Participation(loc *time.Location, ps *Pseudonymizer) []Participation {
	if loc == nil {
		loc = time.UTC
	}
	var out []Participation
	for _, c := range t.Consent {
		site, res, _ := strings.Cut(c.Resident, "/")
		arm := c.Arm
		if arm == "" {
			arm, _ = t.ArmOf(site, "", res)
		}
		p := Participation{Trial: t.ID, Arm: arm, Site: site, Resident: c.Resident, Reason: c.WithdrawnReason}
		if ps != nil {
			p.Resident = ps.ID(site, res)
		}
		p.Started, _ = time.ParseInLocation(time.DateOnly, c.RecordedAt, loc)
		if c.WithdrawnAt != "" {
			p.Ended, _ = time.ParseInLocation(time.DateOnly, c.WithdrawnAt, loc)
		}
		out = append(out, p)
	}
	return out
}

// Data is what a report is computed from, whichever store it came from.
type Data struct {
	Alarms       []Record
	Outages      []Outage
	Participants []Participation
	// LookIns and Visits are digital night supervision (tillsyn.go).
	LookIns []LookIn
	Visits  []Visit
	// Until is how far the data reaches (now, for a running trial): an
	// outage not yet restored counts as down until then. Zero: the end
	// of the period.
	Until time.Time
}

// Participation lists every trial's participants, residents pseudonymised
// (for export).
func (m *Model) Participation() []Participation {
	var out []Participation
	for i := range m.Config.Trials {
		out = append(out, m.Config.Trials[i].Participation(m.Loc, m.Pseud)...)
	}
	return out
}
