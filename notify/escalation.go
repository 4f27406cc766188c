package notify

import (
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// Track is the escalation state of one alarm on one plan. It is a pure
// state machine: Next says what is due at a time and when to look again;
// the dispatcher performs the step and calls Advance. Accept, presence and
// resolve stop it.
//
//	alerted(tier n) ──no receipt within delivery_timeout──▶ escalate(tier n+1)
//	       │        ──not accepted within accept_timeout──▶ escalate(tier n+1)
//	       │        ──remind_every────────────────────────▶ reminder (same tier)
//	       └──accept / presence / resolve─────────────────▶ stopped
type Track struct {
	Alarm     string
	Plan      *Plan     // read-only, shared with other tracks on the same plan (internPlan)
	Tier      int       // current tier (index into Plan.Tiers)
	Since     time.Time // when the current tier was alerted
	LastAlert time.Time // last notify, escalate or reminder
	Delivered bool      // a receipt arrived from the current tier
	Stopped   bool
	// Force, when set, moves the track to the next tier at once with this
	// reason: an alarm receiving centre did not take the alarm (scaip.go).
	Force string

	snap snapshot // labels for messages (dispatcher, snapshot.go)
	next *Track   // the alarm's next track, if it is on several plans (dispatcher's tracks)
	// retry is a step the hub could not journal (ErrNotKept): due again
	// before anything else, and cleared by Advance once it is done.
	retry *Step
}

// Step is what a Track wants done.
type Step struct {
	Action   alarm.Action // ActEscalate or ActReminder
	Tier     int
	Receiver *Receiver // for ActEscalate: the new tier
	Reason   string

	recorded bool // the hub journaled it already (OnRaise): only alert
}

// NewTrack starts a track with tier 0 alerted at now.
func NewTrack(id string, p Plan, now time.Time) *Track {
	return &Track{Alarm: id, Plan: internPlan(p), Since: now, LastAlert: now}
}

// Next returns the step due at now (ok false if none) and the next time
// anything can become due (zero if never).
func (tr *Track) Next(now time.Time) (step Step, ok bool, wake time.Time) {
	if tr.Stopped {
		return Step{}, false, time.Time{}
	}
	if tr.retry != nil {
		return *tr.retry, true, time.Time{}
	}
	var esc time.Time
	var reason string
	if tr.Tier+1 < len(tr.Plan.Tiers) && tr.Force != "" {
		return Step{Action: alarm.ActEscalate, Tier: tr.Tier + 1, Receiver: tr.Plan.Tiers[tr.Tier+1], Reason: tr.Force}, true, time.Time{}
	}
	// A centre's tier leaves only by the hand-over's outcome (snu 0 keeps
	// it there, RE moves on through Force), never by the staff timers: a
	// centre may hold an alarm (snu 4) for minutes before it answers.
	if tr.Tier+1 < len(tr.Plan.Tiers) && tr.Plan.Tiers[tr.Tier].SCAIP == nil {
		if d := tr.Plan.DeliveryTimeout; d > 0 && !tr.Delivered {
			esc, reason = tr.Since.Add(d), "no delivery receipt within "+d.String()
		}
		if d := tr.Plan.AcceptTimeout; d > 0 {
			if t := tr.Since.Add(d); esc.IsZero() || t.Before(esc) {
				esc, reason = t, "not accepted within "+d.String()
			}
		}
		if !esc.IsZero() && !now.Before(esc) {
			return Step{Action: alarm.ActEscalate, Tier: tr.Tier + 1, Receiver: tr.Plan.Tiers[tr.Tier+1], Reason: reason}, true, time.Time{}
		}
	}
	var remind time.Time
	if d := tr.Plan.RemindEvery; d > 0 && tr.remindsStaff() {
		remind = tr.LastAlert.Add(d)
		if !now.Before(remind) {
			return Step{Action: alarm.ActReminder, Tier: tr.Tier, Reason: "not accepted yet"}, true, time.Time{}
		}
	}
	wake = esc
	if wake.IsZero() || (!remind.IsZero() && remind.Before(wake)) {
		wake = remind
	}
	return Step{}, false, wake
}

// remindsStaff reports whether a reminder would reach anyone: tiers so
// far that are only centres (scaip) are not reminded, the hand-over
// speaks to them.
func (tr *Track) remindsStaff() bool {
	for _, r := range tr.Plan.Tiers[:min(tr.Tier+1, len(tr.Plan.Tiers))] {
		if r.SCAIP == nil {
			return true
		}
	}
	return false
}

// Advance records that step was done at now.
func (tr *Track) Advance(s Step, now time.Time) {
	tr.retry = nil
	switch s.Action {
	case alarm.ActEscalate:
		tr.Tier = s.Tier
		tr.Since = now
		tr.Delivered = false
		tr.Force = ""
	}
	tr.LastAlert = now
}

// Receipt marks a delivery from user (or webhook receiver name) if it is
// in the current tier.
func (tr *Track) Receipt(user string) {
	if tr.Tier >= len(tr.Plan.Tiers) {
		return
	}
	r := tr.Plan.Tiers[tr.Tier]
	if r.Webhook != nil && user == "webhook:"+r.Name {
		tr.Delivered = true
	}
	if r.SCAIP != nil && user == "scaip:"+r.Name {
		tr.Delivered = true
	}
	for _, u := range r.Users {
		if u == user {
			tr.Delivered = true
		}
	}
}

// Schedule describes a plan as an operator reads it: who is alerted at
// each tier and the latest time after the first alert it happens if
// nobody accepts (vaka routes test).
type Schedule struct {
	Tier     int           `json:"tier"`
	After    time.Duration `json:"after"`
	Receiver string        `json:"receiver"`
	Users    []string      `json:"users,omitempty"`
	Webhook  string        `json:"webhook,omitempty"`
	SCAIP    string        `json:"scaip,omitempty"` // an alarm receiving centre's SIP URI
	Reason   string        `json:"reason,omitempty"`
}

// Schedule lists each tier of p with when it is reached when nobody
// accepts (the delivery timeout can bring it sooner).
func (p Plan) Schedule() []Schedule {
	var out []Schedule
	var at time.Duration
	centre := false // the previous tier was an alarm receiving centre
	for i, r := range p.Tiers {
		s := Schedule{Tier: i, After: at, Receiver: r.Name, Users: r.Users}
		if r.Webhook != nil {
			s.Webhook = r.Webhook.URL
		}
		if r.SCAIP != nil {
			s.SCAIP = r.SCAIP.To
		}
		if i > 0 {
			s.Reason = "not accepted"
			if p.AcceptTimeout == 0 {
				s.Reason = "no delivery receipt"
			}
			if centre {
				s.Reason = "the alarm centre did not take it (no snu 0, RE sent)"
			}
		}
		out = append(out, s)
		step := p.AcceptTimeout
		if step == 0 {
			step = p.DeliveryTimeout
		}
		centre = r.SCAIP != nil
		if centre {
			step = r.SCAIP.deadline() // at the latest; sooner on snu 5
		}
		if step == 0 {
			break
		}
		at += step
	}
	return out
}
