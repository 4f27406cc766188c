package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// Whatever a client puts in X-Forwarded-For or RemoteAddr, source never
// panics, and from an untrusted peer it is the peer's own key.
func FuzzSource(f *testing.F) {
	f.Add("192.0.2.10:5555", "203.0.113.7")
	f.Add("[2001:db8::1]:443", "::ffff:10.0.0.1, ,garbage")
	f.Add("not-an-address", "")
	trusted := &server{o: Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}
	untrusted := &server{}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		req.Header.Set("X-Forwarded-For", xff)
		_ = trusted.source(req)
		got := untrusted.source(req)
		if a, ok := addrOf(remote); ok && got != SourceKey(a) {
			t.Errorf("untrusted peer %q with X-Forwarded-For %q: source %q", remote, xff, got)
		}
	})
}
