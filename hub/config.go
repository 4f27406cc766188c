package hub

import (
	"errors"

	"golang.org/x/crypto/bcrypt"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
)

// Config is the hub's configuration file. See docs/config.md and
// deploy/hub.example.yaml.
type Config struct {
	// DataDir holds the alarm journal. Required outside demo mode.
	DataDir string `yaml:"data_dir"`
	// Demo allows anonymous MQTT and prints demo logins. Never in production.
	Demo     bool           `yaml:"demo"`
	Timezone string         `yaml:"timezone"`
	MQTT     MQTTConfig     `yaml:"mqtt"`
	HTTP     HTTPConfig     `yaml:"http"`
	Store    StoreConfig    `yaml:"store"`
	Users    []User         `yaml:"users"`
	Sites    []Site         `yaml:"sites"`
	Loc      *time.Location `yaml:"-"`
}

// MQTTConfig sets the embedded broker's listeners.
type MQTTConfig struct {
	TCP       string     `yaml:"tcp"`       // e.g. 0.0.0.0:1883
	WebSocket string     `yaml:"websocket"` // e.g. 0.0.0.0:1882; empty disables
	TLS       *TLSConfig `yaml:"tls"`       // adds a TLS listener
}

// TLSConfig names a certificate and key in PEM files.
type TLSConfig struct {
	Address  string `yaml:"address"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// HTTPConfig sets the web server.
type HTTPConfig struct {
	Address    string        `yaml:"address"`
	TLS        *TLSConfig    `yaml:"tls"`
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// StoreConfig tunes the alarm journal's durability.
type StoreConfig struct {
	SyncEachWrite bool `yaml:"sync_each_write"`
}

// User is a staff account for the web app.
type User struct {
	Username     string `yaml:"username"`
	Name         string `yaml:"name"`
	Role         string `yaml:"role"` // staff, lead, admin
	PasswordHash string `yaml:"password_hash"`
}

// Roles.
const (
	RoleStaff = "staff"
	RoleLead  = "lead"
	RoleAdmin = "admin"
)

// Site is one dementia unit building or home-care area.
type Site struct {
	ID       string    `yaml:"id"`
	Name     string    `yaml:"name"`
	Night    Night     `yaml:"night"`
	Units    []Unit    `yaml:"units"`
	Gateways []Gateway `yaml:"gateways"`
}

// Night is a night window in local wall-clock time.
type Night struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

// Unit is a ward or a home within a site, with its own night window if set.
type Unit struct {
	ID    string `yaml:"id"`
	Name  string `yaml:"name"`
	Night *Night `yaml:"night"`
}

// Gateway is one edge gateway with its MQTT credentials and devices.
type Gateway struct {
	ID           string        `yaml:"id"`
	PasswordHash string        `yaml:"password_hash"`
	Heartbeat    time.Duration `yaml:"heartbeat"`
	Missed       int           `yaml:"missed"`
	Devices      []Device      `yaml:"devices"`
}

// Device is one registered sensor or button.
type Device struct {
	ID       string `yaml:"id"`
	Type     string `yaml:"type"` // SCAIP dty code or name: door_sensor, personal_trigger …
	Resident string `yaml:"resident"`
	Unit     string `yaml:"unit"`
	Room     string `yaml:"room"`
	Exit     bool   `yaml:"exit"`
}

// Defaults.
const (
	DefaultTimezone  = "Europe/Stockholm"
	DefaultHeartbeat = 30 * time.Second
	DefaultMissed    = 3
)

// Validate checks the config and fills defaults.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if c.Timezone == "" {
		c.Timezone = DefaultTimezone
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		add(config.Errorf("timezone", "unknown time zone %q", c.Timezone))
	}
	c.Loc = loc
	if c.DataDir == "" && !c.Demo {
		add(config.Errorf("data_dir", "missing: the alarm journal needs a directory"))
	}
	if c.MQTT.TCP == "" && c.MQTT.WebSocket == "" && c.MQTT.TLS == nil {
		add(config.Errorf("mqtt", "no listener: set tcp, websocket or tls"))
	}
	if t := c.MQTT.TLS; t != nil {
		errs = append(errs, t.validate("mqtt.tls")...)
	}
	if c.HTTP.Address == "" {
		add(config.Errorf("http.address", "missing"))
	}
	if t := c.HTTP.TLS; t != nil {
		errs = append(errs, t.validate("http.tls")...)
	}
	if c.HTTP.SessionTTL == 0 {
		c.HTTP.SessionTTL = 12 * time.Hour
	}
	users := map[string]bool{}
	for i, u := range c.Users {
		f := func(name string) string { return config.Field("users", i, name) }
		if u.Username == "" {
			add(config.Errorf(f("username"), "missing"))
		} else if users[u.Username] {
			add(config.Errorf(f("username"), "duplicate %q", u.Username))
		}
		users[u.Username] = true
		switch u.Role {
		case RoleStaff, RoleLead, RoleAdmin:
		case "":
			add(config.Errorf(f("role"), "missing: staff, lead or admin"))
		default:
			add(config.Errorf(f("role"), "must be staff, lead or admin"))
		}
		if !isBcrypt(u.PasswordHash) {
			add(config.Errorf(f("password_hash"), "missing or not a bcrypt hash (make one with: vaka hash-password)"))
		}
	}
	if len(c.Users) == 0 && !c.Demo {
		add(config.Errorf("users", "missing: at least one staff account is needed to see alarms"))
	}
	siteIDs := map[string]bool{}
	for i, s := range c.Sites {
		f := func(parts ...any) string { return config.Field(append([]any{"sites", i}, parts...)...) }
		if err := event.ValidName(s.ID); err != nil {
			add(config.Errorf(f("id"), "%v", err))
		} else if siteIDs[s.ID] {
			add(config.Errorf(f("id"), "duplicate site %q", s.ID))
		}
		siteIDs[s.ID] = true
		if s.Night.Start == "" && s.Night.End == "" {
			add(config.Errorf(f("night"), "missing: the night window, e.g. start: \"22:00\", end: \"06:30\""))
		} else if _, err := rules.ParseWindow(s.Night.Start, s.Night.End); err != nil {
			add(config.Errorf(f("night"), "%v", err))
		}
		units := map[string]bool{}
		for k, u := range s.Units {
			if err := event.ValidName(u.ID); err != nil {
				add(config.Errorf(f("units", k, "id"), "%v", err))
			}
			units[u.ID] = true
			if u.Night != nil {
				if _, err := rules.ParseWindow(u.Night.Start, u.Night.End); err != nil {
					add(config.Errorf(f("units", k, "night"), "%v", err))
				}
			}
		}
		gws, devs := map[string]bool{}, map[string]bool{}
		for j := range s.Gateways {
			g := &s.Gateways[j]
			if err := event.ValidName(g.ID); err != nil {
				add(config.Errorf(f("gateways", j, "id"), "%v", err))
			} else if gws[g.ID] {
				add(config.Errorf(f("gateways", j, "id"), "duplicate gateway %q", g.ID))
			}
			gws[g.ID] = true
			if (!c.Demo || g.PasswordHash != "") && !isBcrypt(g.PasswordHash) {
				add(config.Errorf(f("gateways", j, "password_hash"), "missing or not a bcrypt hash (make one with: vaka hash-password)"))
			}
			if g.Heartbeat == 0 {
				g.Heartbeat = DefaultHeartbeat
			} else if g.Heartbeat < time.Second {
				add(config.Errorf(f("gateways", j, "heartbeat"), "must be at least 1s"))
			}
			if g.Missed == 0 {
				g.Missed = DefaultMissed
			} else if g.Missed < 1 {
				add(config.Errorf(f("gateways", j, "missed"), "must be at least 1"))
			}
			for k, d := range g.Devices {
				df := func(name string) string { return f("gateways", j, "devices", k, name) }
				if err := event.ValidName(d.ID); err != nil {
					add(config.Errorf(df("id"), "%v", err))
				} else if devs[d.ID] {
					add(config.Errorf(df("id"), "duplicate device %q in site %q", d.ID, s.ID))
				}
				devs[d.ID] = true
				if d.Type == "" {
					add(config.Errorf(df("type"), "missing: e.g. personal_trigger, door_sensor, bed_monitor"))
				} else if _, err := event.ParseDeviceType(d.Type); err != nil {
					add(config.Errorf(df("type"), "unknown device type %q", d.Type))
				}
				if d.Resident != "" && event.ValidName(d.Resident) != nil {
					add(config.Errorf(df("resident"), "must be a pseudonymous id, not a name"))
				}
				if d.Unit != "" && len(s.Units) > 0 && !units[d.Unit] {
					add(config.Errorf(df("unit"), "unit %q is not listed under units", d.Unit))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func isBcrypt(h string) bool {
	_, err := bcrypt.Cost([]byte(h))
	return err == nil
}

func (t *TLSConfig) validate(field string) []error {
	var errs []error
	if t.CertFile == "" {
		errs = append(errs, config.Errorf(field+".cert_file", "missing"))
	}
	if t.KeyFile == "" {
		errs = append(errs, config.Errorf(field+".key_file", "missing"))
	}
	if t.Address == "" && field == "mqtt.tls" {
		errs = append(errs, config.Errorf(field+".address", "missing"))
	}
	return errs
}

// RuleConfig builds the rule engine's view of the config. Validate first.
func (c *Config) RuleConfig() rules.Config {
	rc := rules.Config{Location: c.Loc, Sites: map[string]*rules.Site{}}
	for _, s := range c.Sites {
		night, _ := rules.ParseWindow(s.Night.Start, s.Night.End)
		rs := &rules.Site{ID: s.ID, Night: night, Units: map[string]rules.Window{},
			Devices: map[string]*rules.Device{}, Gateways: map[string]*rules.Gateway{}}
		for _, u := range s.Units {
			if u.Night != nil {
				w, _ := rules.ParseWindow(u.Night.Start, u.Night.End)
				rs.Units[u.ID] = w
			}
		}
		for _, g := range s.Gateways {
			rs.Gateways[g.ID] = &rules.Gateway{ID: g.ID, Site: s.ID, Heartbeat: g.Heartbeat, Missed: g.Missed}
			for _, d := range g.Devices {
				t, _ := event.ParseDeviceType(d.Type)
				rs.Devices[d.ID] = &rules.Device{ID: d.ID, Site: s.ID, Gateway: g.ID, Type: t,
					Resident: d.Resident, Unit: d.Unit, Room: d.Room, Exit: d.Exit}
			}
		}
		rc.Sites[s.ID] = rs
	}
	return rc
}
