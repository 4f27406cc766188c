package hub

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

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

// The stream's stall timeout and care-queue bound are read and checked:
// a stall timeout too short to ride out a phone's bad second, or a bound
// low enough to cut a screen that reads, is refused by name.
func TestConfigHTTPStreamBounds(t *testing.T) {
	base := `demo: true
mqtt: {tcp: 127.0.0.1:0}
http:
  address: 127.0.0.1:0
  stream_stall_timeout: 45s
  stream_queue_max: 500000
`
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(base), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.StreamStallTimeout != 45*time.Second || cfg.HTTP.StreamQueueMax != 500000 {
		t.Fatalf("read %v, %d", cfg.HTTP.StreamStallTimeout, cfg.HTTP.StreamQueueMax)
	}
	bad := strings.NewReplacer("stream_stall_timeout: 45s", "stream_stall_timeout: 1s", "stream_queue_max: 500000", "stream_queue_max: 4096").Replace(base)
	err := config.Decode("hub.yaml", []byte(bad), &cfg)
	for _, w := range []string{"hub.yaml:5: field http.stream_stall_timeout: must be between 5s and 1h", "hub.yaml:6: field http.stream_queue_max: must be at least 10000"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
