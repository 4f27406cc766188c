package gateway

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/sim"
	"github.com/vaka-care/vaka/event"
)

// Defaults and bounds for Config.
const (
	DefaultHeartbeat = 30 * time.Second
	MinHeartbeat     = time.Second
	DefaultQueueSize = 10000
	MaxQueueSize     = 1000000
)

// Config is one gateway's YAML configuration, loaded with config.Load:
//
//	site: home-care-north
//	id: gw-01
//	broker:
//	  url: ssl://hub.example.org:8883
//	  username: gw-01
//	  password_file: /etc/vaka/gw-01.secret
//	  ca_file: /etc/vaka/ca.pem
//	heartbeat: 30s
//	devices:
//	  - {id: btn-101, driver: sim, type: personal_trigger, resident: r-7f3a, unit: unit-a, room: "101"}
//	sim: {scenarios: [night_wander, call_button], interval: 40s}
type Config struct {
	Site   string `yaml:"site"`
	ID     string `yaml:"id"`
	Broker Broker `yaml:"broker"`
	// Heartbeat is how often the gateway proves it is alive. Default 30s;
	// the hub's supervision must expect the same value (it is announced in
	// the retained online status).
	Heartbeat time.Duration `yaml:"heartbeat,omitempty"`
	// QueueSize bounds the in-memory outbox of events waiting for the
	// broker. Default 10000 (a few MB).
	QueueSize int `yaml:"queue_size,omitempty"`
	// Spool keeps the outbox on disk (fsynced before each publish), so
	// events survive a power cut, a crash or a restart. Recommended on
	// every real gateway: spool: {dir: /var/lib/vaka-gateway/spool}.
	Spool *SpoolConfig `yaml:"spool,omitempty"`
	// SpoolDir is the older spelling of spool.dir; kept so existing
	// configs load. Not both.
	SpoolDir string           `yaml:"spool_dir,omitempty"`
	Devices  []devices.Device `yaml:"devices,omitempty"`
	// Drivers holds driver-wide options by driver name, e.g.
	// drivers: {zigbee2mqtt: {url: "tcp://127.0.0.1:1883"}}. Per-device
	// options (a GPIO pin, a serial port, a friendly name) go in each
	// device's options.
	Drivers map[string]map[string]string `yaml:"drivers,omitempty"`
	// Sim, when present, runs the simulation driver over the devices whose
	// driver is "sim" (or the demo set if there are none).
	Sim *sim.Options `yaml:"sim,omitempty"`
}

// SpoolConfig is the disk spool's section.
type SpoolConfig struct {
	// Dir holds the spool log; created if missing (mode 0750).
	Dir string `yaml:"dir"`
	// MaxBytes bounds the events held (payloads plus a small overhead per
	// event); default 64 MiB, at least 64 KiB. When full, telemetry is
	// dropped before alarm-class events, and every drop is counted and
	// reported to the hub. The log on disk stays within about four times
	// this. queue_size still bounds the number of events.
	MaxBytes int64 `yaml:"max_bytes,omitempty"`
}

// Spool bounds.
const (
	DefaultSpoolBytes = 64 << 20
	MinSpoolBytes     = 64 << 10
)

func (c *Config) spoolDir() string {
	if c.Spool != nil && c.Spool.Dir != "" {
		return c.Spool.Dir
	}
	return c.SpoolDir
}

func (c *Config) spoolMaxBytes() int64 {
	if c.Spool == nil || c.Spool.MaxBytes == 0 {
		return DefaultSpoolBytes
	}
	return c.Spool.MaxBytes
}

