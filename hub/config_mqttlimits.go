package hub

import (
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
)

// MQTTLimits bound what clients can make the embedded broker hold
// (mqtt.limits, docs/config.md). Zero or absent fields take the broker's
// defaults (broker.DefaultLimits): the defaults are safe, so most hubs set
// none of these.
type MQTTLimits struct {
	// MaxConnectSize bounds a connection's first packet (CONNECT), in bytes,
	// before any login. Default 16384.
	MaxConnectSize int `yaml:"max_connect_size"`
	// MaxPacketSize bounds every later packet, in bytes. Default 65536.
	MaxPacketSize int `yaml:"max_packet_size"`
	// ConnectTimeout is the longest from TCP accept to a complete CONNECT.
	// Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxConnections and MaxConnectionsPerAddress bound open connections
	// in total and per source IP. Defaults 4096 and 256.
	MaxConnections           int `yaml:"max_connections"`
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// MaxInflight bounds unacknowledged QoS 1/2 messages to one client;
	// MaxQueued its outbound queue. Beyond them a message is dropped,
	// counted and raised as hub_integrity. Defaults 4096 and 2048.
	MaxInflight int `yaml:"max_inflight"`
	MaxQueued   int `yaml:"max_queued"`
	// AuthConcurrency bounds bcrypt comparisons running at once. Default 1.
	AuthConcurrency int `yaml:"auth_concurrency"`
}

// Bounds of mqtt.limits values: outside them a limit is a mistake or
// cannot be honoured.
const (
	minPacketSize = event.MaxPayload + 1024 // an event plus its topic and header
	maxPacketSize = 256 << 20               // MQTT's own maximum
	minConnect    = 1 << 10
)

func (l *MQTTLimits) validate(field string) []error {
	var errs []error
	add := func(f, format string, a ...any) { errs = append(errs, config.Errorf(field+"."+f, format, a...)) }
	inRange := func(f string, v, lo, hi int, why string) {
		if v != 0 && (v < lo || v > hi) {
			add(f, "must be between %d and %d%s", lo, hi, why)
		}
	}
	inRange("max_connect_size", l.MaxConnectSize, minConnect, maxPacketSize, " bytes")
	inRange("max_packet_size", l.MaxPacketSize, minPacketSize, maxPacketSize, " bytes (an event is up to 8 KiB)")
	inRange("max_connections", l.MaxConnections, 1, 1<<20, "")
	inRange("max_connections_per_address", l.MaxConnectionsPerAddress, 1, 1<<20, "")
	inRange("max_inflight", l.MaxInflight, 1, 65535, " (MQTT packet ids)")
	inRange("max_queued", l.MaxQueued, 1, 1<<20, "")
	inRange("auth_concurrency", l.AuthConcurrency, 1, 64, "")
	if d := l.ConnectTimeout; d != 0 && (d < time.Second || d > 5*time.Minute) {
		add("connect_timeout", "must be between 1s and 5m")
	}
	if l.MaxConnectSize != 0 && l.MaxPacketSize != 0 && l.MaxConnectSize > l.MaxPacketSize {
		add("max_connect_size", "exceeds max_packet_size (%d)", l.MaxPacketSize)
	}
	if l.MaxConnections != 0 && l.MaxConnectionsPerAddress > l.MaxConnections {
		add("max_connections_per_address", "exceeds max_connections (%d)", l.MaxConnections)
	}
	return errs
}
