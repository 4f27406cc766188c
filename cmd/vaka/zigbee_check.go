package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/zigbee2mqtt"
	"github.com/vaka-care/vaka/gateway"
)

// checkZigbeeDevices checks each zigbee2mqtt device of a gateway config
// against zigbee2mqtt's bridge/devices message saved in the file zpath,
// with the check the running driver makes on every retained list
// (zigbee2mqtt.CheckBridgeDevices). A technician runs it before leaving a
// home: a call button whose model has no press, a smoke detector that
// exposes no smoke, a device that was never paired or whose interview
// failed would otherwise be found only by the technical alarm the hub
// raises once the gateway runs. Each problem names the device's line in
// the config; any problem fails the check.
func checkZigbeeDevices(stdout io.Writer, path string, data []byte, cfg *gateway.Config, zpath string) error {
	list, err := readBridgeDevices(zpath)
	if err != nil {
		return err
	}
	var devs []devices.Device
	at := map[string]int{} // device id → index in cfg.Devices
	for i, d := range cfg.Devices {
		if d.Driver == zigbee2mqtt.Name {
			devs = append(devs, d)
			at[d.ID] = i
		}
	}
	if len(devs) == 0 {
		return fmt.Errorf("check: %s configures no zigbee2mqtt devices, so there is nothing to check against %s", path, zpath)
	}
	problems, err := zigbee2mqtt.CheckBridgeDevices(devs, list)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if len(problems) == 0 {
		fmt.Fprintf(stdout, "%s: OK – %d zigbee2mqtt devices paired, each exposes what its type needs\n", zpath, len(devs))
		return nil
	}
	errs := make([]error, 0, len(problems))
	for _, p := range problems {
		errs = append(errs, config.Errorf(config.Field("devices", at[p.Device]), "%s", p.Msg))
	}
	return errors.Join(config.Locate(path, data, errors.Join(errs...)),
		fmt.Errorf("check: %d of %d zigbee2mqtt devices cannot do what their type promises (checked against %s)", len(problems), len(devs), zpath))
}

// readBridgeDevices reads a saved bridge/devices message, bounded like the
// driver bounds the retained one.
func readBridgeDevices(zpath string) ([]zigbee2mqtt.BridgeEntry, error) {
	f, err := os.Open(zpath)
	if err != nil {
		return nil, fmt.Errorf("check: --zigbee-devices: %w", err)
	}
	defer f.Close()
	p, err := io.ReadAll(io.LimitReader(f, zigbee2mqtt.MaxBridgeDevices+1))
	if err != nil {
		return nil, fmt.Errorf("check: %s: %w", zpath, err)
	}
	list, err := zigbee2mqtt.DecodeBridgeDevices(p)
	if err == nil {
		return list, nil
	}
	hint := "want zigbee2mqtt's retained bridge/devices message as `mosquitto_sub -t zigbee2mqtt/bridge/devices -C 1` prints it"
	if i := bytes.IndexByte(p, '['); i > 0 && bytes.Contains(p[:i], []byte("bridge/devices")) {
		hint = "the file starts with the topic name: save the message without mosquitto_sub -v"
	}
	return nil, fmt.Errorf("check: %s: %w; %s", zpath, err, hint)
}
