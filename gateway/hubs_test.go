package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/gateway"
)

// A gateway of a redundant group of hubs knows every hub's address
// (broker.urls): the first refuses (a standby opens no listener), and the
// gateway's events reach the active hub's broker, the second address.
func TestIntegrationGatewaySeveralHubAddresses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real broker over loopback TCP")
	}
	const site, gwID = "solrosen", "avd-a"
	standby := closedPort(t)
	activeAddr := closedPort(t)
	atBroker := &capture{}
	srv := startBroker(t, activeAddr, atBroker)
	defer srv.Close()
	log, _ := testLogger(t)
	cfg := gateway.Config{
		Site: site, ID: gwID,
		Broker:    gateway.Broker{URL: "tcp://" + standby, URLs: []string{"tcp://" + activeAddr}},
		Heartbeat: time.Second,
		Devices: []devices.Device{
			{ID: "dorr-entre", Driver: "firing", Type: "door_sensor", Unit: "avd-a", Room: "entre", Exit: true},
			{ID: "pir-korridor", Driver: "firing", Type: "occupancy_detector", Unit: "avd-a"},
		},
	}
	f := &firing{period: 20 * time.Millisecond}
	reg := devices.NewRegistry()
	if err := reg.Register(f); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, log, reg, gateway.WithReconnectMax(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "connected to the second address", func() bool { return gw.Stats().Connected })
	waitFor(t, 10*time.Second, "events at the active hub's broker", func() bool { return len(atBroker.events(t, site, gwID)) >= 5 })
}

func TestBrokerURLsChecked(t *testing.T) {
	base := "site: s\nid: g\nbroker:\n  url: tcp://hub-a:1883\n  urls:\n"
	for _, tc := range []struct{ urls, want string }{
		{"    - tcp://hub-b:1883\n    - ssl://hub-c:8883\n", ""},
		{"    - tcp://hub-b:1883\n    - http://hub-c:80\n", "g.yaml:7: field broker.urls.1: scheme must be tcp or ssl"},
		{"    - tcp://hub-b\n", "g.yaml:6: field broker.urls.0: needs host and port"},
		{"    - tcp://u:p@hub-b:1883\n", "g.yaml:6: field broker.urls.0: must not carry credentials"},
	} {
		var c gateway.Config
		err := config.Decode("g.yaml", []byte(base+tc.urls), &c)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.urls, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.urls, err, tc.want)
		}
	}
}
