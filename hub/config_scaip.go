package hub

import (
	"crypto/md5"
	"encoding/hex"
	"net"
	"strings"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
)

// SCAIPConfig is the SCAIP receiver (docs/scaip.md): SIP MESSAGE with
// application/scaip+xml from the alarm units municipalities already own.
// Off unless enabled.
type SCAIPConfig struct {
	Enabled bool `yaml:"enabled"`
	// UDP and TCP are listen addresses (the standard's 5060); empty turns
	// that transport off. TLS (sips, usually 5061) runs when a certificate
	// is configured.
	UDP string     `yaml:"udp"`
	TCP string     `yaml:"tcp"`
	TLS *TLSConfig `yaml:"tls"`
	// Realm of the Digest challenge; the accounts' HA1 hashes are made
	// with it. Default "vaka".
	Realm string `yaml:"realm"`
	// Accounts are the Digest logins: one per alarm unit, or one group
	// account shared by many units. Only HA1 hashes, never passwords.
	Accounts []SCAIPAccount `yaml:"accounts"`
	// Units are the registered alarm units: a request whose cid/did is not
	// here is answered snu 3 and counted, never accepted.
	Units []SCAIPUnit `yaml:"units"`
	// Heartbeat is the PI interval units are expected to keep (and are
	// told with hbi when they accept it); a unit silent for Missed
	// intervals raises the supervision alarm (0123 / offline). Default 5m.
	Heartbeat time.Duration `yaml:"heartbeat"`
	Missed    int           `yaml:"missed"`
	// MinHeartbeat is the shortest gap between two heartbeats of one unit
	// that is evaluated; closer ones are answered snu 0, counted as a flood
	// and not evaluated (they cannot say more than the first). Default 10s.
	MinHeartbeat time.Duration `yaml:"min_heartbeat"`
	// CallbackAnswer is how long a unit that asks to be called back
	// (cha 1, with a number in crd) is told to keep auto-answer open
	// (cre, whole minutes 1–60): a resident who fell cannot reach the
	// phone, and staff calling the number on the card within this time
	// are put through hands-free. 0s never accepts (no cre: the unit does
	// what it is set up to do). Default 15m.
	CallbackAnswer *time.Duration `yaml:"callback_answer"`
}

// CallbackMinutes is the cre to answer a callback request with, 0 for none.
func (c *SCAIPConfig) CallbackMinutes() int {
	if c.CallbackAnswer == nil {
		return int(DefaultSCAIPCallbackAnswer / time.Minute)
	}
	return int(*c.CallbackAnswer / time.Minute)
}

// SCAIPAccount is one Digest account.
type SCAIPAccount struct {
	Username string `yaml:"username"`
	// HA1 is hex MD5(username ":" realm ":" password), as RFC 2617 keeps
	// it (`vaka scaip ha1` prints it).
	HA1 string `yaml:"ha1"`
}

// SCAIPUnit registers one device of an alarm unit: the controller (cid)
// and optionally one of its devices (did).
type SCAIPUnit struct {
	Cid string `yaml:"cid"`
	// Did is the device id the unit sends; empty matches requests without
	// a did (the unit itself).
	Did string `yaml:"did"`
	// Account is the Digest username allowed to send for this unit.
	Account string `yaml:"account"`
	Site    string `yaml:"site"`
	// Device is the Vaka device id; Type its SCAIP dty code or name
	// (default personal_trigger), used when the unit sends a dty Vaka
	// does not know.
	Device   string `yaml:"device"`
	Type     string `yaml:"type"`
	Resident string `yaml:"resident"`
	Unit     string `yaml:"unit"`
	Room     string `yaml:"room"`
}

// SCAIP defaults.
const (
	DefaultSCAIPRealm        = "vaka"
	DefaultSCAIPHeartbeat    = 5 * time.Minute
	DefaultSCAIPMissed       = 2
	DefaultSCAIPMinHeartbeat = 10 * time.Second
	// DefaultSCAIPCallbackAnswer: the auto-answer window promised to a
	// unit that asks to be called back.
	DefaultSCAIPCallbackAnswer = 15 * time.Minute
)

// HA1 is RFC 2617's stored secret for a Digest account.
func HA1(username, realm, password string) string {
	s := md5.Sum([]byte(username + ":" + realm + ":" + password))
	return hex.EncodeToString(s[:])
}

// Supervision is the longest silence of a unit before its supervision alarm.
func (c *SCAIPConfig) Supervision() time.Duration {
	return c.Heartbeat*time.Duration(c.Missed) + c.Heartbeat/2
}

