package hub

import (
	"strings"
	"testing"
)

func TestValidateExternalBroker(t *testing.T) {
	base := func() *Config {
		return &Config{Demo: true, HTTP: HTTPConfig{Address: "127.0.0.1:0"},
			MQTT: MQTTConfig{Broker: BrokerExternal, External: &ExternalBroker{URL: "tcp://127.0.0.1:1883"}}}
	}
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string // "" means valid
	}{
		{"ok", func(*Config) {}, ""},
		{"tls ok", func(c *Config) { c.MQTT.External.URL = "ssl://mqtt.example:8883"; c.MQTT.External.CAFile = "ca.pem" }, ""},
		{"unknown mode", func(c *Config) { c.MQTT.Broker = "cluster" }, "must be embedded or external"},
		{"no external", func(c *Config) { c.MQTT.External = nil }, "mqtt.external"},
		{"external without mode", func(c *Config) { c.MQTT.Broker = "" }, "must be embedded or external"},
		{"listener too", func(c *Config) { c.MQTT.TCP = "127.0.0.1:1883" }, "listeners of the embedded broker"},
		{"no url", func(c *Config) { c.MQTT.External.URL = "" }, "url"},
		{"bad scheme", func(c *Config) { c.MQTT.External.URL = "http://x:1" }, "scheme"},
		{"no port", func(c *Config) { c.MQTT.External.URL = "tcp://x" }, "host and port"},
		{"credentials in url", func(c *Config) { c.MQTT.External.URL = "tcp://u:p@x:1" }, "credentials"},
		{"ca on tcp", func(c *Config) { c.MQTT.External.CAFile = "ca.pem" }, "ssl://"},
		{"ca on mqtt", func(c *Config) { c.MQTT.External.URL = "mqtt://x:1"; c.MQTT.External.CAFile = "ca.pem" }, "ssl://"},
		{"both passwords", func(c *Config) {
			c.MQTT.External.Username, c.MQTT.External.Password, c.MQTT.External.PasswordFile = "u", "p", "f"
		}, "not both"},
		{"password without user", func(c *Config) { c.MQTT.External.Password = "p" }, "username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want it to mention %q", err, tc.want)
			}
			if tc.want == "" && c.MQTT.External.ClientID != "vaka-hub" {
				t.Fatalf("client_id default = %q", c.MQTT.External.ClientID)
			}
		})
	}
}
