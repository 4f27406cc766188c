package hub

import (
	"slices"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
)

const roleHash = "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"

// A receiver by role ("every lead") wakes every user of that role, in
// config order, beside the users it names, without duplicates; the route
// tree resolves it like any list of users.
func TestRoleReceiverExpandsToUsers(t *testing.T) {
	yaml := `mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
data_dir: /tmp/vaka-roles-test
users:
  - {username: natt1, role: staff, password_hash: "` + roleHash + `"}
  - {username: ledare1, role: lead, password_hash: "` + roleHash + `"}
  - {username: ledare2, role: lead, password_hash: "` + roleHash + `"}
  - {username: tekniker, role: technician, password_hash: "` + roleHash + `"}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
routing:
  receivers:
    - {name: natt, users: [natt1]}
    - {name: ledning, users: [ledare2], roles: [lead]}
  route:
    receiver: natt
    escalate: [ledning]
`
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(yaml), &cfg); err != nil {
		t.Fatal(err)
	}
	got := cfg.Routing.Receivers[1].Users
	if !slices.Equal(got, []string{"ledare2", "ledare1"}) {
		t.Fatalf("receiver ledning: users %v, want [ledare2 ledare1]", got)
	}
	if _, err := cfg.RouteTree(); err != nil {
		t.Fatalf("route tree: %v", err)
	}
}

// A role no user has, or a role that does not exist, is a config error
// naming file, line and field: such a receiver would wake nobody.
func TestRoleReceiverErrorsNameField(t *testing.T) {
	yaml := `mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
data_dir: /tmp/vaka-roles-test
users:
  - {username: natt1, role: staff, password_hash: "` + roleHash + `"}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
routing:
  receivers:
    - {name: natt, users: [natt1]}
    - {name: ledning, roles: [lead, boss]}
  route:
    receiver: natt
    escalate: [ledning]
`
	var cfg Config
	err := config.Decode("hub.yaml", []byte(yaml), &cfg)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`hub.yaml:12: field routing.receivers.1.roles.0: no user has role "lead"`,
		`routing.receivers.1.roles.1: must be staff, lead, admin or technician`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
