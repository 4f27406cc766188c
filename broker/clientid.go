package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// clientIDs binds each client id to the first login that used it. MQTT lets
// a new connection with an existing client id take the old one's session
// over; without this, any valid login (another site's gateway, an OwnTracks
// user) presenting a gateway's id kicked that gateway off, raised "gateway
// offline" for it and received the replies meant for it.
//
// A binding outlives the connection, so a gateway that is briefly offline
// cannot have its id taken in the meantime. The map is bounded: when full,
// bindings of ids not connected right now are forgotten.
type clientIDs struct {
	mu     sync.Mutex
	owner  map[string]string // client id → username
	max    int
	active func(id string) bool // is a client with this id connected now
}

func newClientIDs(max int, active func(string) bool) *clientIDs {
	return &clientIDs{owner: map[string]string{}, max: max, active: active}
}

// ownerOf returns the login that owns id, if any.
func (c *clientIDs) ownerOf(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.owner[id]
	return u, ok
}

// claim binds id to user unless another login owns it; it returns the
// owner when it refuses.
func (c *clientIDs) claim(id, user string) (owner string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, bound := c.owner[id]; bound {
		return u, u == user
	}
	if len(c.owner) >= c.max {
		for k := range c.owner {
			if !c.active(k) {
				delete(c.owner, k)
			}
		}
		if len(c.owner) >= c.max {
			// Every bound id is connected: more ids than connections are
			// allowed cannot happen unless max < MaxConnections. Refuse
			// rather than grow.
			return "", false
		}
	}
	c.owner[id] = user
	return user, true
}

// OnConnect refuses (identifier rejected) a login presenting a client id
// that another login owns, before any password is checked (no bcrypt for
// it) and before mochi can take the owner's session over. The owner stays
// connected.
func (h *vakaHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if pk.Connect.ClientIdentifier == "" {
		return nil // mochi assigns a fresh random id: nobody else's
	}
	user := string(pk.Connect.Username)
	owner, bound := h.ids.ownerOf(cl.ID)
	if !bound || owner == user {
		return nil
	}
	h.refuseClientID(cl, user, owner)
	// "Identifier rejected": 0x85 in MQTT 5, 0x02 in 3.1.1 (mochi maps
	// this code for 3.1.1 clients; it has no 3.1.1 form of "not authorized").
	_ = h.srv.SendConnack(cl, packets.ErrClientIdentifierNotValid, false, nil)
	return packets.ErrClientIdentifierNotValid
}

// claimClientID binds an authenticated login's client id to it (first
// login wins), closing the race of two logins connecting with a new id at
// once. Anonymous (demo) clients bind nothing.
func (h *vakaHook) claimClientID(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if pk.Connect.ClientIdentifier == "" || user == "" {
		return true
	}
	owner, ok := h.ids.claim(cl.ID, user)
	if !ok {
		h.refuseClientID(cl, user, owner)
	}
	return ok
}

// refuseClientID counts and logs a collision with both identities.
// Usernames are gateway ids or OwnTracks logins, not personal data.
func (h *vakaHook) refuseClientID(cl *mqtt.Client, user, owner string) {
	h.refuse(reasonClientIDTaken, "client", cl.ID, "username", user, "owner", owner, "remote", cl.Net.Remote)
}

// clientActive reports whether a client with id is connected now.
func clientActive(srv *mqtt.Server) func(string) bool {
	return func(id string) bool {
		cl, ok := srv.Clients.Get(id)
		return ok && !cl.Closed()
	}
}
