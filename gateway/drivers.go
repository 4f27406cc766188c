package gateway

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/gpio"
	"github.com/vaka-care/vaka/devices/nmea"
	"github.com/vaka-care/vaka/devices/zigbee2mqtt"
)

// builtin is a hardware driver the gateway knows by name. New registers
// one for every driver the configured devices name, unless the caller
// registered its own under that name (tests do, with fakes).
type builtin struct {
	check func(devices.Device) error // a device's options, without hardware
	opts  func(map[string]string) error
	make  func(opts map[string]string, devs []devices.Device, log *slog.Logger) (devices.Driver, error)
}

var builtins = map[string]builtin{
	gpio.Name: {
		check: gpio.CheckDevice,
		make: func(_ map[string]string, devs []devices.Device, log *slog.Logger) (devices.Driver, error) {
			return gpio.New(devs, log)
		},
	},
	nmea.Name: {
		check: nmea.CheckDevice,
		make: func(_ map[string]string, devs []devices.Device, log *slog.Logger) (devices.Driver, error) {
			return nmea.New(devs, log)
		},
	},
	zigbee2mqtt.Name: {
		check: zigbee2mqtt.CheckDevice,
		opts:  func(m map[string]string) error { _, err := zigbee2mqtt.ParseOpts(m); return err },
		make: func(m map[string]string, devs []devices.Device, log *slog.Logger) (devices.Driver, error) {
			o, err := zigbee2mqtt.ParseOpts(m)
			if err != nil {
				return nil, err
			}
			return zigbee2mqtt.New(o, devs, log)
		},
	},
}

// checkDrivers validates the drivers section and each device's driver
// options, so `vaka check` catches a wrong pin name or a missing
// friendly_name before the technician leaves.
func (c *Config) checkDrivers() error {
	var errs []error
	for name, opts := range c.Drivers {
		b, ok := builtins[name]
		switch {
		case !ok:
			errs = append(errs, config.Errorf(config.Field("drivers", name), "unknown driver; known: gpio, nmea, zigbee2mqtt"))
		case b.opts == nil && len(opts) > 0:
			errs = append(errs, config.Errorf(config.Field("drivers", name), "driver %s takes its options per device", name))
		case b.opts != nil:
			for _, e := range split(b.opts(opts)) {
				errs = append(errs, config.Errorf(config.Field("drivers", name), "%v", e))
			}
		}
	}
	for i, d := range c.Devices {
		b, ok := builtins[d.Driver]
		if !ok {
			continue
		}
		for _, e := range split(b.check(d)) {
			errs = append(errs, config.Errorf(config.Field("devices", i), "%v", e))
		}
	}
	return errors.Join(errs...)
}

func split(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, split(e)...)
		}
		return out
	}
	return []error{err}
}

// registerBuiltins adds the built-in driver for every driver name the
// devices use that reg does not have yet.
func (g *Gateway) registerBuiltins(reg *devices.Registry) error {
	for name, b := range builtins {
		var devs []devices.Device
		for _, d := range g.byDriver[name] {
			devs = append(devs, *d)
		}
		if len(devs) == 0 || reg.Has(name) {
			continue
		}
		drv, err := b.make(g.cfg.Drivers[name], devs, g.log)
		if err != nil {
			return fmt.Errorf("gateway: driver %s: %w", name, err)
		}
		if err := reg.Register(drv); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	return nil
}
