package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/store"
)

// rebuiltNote marks an alarm rebuilt from later journal records because
// the record that raised it was lost (a damaged line).
const rebuiltNote = "larmets första journalrad förlorad, larmet återskapat / raise record lost, alarm rebuilt from later journal records"

// needsSubject reports whether t carries its alarm's subject in the
// journal (commitRaiseLocked sets it): so that the replay can rebuild the
// alarm if the raise record is lost, every action but the raise (which
// carries the whole alarm) names the alarm's subject.
func needsSubject(t alarm.Transition) bool { return t.Action != alarm.ActRaise }

// Rebuilder replays journal transitions into the alarms they make, one at
// a time as the journal reads them (store.OpenEach), so a hub with a
// quarter of a million open alarms never holds its whole journal decoded
// at once. Hand it to New in Options.Rebuilt.
//
// A damaged journal line costs one transition, not an alarm: a transition
// whose alarm is unknown (its raise record was lost) rebuilds the alarm
// from the subject it carries, and a staff step whose predecessor was lost
// (presence or resolve without the accept) is applied as if accepted by
// the same person.
type Rebuilder struct {
	log     *slog.Logger
	alarms  map[string]*alarm.Alarm
	seen    *dedup
	nextID  uint64
	rebuilt []string // alarms rebuilt without their raise record
	n       int
}

// NewRebuilder returns an empty Rebuilder logging to log (nil: discard).
func NewRebuilder(log *slog.Logger) *Rebuilder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Rebuilder{log: log, alarms: map[string]*alarm.Alarm{}, seen: newDedup(dedupSize)}
}

func (r *Rebuilder) noteID(id string) {
	var n uint64
	if _, err := fmt.Sscanf(id, "A%d", &n); err == nil && n > r.nextID {
		r.nextID = n
	}
}

// Add applies one journaled transition.
func (r *Rebuilder) Add(t alarm.Transition) {
	r.n++
	if t.Action == alarm.ActRaise {
		if t.Raise == nil {
			r.log.Error("hub: journal raise without alarm, skipped", "alarm", t.Alarm, "seq", t.Seq)
			return
		}
		if _, dup := r.alarms[t.Raise.ID]; dup {
			r.log.Error("hub: journal raise for an alarm already known, skipped", "alarm", t.Alarm, "seq", t.Seq)
			return
		}
		a := t.Raise
		a.SetHistory(nil)
		a.Own()
		a.AddHistory(t)
		r.alarms[a.ID] = a
		r.noteID(a.ID)
	} else {
		a, ok := r.alarms[t.Alarm]
		if !ok {
			if t.Subj == nil {
				// Written before transitions carried a subject.
				r.log.Error("hub: journal transition for unknown alarm, skipped", "alarm", t.Alarm, "seq", t.Seq)
				return
			}
			a = alarm.FromSubject(t.Alarm, t.Subj)
			a.Own()
			r.alarms[a.ID] = a
			r.noteID(a.ID)
			r.rebuilt = append(r.rebuilt, a.ID)
			r.log.Error("hub: alarm rebuilt without its raise record", "alarm", a.ID, "seq", t.Seq, "rule", a.Rule)
		}
		if err := applyReplayed(a, t); err != nil {
			r.log.Error("hub: journal transition does not apply, skipped", "alarm", t.Alarm, "seq", t.Seq, "err", err)
			return
		}
	}
	if t.EventID != "" {
		r.seen.add(t.EventID)
	}
}

// rebuild takes the Rebuilder's alarms (from o.Rebuilt, or made here from
// o.Replay) into the hub. It returns the ids of the alarms rebuilt without
// their raise.
func (h *Hub) rebuild(o Options) []string {
	r := o.Rebuilt
	if r == nil {
		r = NewRebuilder(h.log)
		for _, t := range o.Replay {
			r.Add(t)
		}
	}
	h.alarms, h.seen, h.nextID = r.alarms, r.seen, r.nextID
	rebuilt := r.rebuilt
	for _, id := range rebuilt {
		a := h.alarms[id]
		a.Note = strings.TrimPrefix(a.Note+"; "+rebuiltNote, "; ")
	}
	h.rebuildGroups()
	for id, a := range h.alarms {
		if a.Open() {
			h.openByKey[alarmKey(a)] = id
			if a.Rule == rules.RuleGatewayOffline && a.RestoredAt() == nil {
				h.engine.MarkOffline(a.Site, a.Gateway)
			}
		}
	}
	h.log.Info("hub: state rebuilt from journal", "transitions", r.n, "alarms", len(h.alarms), "open", len(h.openByKey), "rebuilt", len(rebuilt))
	return rebuilt
}

// applyReplayed applies a journaled transition. A presence or resolve
// whose accept record was lost would otherwise be refused and leave a
// handled alarm open: the accept is inferred from the same staff member.
func applyReplayed(a *alarm.Alarm, t alarm.Transition) error {
	err := alarm.Apply(a, t)
	if !errors.Is(err, alarm.ErrNotAccepted) {
		return err
	}
	acc := alarm.Transition{Seq: t.Seq, Alarm: t.Alarm, Action: alarm.ActAccept, At: t.At, By: t.By,
		Note: "accept record lost; inferred / accept-rad förlorad, härledd"}
	if err := alarm.Apply(a, acc); err != nil {
		return err
	}
	return alarm.Apply(a, t)
}

// raiseJournalLoss raises a hub_integrity alarm when the journal lost
// anything that no earlier start had found: staff and technicians must
// learn that alarm history is incomplete, and which alarms were rebuilt.
// It names lines, offsets, sequence numbers and alarm ids only.
func (h *Hub) raiseJournalLoss(loss store.Loss, rebuilt []string) {
	if !loss.New {
		return
	}
	note := "alarm journal damaged: " + loss.String()
	if len(rebuilt) > 0 {
		ids := rebuilt
		if len(ids) > 10 {
			ids = append(ids[:10:10], "…")
		}
		note += fmt.Sprintf("; %d alarm(s) rebuilt without their raise record: %s", len(rebuilt), strings.Join(ids, ", "))
	}
	h.log.Error("hub: alarm journal lost records", "corrupt", loss.Corrupt, "torn", loss.Torn, "rebuilt", len(rebuilt))
	h.apply(rules.Action{Kind: rules.Raise, Rule: rules.RuleHubIntegrity, Key: rules.RuleHubIntegrity,
		Alarm: alarm.KindTechnical, Priority: 2, Site: "hub", Note: note}, h.now())
}

// dedupSize is how many recent event ids the hub remembers (hub.New's
// table has the same size).
const dedupSize = 1 << 16
