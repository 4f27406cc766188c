package hub

import (
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/config"
)

const limitsBase = `demo: true
http: {address: 127.0.0.1:0}
mqtt:
  tcp: 127.0.0.1:0
  limits:
`

func TestConfigMQTTLimitsErrorsNameFileLineField(t *testing.T) {
	yaml := limitsBase + `    max_connect_size: 100
    max_packet_size: 1000000000
    connect_timeout: 0.5s
    max_connections: 10
    max_connections_per_address: 20
    max_inflight: 70000
    auth_concurrency: 0
`
	var cfg Config
	err := config.Decode("hub.yaml", []byte(yaml), &cfg)
	for _, want := range []string{
		"hub.yaml:6: field mqtt.limits.max_connect_size: must be between 1024 and 268435456 bytes",
		"hub.yaml:7: field mqtt.limits.max_packet_size: must be between 9216 and 268435456",
		"hub.yaml:8: field mqtt.limits.connect_timeout: must be between 1s and 5m",
		"hub.yaml:10: field mqtt.limits.max_connections_per_address: exceeds max_connections (10)",
		"hub.yaml:11: field mqtt.limits.max_inflight: must be between 1 and 65535",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	err = config.Decode("hub.yaml", []byte(limitsBase+"    max_conect_size: 4096\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "hub.yaml:6: field mqtt.limits.max_conect_size: unknown field") {
		t.Errorf("misspelt key not named: %v", err)
	}
}

func TestConfigMQTTLimitsAcceptsValuesAndAbsence(t *testing.T) {
	var cfg Config
	yaml := limitsBase + `    max_connect_size: 8192
    max_packet_size: 32768
    connect_timeout: 5s
    max_connections: 100
    max_connections_per_address: 10
`
	if err := config.Decode("hub.yaml", []byte(yaml), &cfg); err != nil {
		t.Fatal(err)
	}
	if l := cfg.MQTT.Limits; l.ConnectTimeout != 5*time.Second || l.MaxConnectSize != 8192 || l.MaxConnectionsPerAddress != 10 {
		t.Fatalf("limits: %+v", l)
	}
	cfg = Config{}
	if err := config.Decode("hub.yaml", []byte(strings.TrimSuffix(limitsBase, "  limits:\n")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.Limits != (MQTTLimits{}) {
		t.Fatalf("absent limits decoded as %+v", cfg.MQTT.Limits)
	}
}
