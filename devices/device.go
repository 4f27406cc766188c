package devices

import (
	"errors"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
)

// Device describes one installed device, as a gateway's config lists it.
// The gateway uses it to fill where an event happened and whom it concerns,
// so a driver only has to say which device spoke and what it said.
type Device struct {
	ID     string `yaml:"id"`
	Driver string `yaml:"driver"`
	// Type is the SCAIP device type, as the code ("0014") or the machine
	// name ("door_sensor"); see event.ParseDeviceType.
	Type string `yaml:"type"`
	// Resident is a pseudonymous id ("r-7f3a"), never a name. Empty for
	// shared devices such as a corridor sensor or the unit's exit door.
	Resident string `yaml:"resident,omitempty"`
	Unit     string `yaml:"unit,omitempty"`
	Room     string `yaml:"room,omitempty"`
	// Exit marks a unit exit door: opening it at night may mean a resident
	// is leaving (the hub's rules use the same flag).
	Exit bool `yaml:"exit,omitempty"`
	// Options are driver specific (a zigbee friendly name, a GPIO pin). A
	// flat string map keeps this package free of any YAML dependency and
	// lets each driver parse and check its own keys.
	Options map[string]string `yaml:"options,omitempty"`
}

// DeviceType returns the parsed SCAIP device type.
func (d *Device) DeviceType() (event.DeviceType, error) { return event.ParseDeviceType(d.Type) }

// Check validates the description. at is the path of the device in the
// config ("devices", 3), so errors name the field as config.Load expects.
func (d *Device) Check(at ...any) error {
	field := func(name string) string { return config.Field(append(append([]any(nil), at...), name)...) }
	var errs []error
	if d.ID == "" {
		errs = append(errs, config.Errorf(field("id"), "missing"))
	} else if err := event.ValidName(d.ID); err != nil {
		errs = append(errs, config.Errorf(field("id"), "%v", err))
	}
	if d.Driver == "" {
		errs = append(errs, config.Errorf(field("driver"), "missing"))
	} else if err := event.ValidName(d.Driver); err != nil {
		errs = append(errs, config.Errorf(field("driver"), "%v", err))
	}
	if d.Type == "" {
		errs = append(errs, config.Errorf(field("type"), "missing; a SCAIP code like 0014 or a name like door_sensor"))
	} else if _, err := d.DeviceType(); err != nil {
		errs = append(errs, config.Errorf(field("type"), "unknown device type; use a SCAIP code like 0014 or a name like door_sensor"))
	}
	for _, f := range []struct{ name, v, what string }{
		{"resident", d.Resident, "must be a pseudonymous id like r-7f3a, never a name"},
		{"unit", d.Unit, ""},
		{"room", d.Room, ""},
	} {
		if f.v == "" {
			continue
		}
		if err := event.ValidName(f.v); err != nil {
			msg := err.Error()
			if f.what != "" {
				msg += "; " + f.what
			}
			errs = append(errs, config.Errorf(field(f.name), "%s", msg))
		}
	}
	return errors.Join(errs...)
}
