package hub

import (
	"errors"
	"net/netip"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/pilot"
	"github.com/vaka-care/vaka/roster"
	"github.com/vaka-care/vaka/rules"
)

// Config is the hub's configuration file. See docs/config.md and
// deploy/hub.example.yaml.
type Config struct {
	// DataDir holds the alarm journal. Required outside demo mode.
	DataDir string `yaml:"data_dir"`
	// Demo allows anonymous MQTT and prints demo logins. Never in production.
	Demo     bool        `yaml:"demo"`
	Timezone string      `yaml:"timezone"`
	MQTT     MQTTConfig  `yaml:"mqtt"`
	HTTP     HTTPConfig  `yaml:"http"`
	Store    StoreConfig `yaml:"store"`
	Users    []User      `yaml:"users"`
	Sites    []Site      `yaml:"sites"`
	// Routing is who is alerted and how alarms escalate (docs/routing.md).
	Routing notify.Config `yaml:"routing"`
	// Pilot is pilot evidence: InfluxDB export and trials (docs/config.md).
	Pilot pilot.Config `yaml:"pilot"`
	// Trackers sets the tracker protocols' own listeners (config_trackers.go).
	Trackers TrackersConfig `yaml:"trackers"`
	// Roster is the shift roster file (config_roster.go).
	Roster RosterConfig `yaml:"roster"`
	// SCAIP is the receiver for SCAIP alarm units (config_scaip.go).
	SCAIP SCAIPConfig `yaml:"scaip"`
	// Metrics sets where /metrics is served and its token (config_metrics.go).
	Metrics MetricsConfig  `yaml:"metrics"`
	Loc     *time.Location `yaml:"-"`

	// Cluster makes the hub one of a redundant group (config_cluster.go).
	Cluster *ClusterConfig `yaml:"cluster"`
	// Runtime sets the Go GC of the hub process (config_runtime.go).
	Runtime RuntimeConfig `yaml:"runtime"`

	included     []string       // files read by Include (devices_file), for reload
	rosterShifts []roster.Shift // read from Roster.File by Include
	rosterPath   string         // and its path, for errors
}

// MQTTConfig sets the embedded broker's listeners, or an external broker.
type MQTTConfig struct {
	TCP       string     `yaml:"tcp"`       // e.g. 0.0.0.0:1883
	WebSocket string     `yaml:"websocket"` // e.g. 0.0.0.0:1882; empty disables
	TLS       *TLSConfig `yaml:"tls"`       // adds a TLS listener
	// Broker is "embedded" (default) or "external": the hub then starts
	// no broker and consumes from External (config_external.go).
	Broker   string          `yaml:"broker"`
	External *ExternalBroker `yaml:"external"`
	// Limits bound connections, packet sizes and queues of the embedded
	// broker (config_mqttlimits.go); absent means safe defaults.
	Limits MQTTLimits `yaml:"limits"`
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
	// ShowNamesTo lists the roles that see residents' names (from
	// residents[].name) in the staff app. Default: staff and lead.
	ShowNamesTo []string `yaml:"show_names_to"`
	// PushContact is the VAPID subject push services may contact about
	// this hub's pushes: "mailto:drift@kommun.se" or an https URL.
	PushContact string `yaml:"push_contact"`
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes)
	// whose X-Forwarded-For names the client for the login throttle.
	// Empty: the header is ignored and the TCP peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// BodyTimeout bounds reading one request body (default 15s);
	// IdleTimeout closes idle keep-alive connections (default 2m). The
	// live alarm stream is bounded by neither.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShowAccessTo lists the roles that see door codes and key boxes
	// (units[].access, residents[].access). Default: staff.
	ShowAccessTo []string `yaml:"show_access_to"`
	// MapTiles is a map tile URL template with {z}, {x} and {y}, e.g. a
	// tile server on the municipality's network. Empty (the default): the
	// staff app's map draws no tiles and calls no outside server.
	MapTiles string `yaml:"map_tiles"`
	// StreamStallTimeout cuts a staff stream whose connection accepts no
	// write for this long while frames wait (default 30s); a screen that
	// is behind but reading is never cut. StreamQueueMax bounds the
	// distinct care alarms waiting for one screen, only to keep memory
	// finite (default 1,000,000; package feed).
	StreamStallTimeout time.Duration `yaml:"stream_stall_timeout"`
	StreamQueueMax     int           `yaml:"stream_queue_max"`
}