// Broker says how to reach the MQTT broker of the hub.
type Broker struct {
	// URL is tcp://host:port, ssl://host:port (TLS), ws:// or wss://.
	URL string `yaml:"url"`
	// URLs are more hubs of a redundant group (docs/scale-out.md), tried
	// in order after URL whenever the gateway connects: a standby hub
	// refuses the connection, so the gateway reaches the active one.
	URLs     []string `yaml:"urls,omitempty"`
	Username string   `yaml:"username,omitempty"`
	// Password or PasswordFile (preferred: keeps the secret out of the
	// config and out of backups of it). Not both.
	Password     string `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	// CAFile is a PEM bundle to verify the broker with instead of the
	// system roots; only for TLS URLs.
	CAFile string `yaml:"ca_file,omitempty"`
}

// Validate checks the config; config.Load calls it and turns each field
// path into a file:line.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, config.Errorf(field, format, args...)) }
	name := func(field, v string) {
		if v == "" {
			add(field, "missing")
		} else if err := event.ValidName(v); err != nil {
			add(field, "%v", err)
		}
	}
	name("site", c.Site)
	name("id", c.ID)
	errs = append(errs, c.Broker.check())
	switch {
	case c.Heartbeat < 0:
		add("heartbeat", "must not be negative")
	case c.Heartbeat != 0 && c.Heartbeat < MinHeartbeat:
		add("heartbeat", "must be at least %s", MinHeartbeat)
	}
	if c.QueueSize < 0 || c.QueueSize > MaxQueueSize {
		add("queue_size", "must be between 1 and %d (0 means the default %d)", MaxQueueSize, DefaultQueueSize)
	}
	if c.Spool != nil {
		switch {
		case c.Spool.Dir == "":
			add("spool.dir", "missing; e.g. /var/lib/vaka-gateway/spool")
		case c.SpoolDir != "":
			add("spool_dir", "set spool.dir or spool_dir, not both")
		}
		if c.Spool.MaxBytes != 0 && c.Spool.MaxBytes < MinSpoolBytes {
			add("spool.max_bytes", "must be at least %d (0 means the default %d)", MinSpoolBytes, DefaultSpoolBytes)
		}
	}
	seen := make(map[string]int, len(c.Devices))
	for i := range c.Devices {
		d := &c.Devices[i]
		errs = append(errs, d.Check("devices", i))
		if d.ID == "" {
			continue
		}
		if j, dup := seen[d.ID]; dup {
			add(config.Field("devices", i, "id"), "duplicate of devices.%d", j)
		} else {
			seen[d.ID] = i
		}
		if d.Driver == sim.Name && c.Sim == nil {
			add(config.Field("devices", i, "driver"), "driver sim needs a sim section")
		}
	}
	if c.Sim != nil {
		errs = append(errs, c.Sim.Check("sim"))
	}
	errs = append(errs, c.checkDrivers())
	return errors.Join(errs...)
}

func (b *Broker) check() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.Errorf("broker."+field, format, args...))
	}
	if b.URL == "" {
		add("url", "missing; e.g. tcp://hub.local:1883 or ssl://hub.example.org:8883")
	} else if u, err := url.Parse(b.URL); err != nil {
		add("url", "not a URL")
	} else {
		switch strings.ToLower(u.Scheme) {
		case "tcp", "mqtt", "ssl", "tls", "mqtts":
			if u.Hostname() == "" || u.Port() == "" {
				add("url", "needs host and port, e.g. tcp://hub.local:1883")
			}
		case "ws", "wss":
			if u.Hostname() == "" {
				add("url", "needs a host, e.g. wss://hub.example.org/mqtt")
			}
		default:
			add("url", "scheme must be tcp, ssl, ws or wss")
		}
		if u.User != nil {
			add("url", "must not carry credentials; use username and password_file")
		}
		if b.CAFile != "" && !isTLS(u.Scheme) {
			add("ca_file", "only applies to ssl:// or wss:// URLs")
		}
	}
	for i, s := range b.URLs {
		u, err := url.Parse(s)
		f := config.Field("urls", i)
		switch {
		case err != nil:
			add(f, "not a URL")
		case strings.ToLower(u.Scheme) != "tcp" && strings.ToLower(u.Scheme) != "ssl" && strings.ToLower(u.Scheme) != "mqtt" &&
			strings.ToLower(u.Scheme) != "tls" && strings.ToLower(u.Scheme) != "mqtts":
			add(f, "scheme must be tcp or ssl, e.g. ssl://hub-b.example.org:8883")
		case u.Hostname() == "" || u.Port() == "":
			add(f, "needs host and port, e.g. tcp://hub-b.local:1883")
		case u.User != nil:
			add(f, "must not carry credentials; use username and password_file")
		}
	}
	if b.Password != "" && b.PasswordFile != "" {
		add("password", "set password or password_file, not both")
	}
	if (b.Password != "" || b.PasswordFile != "") && b.Username == "" {
		add("username", "missing; a password needs a username")
	}
	return errors.Join(errs...)
}

func isTLS(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "ssl", "tls", "mqtts", "wss":
		return true
	}
	return false
}

func (c *Config) heartbeat() time.Duration {
	if c.Heartbeat == 0 {
		return DefaultHeartbeat
	}
	return c.Heartbeat
}

func (c *Config) queueSize() int {
	if c.QueueSize == 0 {
		return DefaultQueueSize
	}
	return c.QueueSize
}
