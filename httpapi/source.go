package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// source is the client address the login throttle counts against:
// SourceKey of the TCP peer, or, when the peer is a trusted proxy, of the
// nearest address in X-Forwarded-For that is not one. The header is never
// believed from anyone else: a guesser could otherwise name a fresh
// address with every request.
func (s *server) source(r *http.Request) string {
	peer, ok := addrOf(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if s.trusted(peer) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			a = a.Unmap()
			if !s.trusted(a) {
				return SourceKey(a)
			}
		}
	}
	return SourceKey(peer)
}

func (s *server) trusted(a netip.Addr) bool {
	for _, p := range s.o.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func addrOf(remote string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// SourceKey is the throttle's key for a client address: the IPv4 address,
// or the IPv6 /64 (one home or phone network holds a whole /64, so single
// IPv6 addresses would give a guesser endless fresh sources).
func SourceKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