// TrustedPrefixes parses TrustedProxies (validated by Validate).
func (c HTTPConfig) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefix reads "10.0.0.0/8" or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// StoreConfig tunes the alarm journal's durability. Every transition is
// written to the OS before its PUBACK either way; these only bound what a
// power cut (not a crash) can lose.
type StoreConfig struct {
	// SyncEvery is the group-commit window: the longest a written
	// transition waits for fsync. Zero means store.DefaultSyncEvery.
	SyncEvery     time.Duration `yaml:"sync_every"`
	SyncEachWrite bool          `yaml:"sync_each_write"`
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
	// RoleTechnician installs gateways and pairs devices: it may use the
	// device-health page and API (/devices, /api/v1/devices). Residents'
	// names are not shown to it unless http.show_names_to lists it.
	RoleTechnician = "technician"
)

// Site is one dementia unit building or home-care area.
type Site struct {
	ID    string `yaml:"id"`
	Name  string `yaml:"name"`
	Night Night  `yaml:"night"`
	// Address is the building's street address (config_where.go).
	Address string `yaml:"address"`
	// Plan is the site's default individual plan (unit/home default).
	Plan PlanConfig `yaml:"plan"`
	// Supervision is the longest silence per device type before a
	// device_silent alarm, e.g. personal_trigger: 3m. Merged over the
	// defaults; 0s turns supervision off for that type.
	Supervision map[string]time.Duration `yaml:"supervision"`
	Units       []Unit                   `yaml:"units"`
	Residents   []Resident               `yaml:"residents"`
	Geofences   []Geofence               `yaml:"geofences"`
	Gateways    []Gateway                `yaml:"gateways"`
	// DevicesFile is a CSV device inventory (columns gateway, id, type and
	// optionally resident, unit, room, exit) whose rows are added to the
	// gateways above: a region's 250,000 call buttons come from the alarm
	// provider's register, not from hand-written YAML (devices_file.go).
	// Relative to the config file's directory.
	DevicesFile string `yaml:"devices_file"`
	// OwnTracksUsers are the MQTT logins of OwnTracks phones and trackers
	// (docs/trackers.md): each may publish only under owntracks/<username>/.
	OwnTracksUsers []OwnTracksUser `yaml:"owntracks_users"`
	// Trackers are tracking devices that report straight to the hub (a
	// home with only a GPS watch or phone): no gateway to configure, so
	// none to raise gateway_offline for (config_trackers.go).
	Trackers []Device `yaml:"trackers"`
}

// PlanConfig is a partial individual plan: rule name → overrides.
type PlanConfig struct {
	Rules map[string]RuleOverride `yaml:"rules"`
	// Tillsyn is digital night supervision, per resident (config_tillsyn.go).
	Tillsyn *TillsynConfig `yaml:"tillsyn"`
}

// RuleOverride sets one rule in a plan; absent fields inherit.
type RuleOverride struct {
	Enabled     *bool          `yaml:"enabled"`
	Hold        *time.Duration `yaml:"hold"`
	Window      *Night         `yaml:"window"`
	MaxAccuracy *float64       `yaml:"max_accuracy"`
}

// Resident is one person's individual plan. Only a pseudonymous id: names
// live in the municipality's care records, not here.
type Resident struct {
	ID string `yaml:"id"`
	// Name is shown to the roles in http.show_names_to and nowhere else:
	// never in logs, the journal, metrics or InfluxDB. Optional.
	Name      string     `yaml:"name"`
	Unit      string     `yaml:"unit"`
	Night     *Night     `yaml:"night"`
	Plan      PlanConfig `yaml:"plan"`
	Consent   Consent    `yaml:"consent"`
	Geofences []string   `yaml:"geofences"`
	// Address is the resident's own home (home care); Access how to get
	// in. Both are personal: see config_where.go for who sees them.
	Address string  `yaml:"address"`
	Access  *Access `yaml:"access"`
}

// Consent records the resident's (or their representative's) consent to
// digital supervision rules: which rules, who recorded it and when. A rule
// that needs consent does not run without it.
type Consent struct {
	Rules      []string `yaml:"rules"`
	RecordedBy string   `yaml:"recorded_by"`
	RecordedAt string   `yaml:"recorded_at"` // YYYY-MM-DD
	Note       string   `yaml:"note"`
}

