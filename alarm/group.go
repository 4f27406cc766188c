package alarm

import "time"

// Group is what a group alarm carries: a technical alarm standing for many
// technical alarms that share the route's group_by labels (a gateway's
// devices going silent together, a region's mobile network down). Care
// alarms are never members. Members stay ordinary alarms, journaled and
// readable one by one; they carry the group's id in GroupID and are not
// shown as cards of their own.
type Group struct {
	Key     string            `json:"key"`          // route path and label values: one open group per key
	By      map[string]string `json:"by,omitempty"` // the group_by labels and their values
	Count   int               `json:"count"`        // members raised into the group (open or restored)
	Members []Member          `json:"members"`      // the first MaxGroupMembers, in raise order
}

// Member is one member alarm as a group lists it.
type Member struct {
	Alarm    string     `json:"alarm"`
	Rule     string     `json:"rule"`
	Device   string     `json:"device,omitempty"`
	Gateway  string     `json:"gateway,omitempty"`
	Since    time.Time  `json:"since"`
	Restored *time.Time `json:"restored_at,omitempty"`
}

// MaxGroupMembers bounds the members a group alarm lists on the stream
// and in the list; the rest are counted and fetched on request.
const MaxGroupMembers = 50

// RuleGroup is the rule name of group alarms.
const RuleGroup = "group"

// Clone copies g deeply enough for readers outside the owner's lock.
func (g *Group) Clone() *Group {
	if g == nil {
		return nil
	}
	c := *g
	c.Members = append([]Member(nil), g.Members...)
	return &c
}