// validateSCAIP checks the scaip section and fills its defaults.
func (c *Config) validateSCAIP() []error {
	s := &c.SCAIP
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if s.Realm == "" {
		s.Realm = DefaultSCAIPRealm
	}
	if s.Heartbeat == 0 {
		s.Heartbeat = DefaultSCAIPHeartbeat
	}
	if s.Missed == 0 {
		s.Missed = DefaultSCAIPMissed
	}
	if s.MinHeartbeat == 0 {
		s.MinHeartbeat = DefaultSCAIPMinHeartbeat
	}
	if s.Heartbeat < time.Minute || s.Heartbeat > 1440*time.Minute || s.Heartbeat%time.Minute != 0 {
		add(config.Errorf("scaip.heartbeat", "must be whole minutes from 1m to 24h (SCAIP hbi)"))
	}
	if s.Missed < 1 {
		add(config.Errorf("scaip.missed", "must be at least 1"))
	}
	if d := s.CallbackAnswer; d != nil && *d != 0 && (*d < time.Minute || *d > 60*time.Minute || *d%time.Minute != 0) {
		add(config.Errorf("scaip.callback_answer", "must be 0s (never) or whole minutes from 1m to 60m (SCAIP cre)"))
	}
	if !s.Enabled {
		return errs
	}
	for _, a := range [...]struct{ f, v string }{{"scaip.udp", s.UDP}, {"scaip.tcp", s.TCP}} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			add(config.Errorf(a.f, "not host:port: %v", err))
		}
	}
	if t := s.TLS; t != nil {
		errs = append(errs, t.validate("scaip.tls")...)
		if t.Address == "" {
			add(config.Errorf("scaip.tls.address", "missing"))
		}
	}
	if s.UDP == "" && s.TCP == "" && s.TLS == nil {
		add(config.Errorf("scaip", "no listener: set udp, tcp or tls"))
	}
	accounts := map[string]bool{}
	for i, a := range s.Accounts {
		f := func(n string) string { return config.Field("scaip", "accounts", i, n) }
		if a.Username == "" || strings.ContainsAny(a.Username, " \t\r\n\":@") || len(a.Username) > 64 {
			add(config.Errorf(f("username"), "must be 1–64 characters without spaces, quotes, ':' or '@'"))
		} else if accounts[a.Username] {
			add(config.Errorf(f("username"), "duplicate account %q", a.Username))
		}
		accounts[a.Username] = true
		if len(a.HA1) != 32 || strings.ToLower(a.HA1) != a.HA1 {
			add(config.Errorf(f("ha1"), "must be the 32 lower-case hex digits of MD5(username:realm:password) (vaka scaip ha1)"))
		} else if _, err := hex.DecodeString(a.HA1); err != nil {
			add(config.Errorf(f("ha1"), "not hex"))
		}
	}
	sites := map[string]*Site{}
	for i := range c.Sites {
		sites[c.Sites[i].ID] = &c.Sites[i]
	}
	keys := map[string]bool{}
	devs := map[string]bool{}
	for i := range s.Units {
		u := &s.Units[i]
		f := func(n string) string { return config.Field("scaip", "units", i, n) }
		if u.Cid == "" || len(u.Cid) > 32 || strings.Trim(u.Cid, "0123456789") != "" {
			add(config.Errorf(f("cid"), "must be 1–32 digits"))
		}
		if len(u.Did) > 16 {
			add(config.Errorf(f("did"), "longer than 16 characters"))
		}
		if k := u.Cid + "/" + u.Did; keys[k] {
			add(config.Errorf(f("did"), "cid %s with this did is registered twice", u.Cid))
		} else {
			keys[k] = true
		}
		if !accounts[u.Account] {
			add(config.Errorf(f("account"), "not one of scaip.accounts"))
		}
		site, ok := sites[u.Site]
		if !ok {
			add(config.Errorf(f("site"), "unknown site %q", u.Site))
		}
		if err := event.ValidName(u.Device); err != nil {
			add(config.Errorf(f("device"), "%v", err))
		} else if ok && (siteHasDevice(site, u.Device) || devs[u.Site+"/"+u.Device]) {
			add(config.Errorf(f("device"), "duplicate device %q in site %q", u.Device, u.Site))
		}
		devs[u.Site+"/"+u.Device] = true
		if u.Type == "" {
			u.Type = "personal_trigger"
		}
		if _, err := event.ParseDeviceType(u.Type); err != nil {
			add(config.Errorf(f("type"), "%v", err))
		}
		for _, v := range [...]struct{ n, v string }{{"resident", u.Resident}, {"unit", u.Unit}, {"room", u.Room}} {
			if v.v != "" && event.ValidName(v.v) != nil {
				add(config.Errorf(f(v.n), "must be an identifier (letters, digits, - _ .), never a name"))
			}
		}
	}
	return errs
}

func siteHasDevice(s *Site, id string) bool {
	for _, g := range s.Gateways {
		for _, d := range g.Devices {
			if d.ID == id {
				return true
			}
		}
	}
	for _, d := range s.Trackers {
		if d.ID == id {
			return true
		}
	}
	return false
}

// addSCAIPUnits registers the SCAIP units' devices with the rules: no
// gateway (a unit speaks for itself), supervised by its heartbeats.
func (c *Config) addSCAIPUnits(rc *rules.Config) {
	if !c.SCAIP.Enabled {
		return
	}
	sup := c.SCAIP.Supervision()
	for _, u := range c.SCAIP.Units {
		rs := rc.Sites[u.Site]
		if rs == nil {
			continue
		}
		t, _ := event.ParseDeviceType(u.Type)
		d := sup
		rs.Devices[u.Device] = &rules.Device{ID: u.Device, Site: u.Site, Type: t, Resident: u.Resident,
			Unit: u.Unit, Room: u.Room, Supervision: &d}
	}
}