// Geofence is a safe area: a circle or a GeoJSON polygon.
type Geofence struct {
	ID      string  `yaml:"id"`
	Circle  *Circle `yaml:"circle"`
	GeoJSON string  `yaml:"geojson"`
}

// Circle is a centre and a radius in metres.
type Circle struct {
	Lat    float64 `yaml:"lat"`
	Lon    float64 `yaml:"lon"`
	Radius float64 `yaml:"radius"`
}

// Night is a night window in local wall-clock time.
type Night struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

// Unit is a ward or a home within a site, with its own night window and
// plan if set.
type Unit struct {
	ID    string     `yaml:"id"`
	Name  string     `yaml:"name"`
	Night *Night     `yaml:"night"`
	Plan  PlanConfig `yaml:"plan"`
	// Address, Rooms (room id → name), Access and FloorPlan say where the
	// unit is and how to get in (config_where.go).
	Address   string            `yaml:"address"`
	Rooms     map[string]string `yaml:"rooms"`
	Access    *Access           `yaml:"access"`
	FloorPlan *FloorPlan        `yaml:"floor_plan"`
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
	// OwnTracks maps an OwnTracks client, "<user>/<device>" as in its topic
	// owntracks/<user>/<device>, to this device (type tracking_device).
	OwnTracks string `yaml:"owntracks"`
	// OsmAndID is the id an OsmAnd/Traccar-protocol tracker reports with.
	// That protocol has no login: the id is the secret (docs/trackers.md).
	OsmAndID string `yaml:"osmand_id"`
	// Radio is how the device reaches its gateway when that limits how
	// often it can be heard: zigbee (battery) or zigbee_mains (radio.go).
	// Empty for SCAIP and wired devices.
	Radio string `yaml:"radio"`
	// OwnTracksKey is the secret of the OwnTracks app's payload encryption
	// (docs/trackers.md); set it when the app encrypts.
	OwnTracksKey string `yaml:"owntracks_key"`
	// Supervision is the device's own longest silence, overriding its
	// type's (e.g. 24h for a watch that charges on a night stand); it may
	// not be shorter than its radio can deliver. 0s turns it off.
	Supervision *time.Duration `yaml:"supervision"`
	// Placement says where the device sits or is worn, in Swedish and
	// English ("på handleden", "on the wrist"): the staff app names the
	// device by its type and this.
	Placement   string `yaml:"placement"`
	PlacementEN string `yaml:"placement_en"`

	from string // the devices_file this device was read from, if any
	line int    // and its line there
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
	if c.MQTT.External != nil || c.MQTT.Broker != "" && c.MQTT.Broker != BrokerEmbedded {
		errs = append(errs, c.MQTT.validateExternal()...)
	} else if c.MQTT.TCP == "" && c.MQTT.WebSocket == "" && c.MQTT.TLS == nil {
		add(config.Errorf("mqtt", "no listener: set tcp, websocket or tls"))
	}
	if t := c.MQTT.TLS; t != nil {
		errs = append(errs, t.validate("mqtt.tls")...)
	}
	errs = append(errs, c.MQTT.Limits.validate("mqtt.limits")...)
	if c.HTTP.Address == "" {
		add(config.Errorf("http.address", "missing"))
	}
	errs = append(errs, c.Metrics.validate()...)
	errs = append(errs, c.Runtime.validate()...)
	errs = append(errs, c.validateCluster()...)
	if t := c.HTTP.TLS; t != nil {
		errs = append(errs, t.validate("http.tls")...)
	}
	if c.HTTP.SessionTTL == 0 {
		c.HTTP.SessionTTL = 12 * time.Hour
	}
	if d := c.Store.SyncEvery; d != 0 && (d < time.Millisecond || d > time.Second) {
		add(config.Errorf("store.sync_every", "must be between 1ms and 1s (a power cut can lose what was written in this window)"))
	}
	if c.HTTP.ShowNamesTo == nil {
		c.HTTP.ShowNamesTo = []string{RoleStaff, RoleLead}
	}
	if pc := c.HTTP.PushContact; pc != "" && !strings.HasPrefix(pc, "mailto:") && !strings.HasPrefix(pc, "https://") {
		add(config.Errorf("http.push_contact", "must start with mailto: or https://"))
	}
	for i, p := range c.HTTP.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			add(config.Errorf(config.Field("http", "trusted_proxies", i), "not an address or CIDR prefix: %q", p))
		}
	}
	if d := c.HTTP.BodyTimeout; d < 0 || d > 0 && d < time.Second {
		add(config.Errorf("http.body_timeout", "must be at least 1s"))
	}
	if d := c.HTTP.IdleTimeout; d < 0 || d > 0 && d < time.Second {
		add(config.Errorf("http.idle_timeout", "must be at least 1s"))
	}
	if d := c.HTTP.StreamStallTimeout; d < 0 || d > 0 && (d < 5*time.Second || d > time.Hour) {
		add(config.Errorf("http.stream_stall_timeout", "must be between 5s and 1h"))
	}
	if n := c.HTTP.StreamQueueMax; n < 0 || n > 0 && n < 10000 {
		add(config.Errorf("http.stream_queue_max", "must be at least 10000 (it only bounds memory; a reading screen is never cut below it)"))
	}
	for i, r := range c.HTTP.ShowNamesTo {
		if r != RoleStaff && r != RoleLead && r != RoleAdmin {
			add(config.Errorf(config.Field("http", "show_names_to", i), "must be staff, lead or admin"))
		}
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
		case RoleStaff, RoleLead, RoleAdmin, RoleTechnician:
		case "":
			add(config.Errorf(f("role"), "missing: staff, lead, admin or technician"))
		default:
			add(config.Errorf(f("role"), "must be staff, lead, admin or technician"))
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
		errs = append(errs, s.Plan.check(f("plan"))...)
		for k, u := range s.Units {
			errs = append(errs, u.Plan.check(f("units", k, "plan"))...)
		}
		for typ, d := range s.Supervision {
			if _, err := event.ParseDeviceType(typ); err != nil {
				add(config.Errorf(f("supervision", typ), "unknown device type"))
			} else if d < 0 || (d > 0 && d < 10*time.Second) {
				add(config.Errorf(f("supervision", typ), "must be 0s (off) or at least 10s"))
			}
		}
		fences := map[string]bool{}
		for k, g := range s.Geofences {
			if err := event.ValidName(g.ID); err != nil {
				add(config.Errorf(f("geofences", k, "id"), "%v", err))
			}
			fences[g.ID] = true
			if _, err := g.fence(); err != nil {
				add(config.Errorf(f("geofences", k), "%v", err))
			}
		}
		residents := map[string]bool{}
		for k, r := range s.Residents {
			rf := func(parts ...any) string { return f(append([]any{"residents", k}, parts...)...) }
			if err := event.ValidName(r.ID); err != nil {
				add(config.Errorf(rf("id"), "%v (a pseudonymous id, never a name)", err))
			} else if residents[r.ID] {
				add(config.Errorf(rf("id"), "duplicate resident %q", r.ID))
			}
			residents[r.ID] = true
			if r.Unit != "" && len(s.Units) > 0 && !units[r.Unit] {
				add(config.Errorf(rf("unit"), "unit %q is not listed under units", r.Unit))
			}
			if r.Night != nil {
				if _, err := rules.ParseWindow(r.Night.Start, r.Night.End); err != nil {
					add(config.Errorf(rf("night"), "%v", err))
				}
			}
			errs = append(errs, r.Plan.check(rf("plan"))...)
			for m, name := range r.Consent.Rules {
				if info, ok := rules.Rules[name]; !ok || !info.Consent {
					add(config.Errorf(rf("consent", "rules", m), "%q is not a rule that needs consent (%s)", name, consentRules()))
				}
			}
			if len(r.Consent.Rules) > 0 {
				if r.Consent.RecordedBy == "" {
					add(config.Errorf(rf("consent", "recorded_by"), "missing: who recorded the consent"))
				}
				if _, err := time.Parse("2006-01-02", r.Consent.RecordedAt); err != nil {
					add(config.Errorf(rf("consent", "recorded_at"), "missing or not a date YYYY-MM-DD"))
				}
			}
			for m, id := range r.Geofences {
				if !fences[id] {
					add(config.Errorf(rf("geofences", m), "no geofence %q in this site", id))
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
			// With an external broker, that broker authenticates gateways.
			if (!c.Demo && !c.MQTT.IsExternal() || g.PasswordHash != "") && !isBcrypt(g.PasswordHash) {
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
					add(d.errorf(df, "id", "%v", err))
				} else if devs[d.ID] {
					add(d.errorf(df, "id", "duplicate device %q in site %q", d.ID, s.ID))
				}
				devs[d.ID] = true
				if d.Type == "" {
					add(d.errorf(df, "type", "missing: e.g. personal_trigger, door_sensor, bed_monitor"))
				} else if _, err := event.ParseDeviceType(d.Type); err != nil {
					add(d.errorf(df, "type", "unknown device type %q", d.Type))
				}
				if d.Resident != "" && event.ValidName(d.Resident) != nil {
					add(d.errorf(df, "resident", "must be a pseudonymous id, not a name"))
				}
				if d.Unit != "" && len(s.Units) > 0 && !units[d.Unit] {
					add(d.errorf(df, "unit", "unit %q is not listed under units", d.Unit))
				}
				errs = append(errs, checkRadio(&s, &d, df)...)
			}
		}
		errs = append(errs, checkTillsyn(&s, f)...)
	}
	errs = append(errs, c.validateTrackers()...)
	errs = append(errs, c.validateSCAIP()...)
	errs = append(errs, c.expandRoleReceivers()...)
	errs = append(errs, c.Routing.Validate("routing", c.Usernames())...)
	errs = append(errs, c.Pilot.Check("pilot")...)
	errs = append(errs, c.validateRoster()...)
	errs = append(errs, c.validateWhere()...)
	return errors.Join(errs...)
}

