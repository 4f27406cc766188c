package alarm

import (
	"encoding/json"
	"time"

	"github.com/vaka-care/vaka/event"
)

// Wire is an alarm's JSON form: every field, in the order and with the
// names and omissions Alarm had when all were fields, so journals,
// frames and API answers are byte for byte what they were (the journal's
// and the stream's hand encoders are tested against json.Marshal of it).
// A type that embeds an Alarm and adds fields (httpapi's view) embeds a
// Wire for its JSON instead.
type Wire struct {
	ID             string             `json:"id"`
	Kind           Kind               `json:"kind"`
	Rule           string             `json:"rule"`
	Priority       Priority           `json:"priority"`
	Site           string             `json:"site"`
	Gateway        string             `json:"gateway,omitempty"`
	Device         string             `json:"device,omitempty"`
	DeviceType     event.DeviceType   `json:"dty,omitempty"`
	Status         event.StatusCode   `json:"stc,omitempty"`
	Location       event.LocationCode `json:"lco,omitempty"`
	Unit           string             `json:"unit,omitempty"`
	Room           string             `json:"room,omitempty"`
	Resident       string             `json:"resident,omitempty"`
	ResidentName   string             `json:"resident_name,omitempty"`
	EventID        string             `json:"event_id,omitempty"`
	SourceTime     time.Time          `json:"source_time"`
	RaisedAt       time.Time          `json:"raised_at"`
	State          State              `json:"state"`
	AcceptedBy     string             `json:"accepted_by,omitempty"`
	AcceptedAt     *time.Time         `json:"accepted_at,omitempty"`
	PresenceAt     *time.Time         `json:"presence_at,omitempty"`
	ResolvedBy     string             `json:"resolved_by,omitempty"`
	ResolvedAt     *time.Time         `json:"resolved_at,omitempty"`
	Outcome        Outcome            `json:"outcome,omitempty"`
	Note           string             `json:"note,omitempty"`
	Repeats        int                `json:"repeats"`
	LastRepeatAt   *time.Time         `json:"last_repeat_at,omitempty"`
	RestoredAt     *time.Time         `json:"restored_at,omitempty"`
	Position       *event.Position    `json:"pos,omitempty"`
	Track          []event.Position   `json:"track,omitempty"`
	Tier           int                `json:"tier,omitempty"`
	Deliveries     []Delivery         `json:"deliveries,omitempty"`
	Reminders      int                `json:"reminders,omitempty"`
	UpdatedAt      time.Time          `json:"updated_at"`
	History        []Transition       `json:"history,omitempty"`
	CallerID       string             `json:"crd,omitempty"`
	Callback       string             `json:"cha,omitempty"`
	Group          *Group             `json:"group,omitempty"`
	GroupID        string             `json:"group_id,omitempty"`
	HistoryOmitted int                `json:"history_omitted,omitempty"`
}

// Wire returns a's JSON form. As before the fields moved, an owned
// alarm's compact history is not in it (its Clone's History is).
func (a *Alarm) Wire() *Wire {
	if a == nil {
		return nil
	}
	w := &Wire{ID: a.ID, Kind: a.Kind, Rule: a.Rule, Priority: a.Priority, Site: a.Site, Gateway: a.Gateway,
		Device: a.Device, DeviceType: a.DeviceType, Status: a.Status, Location: a.Location, Unit: a.Unit,
		Room: a.Room, Resident: a.Resident, EventID: a.EventID, SourceTime: a.SourceTime, RaisedAt: a.RaisedAt,
		State: a.State, Note: a.Note, Deliveries: a.Deliveries, UpdatedAt: a.UpdatedAt}
	if x := a.x; x != nil {
		w.ResidentName, w.PresenceAt, w.ResolvedBy, w.ResolvedAt = x.residentName, x.presenceAt, x.resolvedBy, x.resolvedAt
		w.Outcome, w.LastRepeatAt, w.RestoredAt, w.Position, w.Track = x.outcome, x.lastRepeatAt, x.restoredAt, x.position, x.track
		w.Reminders, w.CallerID, w.Callback, w.Group, w.GroupID = x.reminders, x.callerID, x.callback, x.group, x.groupID
		w.HistoryOmitted = x.omitted
		w.AcceptedBy, w.AcceptedAt, w.Repeats, w.Tier, w.History = x.acceptedBy, x.acceptedAt, x.repeats, x.tier, x.history
	}
	return w
}

// Alarm returns the plain alarm w stands for.
func (w *Wire) Alarm() *Alarm {
	a := &Alarm{ID: w.ID, Kind: w.Kind, Rule: w.Rule, Priority: w.Priority, Site: w.Site, Gateway: w.Gateway,
		Device: w.Device, DeviceType: w.DeviceType, Status: w.Status, Location: w.Location, Unit: w.Unit,
		Room: w.Room, Resident: w.Resident, EventID: w.EventID, SourceTime: w.SourceTime, RaisedAt: w.RaisedAt,
		State: w.State, Note: w.Note, Deliveries: w.Deliveries, UpdatedAt: w.UpdatedAt}
	x := extra{residentName: w.ResidentName, presenceAt: w.PresenceAt, resolvedBy: w.ResolvedBy, resolvedAt: w.ResolvedAt,
		outcome: w.Outcome, lastRepeatAt: w.LastRepeatAt, restoredAt: w.RestoredAt, position: w.Position, track: w.Track,
		reminders: w.Reminders, callerID: w.CallerID, callback: w.Callback, group: w.Group, groupID: w.GroupID,
		omitted: w.HistoryOmitted, acceptedBy: w.AcceptedBy, acceptedAt: w.AcceptedAt, repeats: w.Repeats, tier: w.Tier,
		history: w.History}
	if !x.zero() {
		a.x = &x
	}
	return a
}

// MarshalJSON writes a's JSON form (Wire).
func (a Alarm) MarshalJSON() ([]byte, error) { return json.Marshal(a.Wire()) }

// UnmarshalJSON reads a's JSON form (Wire) into a, as encoding/json
// would into the fields: those the JSON does not name are kept.
func (a *Alarm) UnmarshalJSON(b []byte) error {
	w := a.Wire()
	if err := json.Unmarshal(b, w); err != nil {
		return err
	}
	*a = *w.Alarm()
	return nil
}
