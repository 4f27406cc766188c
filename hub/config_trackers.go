package hub

import (
	"net"
	"strings"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/trackers"
)

// OwnTracksUser is the MQTT login of one OwnTracks client. The username is
// also the <user> level of its topics; use a pseudonymous id, not a name.
type OwnTracksUser struct {
	Username     string `yaml:"username"`
	PasswordHash string `yaml:"password_hash"` // bcrypt (vaka hash-password)
}

// TrackersConfig sets listeners of the tracker protocols beside the hub's
// web server.
type TrackersConfig struct {
	// OsmAndListen, e.g. ":5055" (Traccar's port), serves the OsmAnd
	// protocol on every path of its own port, for trackers that can only be
	// given a host and port. Empty (the default): only http.address's
	// /osmand (and "/", for requests shaped like a tracker's).
	OsmAndListen string `yaml:"osmand_listen"`
}

// minOsmAndID is the shortest OsmAnd id accepted: the id is the only
// secret of that protocol, so it must not be guessable.
const minOsmAndID = 16

// TrackerRef is the registered device a tracker maps to.
type TrackerRef struct {
	Site, Gateway, Device string
	// Key opens the device's encrypted OwnTracks payloads; nil without
	// owntracks_key.
	Key *[trackers.OwnTracksKeySize]byte
}

// OwnTracksLogin is one OwnTracks MQTT credential, for the broker.
type OwnTracksLogin struct {
	Site, Username, PasswordHash string
}

// OwnTracksLogins lists the OwnTracks users of every site.
func (c *Config) OwnTracksLogins() []OwnTracksLogin {
	var out []OwnTracksLogin
	for _, s := range c.Sites {
		for _, u := range s.OwnTracksUsers {
			out = append(out, OwnTracksLogin{Site: s.ID, Username: u.Username, PasswordHash: u.PasswordHash})
		}
	}
	return out
}

// trackerIndex maps OwnTracks "<user>/<device>" keys and OsmAnd ids to
// registered devices. Validate first.
func (c *Config) trackerIndex() (ot, osm map[string]TrackerRef) {
	ot, osm = map[string]TrackerRef{}, map[string]TrackerRef{}
	put := func(ref TrackerRef, d Device) {
		if d.OwnTracks != "" {
			if d.OwnTracksKey != "" {
				ref.Key = trackers.OwnTracksKey(d.OwnTracksKey)
			}
			ot[d.OwnTracks] = ref
		}
		if d.OsmAndID != "" {
			osm[d.OsmAndID] = ref
		}
	}
	for _, s := range c.Sites {
		for _, g := range s.Gateways {
			for _, d := range g.Devices {
				put(TrackerRef{Site: s.ID, Gateway: g.ID, Device: d.ID}, d)
			}
		}
		for _, d := range s.Trackers {
			put(TrackerRef{Site: s.ID, Device: d.ID}, d) // no gateway
		}
	}
	return ot, osm
}

// validateSiteTrackers checks a site's gateway-less trackers: a device id
// unique in the site, type tracking_device (the default), and a way to
// report (owntracks or osmand_id), since no gateway can speak for it.
func (c *Config) validateSiteTrackers(i int, s *Site) []error {
	var errs []error
	ids := map[string]bool{}
	for _, g := range s.Gateways {
		for _, d := range g.Devices {
			ids[d.ID] = true
		}
	}
	units := map[string]bool{}
	for _, u := range s.Units {
		units[u.ID] = true
	}
	for k := range s.Trackers {
		d := &s.Trackers[k]
		df := func(name string) string { return config.Field("sites", i, "trackers", k, name) }
		if err := event.ValidName(d.ID); err != nil {
			errs = append(errs, config.Errorf(df("id"), "%v", err))
		} else if ids[d.ID] {
			errs = append(errs, config.Errorf(df("id"), "duplicate device %q in site %q", d.ID, s.ID))
		}
		ids[d.ID] = true
		if d.Type == "" {
			d.Type = "tracking_device"
		} else if t, err := event.ParseDeviceType(d.Type); err != nil || t != event.Tracker {
			errs = append(errs, config.Errorf(df("type"), "must be tracking_device: only trackers report without a gateway"))
		}
		if d.OwnTracks == "" && d.OsmAndID == "" {
			errs = append(errs, config.Errorf(df("id"), "a tracker without a gateway needs owntracks or osmand_id to report"))
		}
		if d.Resident != "" && event.ValidName(d.Resident) != nil {
			errs = append(errs, config.Errorf(df("resident"), "must be a pseudonymous id, not a name"))
		}
		if d.Unit != "" && len(s.Units) > 0 && !units[d.Unit] {
			errs = append(errs, config.Errorf(df("unit"), "unit %q is not listed under units", d.Unit))
		}
		if d.Room != "" {
			errs = append(errs, config.Errorf(df("room"), "a tracker has no room: it goes with the resident"))
		}
		if d.Exit {
			errs = append(errs, config.Errorf(df("exit"), "a tracker is not an exit door"))
		}
	}
	return errs
}