// ResidentNames maps "site/resident" to display names.
func (c *Config) ResidentNames() map[string]string {
	out := map[string]string{}
	for _, s := range c.Sites {
		for _, r := range s.Residents {
			if r.Name != "" {
				out[s.ID+"/"+r.ID] = r.Name
			}
		}
	}
	return out
}

// Usernames lists the staff accounts' usernames in config order.
func (c *Config) Usernames() []string {
	out := make([]string, 0, len(c.Users))
	for _, u := range c.Users {
		out = append(out, u.Username)
	}
	return out
}

// RouteTree compiles the routing section (the default route when it is
// absent). Validate first.
func (c *Config) RouteTree() (*notify.Tree, error) {
	if c.Routing.Route == nil && len(c.Routing.Receivers) == 0 {
		// The default route alerts care staff on duty, not technicians
		// (a technician's phone must not be where a call button rings),
		// nor leads and admins (config_roster.go).
		def := c.defaultRouting()
		return def.Compile(c.Usernames(), c.Loc)
	}
	return c.Routing.Compile(c.Usernames(), c.Loc)
}

func consentRules() string {
	var out []string
	for _, n := range rules.RuleNames() {
		if rules.Rules[n].Consent {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

func (p PlanConfig) check(field string) []error {
	var errs []error
	for name, o := range p.Rules {
		info, ok := rules.Rules[name]
		if !ok || !info.Planned {
			errs = append(errs, config.Errorf(field+".rules."+name, "not a rule a plan can set; plannable: %s", plannable()))
			continue
		}
		if o.Hold != nil && *o.Hold < 0 {
			errs = append(errs, config.Errorf(field+".rules."+name+".hold", "must not be negative"))
		}
		if o.Window != nil {
			if _, err := rules.ParseWindow(o.Window.Start, o.Window.End); err != nil {
				errs = append(errs, config.Errorf(field+".rules."+name+".window", "%v", err))
			}
		}
		if o.MaxAccuracy != nil && *o.MaxAccuracy <= 0 {
			errs = append(errs, config.Errorf(field+".rules."+name+".max_accuracy", "must be positive (metres)"))
		}
	}
	return errs
}

func plannable() string {
	var out []string
	for _, n := range rules.RuleNames() {
		if rules.Rules[n].Planned {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

func (p PlanConfig) overrides() map[string]rules.Override {
	out := map[string]rules.Override{}
	for name, o := range p.Rules {
		ov := rules.Override{Enabled: o.Enabled, Hold: o.Hold, MaxAccuracy: o.MaxAccuracy}
		if o.Window != nil {
			w, _ := rules.ParseWindow(o.Window.Start, o.Window.End)
			ov.Window = &w
		}
		out[name] = ov
	}
	return out
}

func (g Geofence) fence() (*rules.Fence, error) {
	switch {
	case g.Circle != nil && g.GeoJSON != "":
		return nil, errors.New("set circle or geojson, not both")
	case g.Circle != nil:
		f := &rules.Fence{ID: g.ID, Circle: &rules.Circle{Lat: g.Circle.Lat, Lon: g.Circle.Lon, Radius: g.Circle.Radius}}
		return f, f.Validate()
	case g.GeoJSON != "":
		f, err := rules.ParseGeoJSON(g.ID, []byte(g.GeoJSON))
		return &f, err
	}
	return nil, errors.New("missing: circle {lat, lon, radius} or geojson")
}

// DefaultSupervision is the longest silence per device type: call buttons
// and fall detectors at minute level (they send a radio test every minute;
// a national pilot found daily checks far too slow), other sensors hourly.
var DefaultSupervision = map[event.DeviceType]time.Duration{
	event.PersonalTrigger: 3 * time.Minute,
	event.FixedTrigger:    3 * time.Minute,
	event.FallDetector:    3 * time.Minute,
	event.DoorSensor:      2 * time.Hour,
	event.BedMonitor:      2 * time.Hour,
	event.MatSensor:       2 * time.Hour,
	event.ChairMonitor:    2 * time.Hour,
	event.Occupancy:       2 * time.Hour,
	event.WanderSensor:    2 * time.Hour,
	// A watch or phone lies still on a night stand all night and many send
	// nothing while still: 12 h covers a night without a false alarm and
	// still catches a tracker that died during the day (docs/config.md).
	event.Tracker: 12 * time.Hour,
	// Hazard detectors without a radio of their own: as other sensors.
	event.SmokeDetector:     2 * time.Hour,
	event.WaterLeakDetector: 2 * time.Hour,
	event.GasDetector:       2 * time.Hour,
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
		sitePlan := rules.DefaultPlan().With("site", s.Plan.overrides())
		rs := &rules.Site{ID: s.ID, Night: night, Units: map[string]rules.Window{}, Plan: sitePlan,
			UnitPlans: map[string]rules.Plan{}, Residents: map[string]*rules.Resident{},
			Devices: map[string]*rules.Device{}, Gateways: map[string]*rules.Gateway{},
			Supervision: map[event.DeviceType]time.Duration{}}
		for t, d := range DefaultSupervision {
			rs.Supervision[t] = d
		}
		for name, d := range s.Supervision {
			t, _ := event.ParseDeviceType(name)
			rs.Supervision[t] = d
		}
		for _, u := range s.Units {
			if u.Night != nil {
				w, _ := rules.ParseWindow(u.Night.Start, u.Night.End)
				rs.Units[u.ID] = w
			}
			rs.UnitPlans[u.ID] = sitePlan.With("unit", u.Plan.overrides())
		}
		fences := map[string]*rules.Fence{}
		for _, g := range s.Geofences {
			if f, err := g.fence(); err == nil {
				fences[g.ID] = f
			}
		}
		for _, r := range s.Residents {
			base, ok := rs.UnitPlans[r.Unit]
			if !ok {
				base = sitePlan
			}
			res := &rules.Resident{ID: r.ID, Unit: r.Unit, Plan: base.With("resident", r.Plan.overrides()),
				Consent: map[string]bool{}}
			if r.Night != nil {
				w, _ := rules.ParseWindow(r.Night.Start, r.Night.End)
				res.Night = &w
			}
			for _, c := range r.Consent.Rules {
				res.Consent[c] = true
			}
			for _, id := range r.Geofences {
				if f := fences[id]; f != nil {
					res.Fences = append(res.Fences, f)
				}
			}
			rs.Residents[r.ID] = res
		}
		for _, g := range s.Gateways {
			rs.Gateways[g.ID] = &rules.Gateway{ID: g.ID, Site: s.ID, Heartbeat: g.Heartbeat, Missed: g.Missed}
			for _, d := range g.Devices {
				t, _ := event.ParseDeviceType(d.Type)
				sup, _ := supervisionOf(&s, &d)
				rs.Devices[d.ID] = &rules.Device{ID: d.ID, Site: s.ID, Gateway: g.ID, Type: t,
					Resident: d.Resident, Unit: d.Unit, Room: d.Room, Exit: d.Exit, Supervision: &sup, Links: Radios[d.Radio].Links}
			}
		}
		addSiteTrackers(rs, s)
		rc.Sites[s.ID] = rs
	}
	c.addSCAIPUnits(&rc)
	return rc
}
