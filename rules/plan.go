package rules

import (
	"sort"
	"time"
)

// Rule names, stable: they appear in alarms, metrics, plans and pilot
// reports.
const (
	RuleCallButton     = "call_button"
	RuleFall           = "fall"
	RuleDoorAtNight    = "door_at_night"      // the unit's exit door at night
	RuleRoomDoor       = "room_door_at_night" // the resident's own door at night, bed empty
	RuleDoorOpenLong   = "door_open_too_long" // SCAIP 0077
	RuleBedExit        = "bed_exit"           // out of bed at night, no return within hold
	RuleGeofenceExit   = "geofence_exit"
	RuleInactivity     = "inactivity"
	RuleDeviceSilent   = "device_silent" // supervision: no radio test / heartbeat (0123, 0073)
	RuleBatteryLow     = "battery_low"   // 0016
	RuleTamper         = "tamper"
	RuleGatewayOffline = "gateway_offline"
	RuleGatewayFault   = "gateway_fault" // the gateway reports lost events or a failed driver
	RuleHubIntegrity   = "hub_integrity"
	// Hazards, by what the detector sensed (any device type may report
	// them: zigbee2mqtt's smoke, water_leak, gas, carbon_monoxide).
	RuleSmoke          = "smoke"
	RuleWaterLeak      = "water_leak"
	RuleGas            = "gas"
	RuleCarbonMonoxide = "carbon_monoxide"
	// RuleTillsyn is digital night supervision (package tillsyn): planned
	// look-ins; its alarm is raised when a look-in is not all right.
	RuleTillsyn = "tillsyn"
)

// RuleInfo describes a rule for staff and for plans.
type RuleInfo struct {
	Name string
	// Swedish and English staff-facing names.
	SV, EN string
	// Consent: the rule is digital supervision of one resident and runs
	// only with that resident's recorded consent.
	Consent bool
	// Planned: individual plans may turn it on or off and set holds.
	Planned bool
	Default Settings
}

// Rules lists every rule. Defaults are the product's, chosen to be quiet
// at night unless something needs a person. door_open_too_long is off
// unless a plan (site, unit or resident) turns it on: on for every door,
// room doors left open raised priority-2 wander alarms all night.
var Rules = map[string]RuleInfo{
	RuleCallButton:     {SV: "Trygghetslarm", EN: "Call button", Default: Settings{Enabled: true}},
	RuleFall:           {SV: "Fallarm", EN: "Fall detected", Default: Settings{Enabled: true}},
	RuleDoorAtNight:    {SV: "Ytterdörr öppnad på natten", EN: "Exit door opened at night", Planned: true, Default: Settings{Enabled: true}},
	RuleRoomDoor:       {SV: "Rumsdörr öppnad på natten, sängen tom", EN: "Own door opened at night, bed empty", Consent: true, Planned: true, Default: Settings{Enabled: true}},
	RuleDoorOpenLong:   {SV: "Dörr öppen för länge", EN: "Door open too long", Planned: true, Default: Settings{Enabled: false, Hold: 5 * time.Minute}},
	RuleBedExit:        {SV: "Har lämnat sängen och inte återvänt", EN: "Out of bed, not back", Consent: true, Planned: true, Default: Settings{Enabled: true, Hold: 15 * time.Minute}},
	RuleGeofenceExit:   {SV: "Utanför tryggt område", EN: "Left the safe area", Consent: true, Planned: true, Default: Settings{Enabled: true, Hold: 2 * time.Minute, MaxAccuracy: 50}},
	RuleInactivity:     {SV: "Ingen rörelse hemma", EN: "No movement at home", Consent: true, Planned: true, Default: Settings{Enabled: true, Hold: 4 * time.Hour, Window: Window{Start: 7 * 60, End: 22 * 60}, HasWindow: true}},
	RuleDeviceSilent:   {SV: "Enhet tyst (tillsyn)", EN: "Device silent (supervision)", Default: Settings{Enabled: true}},
	RuleBatteryLow:     {SV: "Lågt batteri", EN: "Battery low", Default: Settings{Enabled: true}},
	RuleTamper:         {SV: "Sabotage eller lock öppnat", EN: "Tamper", Default: Settings{Enabled: true}},
	RuleGatewayOffline: {SV: "Gateway ur funktion", EN: "Gateway offline", Default: Settings{Enabled: true}},
	RuleGatewayFault:   {SV: "Fel i gatewayen", EN: "Gateway fault", Default: Settings{Enabled: true}},
	RuleHubIntegrity:   {SV: "Fel i larmservern", EN: "Alarm server fault", Default: Settings{Enabled: true}},
	RuleSmoke:          {SV: "Brandvarnare larmar", EN: "Smoke detected", Default: Settings{Enabled: true}},
	RuleWaterLeak:      {SV: "Vattenläcka", EN: "Water leak", Default: Settings{Enabled: true}},
	RuleGas:            {SV: "Gaslarm", EN: "Gas detected", Default: Settings{Enabled: true}},
	RuleCarbonMonoxide: {SV: "Kolmonoxidlarm", EN: "Carbon monoxide detected", Default: Settings{Enabled: true}},
	RuleTillsyn:        {SV: "Digital tillsyn: inte allt väl", EN: "Night look-in: not all right", Consent: true, Default: Settings{Enabled: true}},
}

func init() {
	for n, r := range Rules {
		r.Name = n
		r.Default.Source = "default"
		Rules[n] = r
	}
}

// RuleNames returns the rule names in a stable order.
func RuleNames() []string {
	out := make([]string, 0, len(Rules))
	for n := range Rules {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Settings is one rule's effective settings for a resident or unit.
type Settings struct {
	Enabled     bool
	Hold        time.Duration // how long the condition must last (Pending → Firing)
	Window      Window        // when the rule watches (inactivity's day window)
	HasWindow   bool
	MaxAccuracy float64 // metres; GPS fixes worse than this are not trusted
	Source      string  // where the value came from: default, site, unit, resident
}

// Plan is every rule's settings, resolved.
type Plan map[string]Settings

// Override is a partial plan entry from config: nil fields inherit.
type Override struct {
	Enabled     *bool
	Hold        *time.Duration
	Window      *Window
	MaxAccuracy *float64
}

// DefaultPlan is the product defaults.
func DefaultPlan() Plan {
	p := Plan{}
	for n, r := range Rules {
		p[n] = r.Default
	}
	return p
}

// With returns a copy of p with overrides applied, marking their source.
func (p Plan) With(source string, o map[string]Override) Plan {
	out := make(Plan, len(p))
	for k, v := range p {
		out[k] = v
	}
	for name, ov := range o {
		s := out[name]
		if ov.Enabled != nil {
			s.Enabled = *ov.Enabled
		}
		if ov.Hold != nil {
			s.Hold = *ov.Hold
		}
		if ov.Window != nil {
			s.Window, s.HasWindow = *ov.Window, true
		}
		if ov.MaxAccuracy != nil {
			s.MaxAccuracy = *ov.MaxAccuracy
		}
		s.Source = source
		out[name] = s
	}
	return out
}
