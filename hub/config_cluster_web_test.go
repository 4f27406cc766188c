package hub

import (
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
)

// cluster.web_urls: a valid list is normalised to scheme://host; each
// error names file, line and field.
func TestClusterWebURLsConfig(t *testing.T) {
	head := `data_dir: /var/lib/vaka
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
users: [{username: a, role: staff, password_hash: "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"}]
cluster:
  node: hub-a
  nats: {urls: [nats://10.0.0.1:4222]}
  web_urls:
`
	var cfg Config
	ok := head + `    - {node: hub-a, url: "https://hub-a.example.se/"}
    - {node: hub-b, url: "https://hub-b.example.se:8443"}
`
	if err := config.Decode("hub.yaml", []byte(ok), &cfg); err != nil {
		t.Fatal(err)
	}
	if w := cfg.Cluster.WebURLs; len(w) != 2 || w[0].URL != "https://hub-a.example.se" || w[1].URL != "https://hub-b.example.se:8443" {
		t.Fatalf("web_urls: %+v", w)
	}
	for _, tc := range []struct{ yaml, want string }{
		{`    - {node: hub-a, url: "https://a.example.se"}
    - {node: hub-b, url: "ftp://b.example.se"}
`, "hub.yaml:10: field cluster.web_urls.1.url: scheme must be https"},
		{`    - {node: hub-a, url: "https://a.example.se"}
    - {node: hub-a, url: "https://b.example.se"}
`, "hub.yaml:10: field cluster.web_urls.1.node: hub-a is listed twice"},
		{`    - {node: hub-a, url: "https://a.example.se/app"}
`, "hub.yaml:9: field cluster.web_urls.0.url: only scheme, host and port"},
		{`    - {node: hub-b, url: "https://b.example.se"}
`, "field cluster.web_urls: lists no address for this hub (hub-a)"},
		{`    - {node: hub-a}
`, "hub.yaml:9: field cluster.web_urls.0.url: missing"},
		{`    - {node: hub-a, url: "https://user:pw@a.example.se"}
`, "field cluster.web_urls.0.url: must not carry credentials"},
	} {
		var c Config
		err := config.Decode("hub.yaml", []byte(head+tc.yaml), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config\n%s\nerror = %v, want it to contain %q", tc.yaml, err, tc.want)
		}
	}
}
