package hub

import (
	"net/url"
	"os"
	"strings"

	"github.com/vaka-care/vaka/config"
)

// Broker modes (mqtt.broker).
const (
	BrokerEmbedded = "embedded"
	BrokerExternal = "external"
)

// ExternalBroker is the external MQTT broker the hub consumes from when
// mqtt.broker is "external" (docs/scale-out.md). Gateways then log in to
// that broker, which authenticates them and enforces their topic rights.
type ExternalBroker struct {
	// URL is tcp://host:1883 or ssl://host:8883.
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	// Password or PasswordFile (preferred: keeps the secret out of the config).
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// CAFile verifies the broker's certificate (ssl:// only); default: system roots.
	CAFile string `yaml:"ca_file"`
	// ClientID names the hub's persistent session; keep it stable. Default vaka-hub.
	ClientID string `yaml:"client_id"`
}

// IsExternal reports whether the hub uses an external broker.
func (m *MQTTConfig) IsExternal() bool { return m.Broker == BrokerExternal }

// Secret returns the password, reading PasswordFile if set.
func (e *ExternalBroker) Secret() (string, error) {
	if e.PasswordFile == "" {
		return e.Password, nil
	}
	b, err := os.ReadFile(e.PasswordFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (m *MQTTConfig) validateExternal() []error {
	var errs []error
	add := func(f, format string, a ...any) { errs = append(errs, config.Errorf(f, format, a...)) }
	if m.Broker != BrokerExternal {
		add("mqtt.broker", "must be embedded or external, not %q", m.Broker)
		return errs
	}
	if m.TCP != "" || m.WebSocket != "" || m.TLS != nil {
		add("mqtt", "tcp, websocket and tls are listeners of the embedded broker; remove them with broker: external")
	}
	e := m.External
	if e == nil {
		add("mqtt.external", "missing: broker: external needs external.url")
		return errs
	}
	if e.ClientID == "" {
		e.ClientID = "vaka-hub"
	}
	u, err := url.Parse(e.URL)
	switch {
	case e.URL == "":
		add("mqtt.external.url", "missing, e.g. tcp://mqtt.example.org:1883")
	case err != nil:
		add("mqtt.external.url", "not a URL: %v", err)
	default:
		switch strings.ToLower(u.Scheme) {
		case "tcp", "mqtt", "ssl", "tls", "mqtts":
			if u.Hostname() == "" || u.Port() == "" {
				add("mqtt.external.url", "needs host and port, e.g. ssl://mqtt.example.org:8883")
			}
		default:
			add("mqtt.external.url", "scheme must be tcp or ssl")
		}
		if u.User != nil {
			add("mqtt.external.url", "must not carry credentials; use username and password_file")
		}
		if sc := strings.ToLower(u.Scheme); e.CAFile != "" && sc != "ssl" && sc != "tls" && sc != "mqtts" {
			add("mqtt.external.ca_file", "only applies to ssl:// URLs")
		}
	}
	if e.Password != "" && e.PasswordFile != "" {
		add("mqtt.external.password", "set password or password_file, not both")
	}
	if (e.Password != "" || e.PasswordFile != "") && e.Username == "" {
		add("mqtt.external.username", "missing; a password needs a username")
	}
	return errs
}
