package hub

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/roster"
)

// RosterConfig names the shift roster (roster/): who is on duty where and
// when, for route receivers with roster: on_duty.
type RosterConfig struct {
	// File is a CSV roster (columns user, site, unit, date, start, end),
	// relative to the config file's directory; re-read on reload.
	File string `yaml:"file"`
}

// RosterFile is where shifts set through the API are kept.
const RosterFile = "roster.json"

// includeRoster reads roster.file (from Include) so its errors name the
// roster file's own lines, and so a reload picks up a new roster.
func (c *Config) includeRoster(dir string) error {
	c.rosterShifts = nil
	c.resolveFloorPlans(dir)
	if c.Roster.File == "" {
		return nil
	}
	path := c.Roster.File
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	c.included = append(c.included, path)
	c.rosterPath = path
	f, err := os.Open(path)
	if err != nil {
		return config.Errorf("roster.file", "%v", err)
	}
	defer f.Close()
	shifts, err := roster.ParseCSV(path, f)
	c.rosterShifts = shifts
	return err
}

// validateRoster checks that every shift names an account and a site.
func (c *Config) validateRoster() []error {
	var errs []error
	users := map[string]bool{}
	for _, u := range c.Users {
		users[u.Username] = true
	}
	sites := map[string]bool{}
	for _, s := range c.Sites {
		sites[s.ID] = true
	}
	for _, s := range c.rosterShifts {
		if !users[s.User] {
			errs = append(errs, &config.Error{File: c.rosterPath, Line: s.Line(), Field: "user", Msg: fmt.Sprintf("%q is no account under users", s.User)})
		}
		if s.Site != "" && !sites[s.Site] {
			errs = append(errs, &config.Error{File: c.rosterPath, Line: s.Line(), Field: "site", Msg: fmt.Sprintf("%q is not under sites", s.Site)})
		}
	}
	return errs
}

// RosterShifts are the shifts read from roster.file.
func (c *Config) RosterShifts() []roster.Shift { return c.rosterShifts }

// OpenRoster returns the roster: the file's shifts and the API's, kept in
// the data directory (in memory only without one).
func (c *Config) OpenRoster() (*roster.Roster, error) {
	path := ""
	if c.DataDir != "" {
		path = filepath.Join(c.DataDir, RosterFile)
	}
	r, err := roster.Open(c.Loc, path)
	if err != nil {
		return nil, err
	}
	r.SetFile(c.rosterShifts)
	return r, nil
}

// defaultRouting is the route tree when routing: is absent: care alarms
// wake the staff on duty by the roster, or every staff member when nobody
// is on duty (no roster yet). Leads and admins are not woken: they follow
// the pilot by day. Without any staff account, every account but
// technicians', so an alarm is never routed to nobody.
func (c *Config) defaultRouting() notify.Config {
	var staff, care []string
	for _, u := range c.Users {
		if u.Role == RoleStaff {
			staff = append(staff, u.Username)
		}
		if u.Role != RoleTechnician {
			care = append(care, u.Username)
		}
	}
	if len(staff) == 0 {
		staff = care
	}
	if len(staff) == 0 {
		return notify.Config{}
	}
	off := 0 * notify.DefaultRemindEvery
	rem := notify.DefaultRemindEvery
	return notify.Config{
		Receivers: []notify.Receiver{{Name: notify.DefaultReceiver, Roster: notify.RosterOnDuty, Users: staff}},
		Route:     &notify.Route{Receiver: notify.DefaultReceiver, DeliveryTimeout: &off, AcceptTimeout: &off, RemindEvery: &rem},
	}
}
