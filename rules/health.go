package rules

import (
	"cmp"
	"slices"
	"time"
)

// DeviceHealth is what a technician needs to know about one device.
type DeviceHealth struct {
	Site       string    `json:"site"`
	Gateway    string    `json:"gateway"`
	Device     string    `json:"device"`
	Type       string    `json:"type"`
	DTY        string    `json:"dty"`
	Unit       string    `json:"unit,omitempty"`
	Room       string    `json:"room,omitempty"`
	Resident   string    `json:"resident,omitempty"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	NeverHeard bool      `json:"never_heard"` // configured but silent since the hub started: not paired?
	Silent     bool      `json:"silent"`      // its supervision alarm has fired
	Supervised string    `json:"supervised,omitempty"`
	Battery    int       `json:"battery"` // percent; -1 unknown
	LowBattery bool      `json:"low_battery"`
	Tamper     bool      `json:"tamper"`
	State      string    `json:"state,omitempty"`
	Status     string    `json:"status"` // silent, never_heard, low_battery, tamper, ok
}

// GatewayHealth is one gateway's liveness as the rules see it.
type GatewayHealth struct {
	Site     string    `json:"site"`
	Gateway  string    `json:"gateway"`
	Online   bool      `json:"online"`
	LastBeat time.Time `json:"last_beat,omitzero"`
}

var statusRank = map[string]int{"silent": 0, "never_heard": 1, "low_battery": 2, "tamper": 3, "ok": 4}

// Health lists every registered device, the ones needing a technician
// first: silent, never heard, low battery, tampered, then the rest.
func (e *Engine) Health() ([]DeviceHealth, []GatewayHealth) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []DeviceHealth
	for _, ss := range e.sites {
		for _, ds := range ss.devs {
			d := ds.dev
			h := DeviceHealth{Site: d.Site, Gateway: d.Gateway, Device: d.ID, Type: d.Type.Name(), DTY: string(d.Type),
				Unit: d.Unit, Room: d.Room, Resident: d.Resident, NeverHeard: !ds.heard, Silent: ds.silentRaised,
				Battery: ds.battery, LowBattery: ds.lowBattery, Tamper: ds.tamper, State: string(ds.state)}
			if ds.heard {
				h.LastSeen = ds.lastSeen
			}
			if max, ok := ss.cfg.period(d); ok && max > 0 {
				h.Supervised = max.String()
			}
			switch {
			case h.Silent:
				h.Status = "silent"
			case h.NeverHeard:
				h.Status = "never_heard"
			case h.LowBattery:
				h.Status = "low_battery"
			case h.Tamper:
				h.Status = "tamper"
			default:
				h.Status = "ok"
			}
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b DeviceHealth) int {
		return cmp.Or(cmp.Compare(statusRank[a.Status], statusRank[b.Status]),
			cmp.Compare(a.Site, b.Site), cmp.Compare(a.Gateway, b.Gateway), cmp.Compare(a.Device, b.Device))
	})
	var gws []GatewayHealth
	for _, l := range e.live {
		if l.gw == nil {
			continue
		}
		gws = append(gws, GatewayHealth{Site: l.gw.Site, Gateway: l.gw.ID, Online: !l.offline, LastBeat: l.lastBeat})
	}
	slices.SortFunc(gws, func(a, b GatewayHealth) int {
		return cmp.Or(cmp.Compare(boolRank(a.Online), boolRank(b.Online)), cmp.Compare(a.Site, b.Site), cmp.Compare(a.Gateway, b.Gateway))
	})
	return out, gws
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
