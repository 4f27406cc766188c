package hub

import (
	"slices"

	"github.com/vaka-care/vaka/config"
)

// expandRoleReceivers adds to each routing receiver with roles every user
// of those roles, in config order and without duplicates, so the route
// tree and `vaka routes test` see plain user lists. Why at check time: the
// users and their roles are in the same file, and a reload re-reads both.
// A role no user has is an error, since such a receiver would wake nobody.
func (c *Config) expandRoleReceivers() []error {
	var errs []error
	for i := range c.Routing.Receivers {
		r := &c.Routing.Receivers[i]
		for k, role := range r.Roles {
			f := config.Field("routing", "receivers", i, "roles", k)
			switch role {
			case RoleStaff, RoleLead, RoleAdmin, RoleTechnician:
			default:
				errs = append(errs, config.Errorf(f, "must be staff, lead, admin or technician"))
				continue
			}
			n := 0
			for _, u := range c.Users {
				if u.Role != role {
					continue
				}
				n++
				if !slices.Contains(r.Users, u.Username) {
					r.Users = append(r.Users, u.Username)
				}
			}
			if n == 0 {
				errs = append(errs, config.Errorf(f, "no user has role %q: this receiver would wake nobody", role))
			}
		}
	}
	return errs
}