// addSiteTrackers registers a site's gateway-less trackers with the rules:
// their Gateway is "", which has no heartbeat and so never goes offline.
func addSiteTrackers(rs *rules.Site, s Site) {
	for _, d := range s.Trackers {
		rs.Devices[d.ID] = &rules.Device{ID: d.ID, Site: s.ID, Type: event.Tracker,
			Resident: d.Resident, Unit: d.Unit, Supervision: d.Supervision}
	}
}

// validateTrackers checks owntracks_users and the devices' owntracks and
// osmand_id keys: unique, well formed, a tracker's OwnTracks user listed in
// the same site (outside demo mode), and OsmAnd ids long enough to be secret.
func (c *Config) validateTrackers() []error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if a := c.Trackers.OsmAndListen; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			add(config.Errorf("trackers.osmand_listen", "want host:port or :port, e.g. \":5055\""))
		}
	}
	userSite := map[string]string{}
	for i, s := range c.Sites {
		for k, u := range s.OwnTracksUsers {
			f := func(name string) string { return config.Field("sites", i, "owntracks_users", k, name) }
			if err := event.ValidName(u.Username); err != nil {
				add(config.Errorf(f("username"), "%v", err))
			} else if _, dup := userSite[u.Username]; dup {
				add(config.Errorf(f("username"), "duplicate OwnTracks user %q (usernames are global to the broker)", u.Username))
			}
			userSite[u.Username] = s.ID
			if !isBcrypt(u.PasswordHash) {
				add(config.Errorf(f("password_hash"), "missing or not a bcrypt hash (make one with: vaka hash-password)"))
			}
		}
	}
	otKeys, osmIDs := map[string]bool{}, map[string]bool{}
	for i := range c.Sites {
		s := &c.Sites[i]
		errs = append(errs, c.validateSiteTrackers(i, s)...)
		type dev struct {
			d  *Device
			df func(string) string
			gw bool // under a gateway (site trackers' type is checked in validateSiteTrackers)
		}
		var all []dev
		for j := range s.Gateways {
			for k := range s.Gateways[j].Devices {
				all = append(all, dev{&s.Gateways[j].Devices[k], func(name string) string {
					return config.Field("sites", i, "gateways", j, "devices", k, name)
				}, true})
			}
		}
		for k := range s.Trackers {
			all = append(all, dev{&s.Trackers[k], func(name string) string { return config.Field("sites", i, "trackers", k, name) }, false})
		}
		for _, x := range all {
			d, df := x.d, x.df
			if d.Supervision != nil && *d.Supervision < 0 {
				add(d.errorf(df, "supervision", "must not be negative (0s turns supervision off)"))
			}
			if x.gw && (d.OwnTracks != "" || d.OsmAndID != "") && d.Type != "" {
				if t, err := event.ParseDeviceType(d.Type); err == nil && t != event.Tracker {
					add(config.Errorf(df("type"), "must be tracking_device for a device with owntracks or osmand_id"))
				}
			}
			if d.OwnTracks != "" {
				user, dv, ok := strings.Cut(d.OwnTracks, "/")
				switch {
				case !ok || event.ValidName(user) != nil || event.ValidName(dv) != nil:
					add(config.Errorf(df("owntracks"), "want \"<user>/<device>\" as in the topic owntracks/<user>/<device>"))
				case otKeys[d.OwnTracks]:
					add(config.Errorf(df("owntracks"), "duplicate: another device maps %q", d.OwnTracks))
				case userSite[user] != "" && userSite[user] != s.ID:
					add(config.Errorf(df("owntracks"), "user %q belongs to site %q, not this site", user, userSite[user]))
				case userSite[user] == "" && !c.Demo && !c.MQTT.IsExternal():
					add(config.Errorf(df("owntracks"), "user %q is not listed in this site's owntracks_users", user))
				}
				otKeys[d.OwnTracks] = true
			}
			if d.OwnTracksKey != "" {
				switch n := len(d.OwnTracksKey); {
				case d.OwnTracks == "":
					add(config.Errorf(df("owntracks_key"), "only for a device with owntracks"))
				case n < 8 || n > trackers.OwnTracksKeySize:
					add(config.Errorf(df("owntracks_key"), "want 8–%d bytes: the app cuts a longer secret to %d (use 16 or more random characters)", trackers.OwnTracksKeySize, trackers.OwnTracksKeySize))
				}
			}
			if d.OsmAndID != "" {
				switch {
				case len(d.OsmAndID) < minOsmAndID || len(d.OsmAndID) > 128 || !osmandIDChars(d.OsmAndID):
					add(config.Errorf(df("osmand_id"), "want %d–128 letters and digits: the id is the tracker's only secret (e.g. openssl rand -hex 16)", minOsmAndID))
				case osmIDs[d.OsmAndID]:
					add(config.Errorf(df("osmand_id"), "duplicate: another device has this id"))
				}
				osmIDs[d.OsmAndID] = true
			}
		}
	}
	return errs
}

func osmandIDChars(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
