package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/gateway"
)

func TestConfigChecksDriverOptions(t *testing.T) {
	yaml := `site: s1
id: gw1
broker: {url: "tcp://127.0.0.1:1883"}
spool: {dir: /tmp/x, max_bytes: 100}
drivers:
  zigbee2mqtt: {url: "not a url"}
  bluetooth: {}
devices:
  - {id: d1, driver: gpio, type: door_sensor, options: {pin: "pin 17"}}
  - {id: d2, driver: zigbee2mqtt, type: personal_trigger}
  - {id: d3, driver: nmea, type: tracking_device, options: {port: /dev/ttyACM0, baud: fast}}
`
	var cfg gateway.Config
	err := config.Decode("gw.yaml", []byte(yaml), &cfg)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"spool.max_bytes", `options.pin "pin 17"`, "options.friendly_name: missing", `options.baud "fast"`,
		"drivers.bluetooth", "drivers.zigbee2mqtt", "gw.yaml:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// On this machine there is no GPIO and no GPS: the gateway starts anyway,
// the drivers are skipped, and their devices are reported offline (kept
// in the spool while the hub is unreachable) – never a crash.
func TestMissingHardwareReportsDevicesOffline(t *testing.T) {
	log, logs := testLogger(t)
	dir := t.TempDir()
	cfg := gateway.Config{Site: "s1", ID: "gw1", Broker: gateway.Broker{URL: "tcp://" + closedPort(t)},
		Spool: &gateway.SpoolConfig{Dir: dir},
		Devices: []devices.Device{
			{ID: "dorr-1", Driver: "gpio", Type: "door_sensor", Options: map[string]string{"pin": "GPIO17"}},
			{ID: "gps-1", Driver: "nmea", Type: "tracking_device", Options: map[string]string{"port": "/dev/ttyNOSUCHGPS"}},
		}}
	gw, err := gateway.New(cfg, log, nil, gateway.WithFlushTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil && len(gw.Drivers()) > 0 {
			done := 0
			for _, d := range gw.Drivers() {
				if d.State == devices.StateSkipped || d.State == devices.StateFailed {
					done++
				}
			}
			if done == 2 {
				time.Sleep(100 * time.Millisecond)
				cancel()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if err := gw.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sp, _ := gateway.OpenSpool(dir, 100)
	offline := map[string]bool{}
	for sp.Len() > 0 {
		m, _ := sp.Front()
		sp.Pop()
		ev, err := event.Decode("s1", "gw1", m.Payload)
		if err == nil && ev.Status == event.Offline {
			offline[ev.Device] = true
		}
	}
	if !offline["dorr-1"] || !offline["gps-1"] {
		t.Fatalf("offline events %v; drivers %+v; log:\n%s", offline, gw.Drivers(), logs)
	}
}
