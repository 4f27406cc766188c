package hub

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
)

// http.trusted_proxies takes addresses and prefixes and names a bad entry;
// the body and idle bounds refuse values too short to serve a phone.
func TestConfigHTTPProxiesAndTimeouts(t *testing.T) {
	base := `demo: true
mqtt: {tcp: 127.0.0.1:0}
http:
  address: 127.0.0.1:0
  trusted_proxies: [10.1.0.0/16, "::1"]
  body_timeout: 5s
  idle_timeout: 1m
`
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(base), &cfg); err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("::1/128")}
	if got := cfg.HTTP.TrustedPrefixes(); !slices.Equal(got, want) {
		t.Errorf("prefixes %v, want %v", got, want)
	}
	bad := strings.NewReplacer(`"::1"`, "proxy.kommun.se", "body_timeout: 5s", "body_timeout: 100ms").Replace(base)
	err := config.Decode("hub.yaml", []byte(bad), &cfg)
	for _, w := range []string{"field http.trusted_proxies.1: not an address or CIDR prefix", "field http.body_timeout: must be at least 1s"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
