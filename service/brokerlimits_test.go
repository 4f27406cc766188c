package service

import (
	"testing"
	"time"

	"github.com/vaka-care/vaka/broker"
	"github.com/vaka-care/vaka/hub"
)

// Every mqtt.limits key reaches the broker: a field forgotten here would
// silently run with the default instead of the operator's value.
func TestBrokerLimitsMapsEveryField(t *testing.T) {
	got := brokerLimits(hub.MQTTLimits{MaxConnectSize: 1, MaxPacketSize: 2, ConnectTimeout: 3 * time.Second,
		MaxConnections: 4, MaxConnectionsPerAddress: 5, MaxInflight: 6, MaxQueued: 7, AuthConcurrency: 8})
	want := broker.Limits{MaxConnectSize: 1, MaxPacketSize: 2, ConnectTimeout: 3 * time.Second,
		MaxConnections: 4, MaxConnectionsPerAddress: 5, MaxInflight: 6, MaxQueued: 7, AuthConcurrency: 8}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
