package httpapi

import (
	"errors"
	"net/http"
	"slices"
	"sort"
)

// Roles, as in hub.Config's users[].role (docs/roles.md has the Swedish
// names and the reasons).
const (
	RoleStaff      = "staff"      // nattpersonal, personal
	RoleLead       = "lead"       // innovationsledare, pilotledare
	RoleAdmin      = "admin"      // administratör
	RoleTechnician = "technician" // tekniker
)

// Roles returns every role, for tests and docs.
func Roles() []string { return []string{RoleStaff, RoleLead, RoleAdmin, RoleTechnician} }

// Access is what one route needs.
type Access struct {
	// Public routes need no login: they serve no personal data (the app's
	// files, health) or authenticate the request themselves (a push
	// receipt's token, a tracker's device id).
	Public bool
	// Roles may use the route after login; everyone else gets 403.
	Roles []string
	// Technical lists roles (among Roles) limited to technical alarms on
	// this route: the handler refuses, or leaves out, care alarms (call,
	// fall, wander and any other non-technical kind) for them.
	Technical []string
}

var (
	everyone     = Access{Roles: Roles()}
	carers       = Access{Roles: []string{RoleStaff, RoleAdmin, RoleTechnician}, Technical: []string{RoleTechnician}}
	readAlarms   = Access{Roles: Roles(), Technical: []string{RoleTechnician}}
	pilotReaders = Access{Roles: []string{RoleLead, RoleAdmin}}
	public       = Access{Public: true}
)

// policy is who may use which route: one table for the whole web server,
// keyed by "METHOD pattern" exactly as the route is mounted (chi
// patterns), including the routes other packages mount through
// Options.Routes and Options.PublicRoutes. A route that is not in this
// table is refused (403) for everyone and logged at start: a new endpoint
// is closed until someone decides who may use it. docs/roles.md is the
// same table in words; keep them together.
// It is unexported so no importer can widen it at run time.
var policy = map[string]Access{
	// The staff app's files and health: no data.
	"GET /":              public,
	"GET /static/*":      public,
	"GET /sw.js":         public,
	"GET /healthz":       public,
	"GET /api/v1/hub":    public, // which hub of a redundant group, no personal data
	"GET /metrics":       public, // counters only, never ids of residents
	"POST /api/v1/login": public,
	// Authenticated by the push subscription's receipt token.
	"POST /api/v1/alarms/{id}/delivered": public,
	// Trackers cannot log in: the device id is the secret (docs/trackers.md).
	"GET /osmand":  public,
	"POST /osmand": public,
	// The device page's shell: its data comes from /api/v1/devices.
	"GET /devices":                    public,
	"GET /devices/static/devices.js":  public,
	"GET /devices/static/devices.css": public,

	"GET /api/v1/me":      everyone,
	"POST /api/v1/logout": everyone,

	// Alarms: everyone reads (technicians only technical alarms); staff
	// and admin answer every alarm, technicians technical ones; leads
	// follow the pilot, they do not answer alarms.
	"GET /api/v1/alarms":      readAlarms,
	"GET /api/v1/alarms/{id}": readAlarms,
	// A group alarm's members (technical alarms, docs/routing.md).
	"GET /api/v1/alarms/{id}/members":   readAlarms,
	"GET /api/v1/stream":                readAlarms,
	"POST /api/v1/alarms/{id}/accept":   carers,
	"POST /api/v1/alarms/{id}/presence": carers,
	"POST /api/v1/alarms/{id}/resolve":  carers,
	"POST /api/v1/alarms/{id}/shown":    carers,
	// Taking over a colleague's alarm is answering it (issue 15).
	"POST /api/v1/alarms/{id}/take_over": carers,
	// Ending a user's sessions (lost phone): the admin only.
	"POST /api/v1/admin/sessions/revoke": {Roles: []string{RoleAdmin}},

	// Phones of every role may take pushes (routing decides who gets one).
	"GET /api/v1/push/key":            everyone,
	"POST /api/v1/push/subscriptions": everyone,

	// Which rules watch a resident: plans and consent are care data.
	"GET /api/v1/sites/{site}/residents/{resident}/rules": {Roles: []string{RoleStaff, RoleLead, RoleAdmin}},

	// Silences: staff know when a resident is in hospital, leads and
	// admins plan; technicians may silence only technical rules (a device
	// being replaced). Call buttons and falls are never silenced by
	// resident (hub/silence.go).
	"GET /api/v1/silences":               readAlarms,
	"POST /api/v1/silences":              readAlarms,
	"DELETE /api/v1/silences/{id}":       readAlarms,
	"GET /api/v1/devices":                {Roles: []string{RoleLead, RoleAdmin, RoleTechnician}},
	"GET /api/v1/admin/routing":          {Roles: []string{RoleAdmin}},
	"GET /pilot":                         pilotReaders,
	"GET /pilot/trials/{id}/report":      pilotReaders,
	"GET /pilot/static/pilot.css":        pilotReaders,
	"GET /api/v1/trials":                 pilotReaders,
	"GET /api/v1/trials/{id}":            pilotReaders,
	"GET /api/v1/trials/{id}/report.csv": pilotReaders,

	// The benefit calculation (nyttokalkyl) of a trial.
	"GET /pilot/trials/{id}/benefits":      pilotReaders,
	"GET /api/v1/trials/{id}/benefits.csv": pilotReaders,
	"GET /pilot/compare":                   pilotReaders,

	// The shift roster: who is on duty where (roster/). Leads and admins
	// plan it; it decides whose phone rings.
	"GET /api/v1/roster": {Roles: []string{RoleLead, RoleAdmin}},
	"PUT /api/v1/roster": {Roles: []string{RoleLead, RoleAdmin}},
	// A unit's floor plan image, for the staff app's map.
	"GET /api/v1/sites/{site}/units/{unit}/floor-plan": {Roles: []string{RoleStaff, RoleLead, RoleAdmin}},
	// Digital night supervision (docs/tillsyn.md): the round view is care
	// data (staff, lead, admin); staff and admin record the visits they
	// make. Technicians see neither.
	"GET /api/v1/tillsyn":         {Roles: []string{RoleStaff, RoleLead, RoleAdmin}},
	"POST /api/v1/tillsyn/visits": {Roles: []string{RoleStaff, RoleAdmin}},
}

// PolicyKeys returns the policy's routes ("METHOD pattern") in a stable
// order, for tests that walk them all.
func PolicyKeys() []string {
	keys := make([]string, 0, len(policy))
	for k := range policy {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var errForbidden = errors.New("your role may not use this")

// TechnicalOnly reports whether the request's user is limited to technical
// alarms on this route (for handlers mounted through Options.Routes).
func TechnicalOnly(r *http.Request) bool { return who(r).technical }

// guard wraps h with what acc needs: login, CSRF, and the role check.
func (s *server) guard(acc Access, h http.Handler) http.Handler {
	if acc.Public {
		return h
	}
	return s.requireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := who(r)
		if !slices.Contains(acc.Roles, p.user.Role) {
			writeError(w, http.StatusForbidden, errForbidden)
			return
		}
		if slices.Contains(acc.Technical, p.user.Role) {
			p.technical = true
			r = r.WithContext(withPrincipal(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	}))
}

// refuse answers a route that is missing from the policy table.
func refuse(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusForbidden, errors.New("this route is not in the access policy"))
}
