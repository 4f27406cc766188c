package hub

import (
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
)

// A redundant group's config errors name file, line and field, and a
// valid one gets its defaults.
func TestClusterConfig(t *testing.T) {
	head := `data_dir: /var/lib/vaka
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
users: [{username: a, role: staff, password_hash: "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"}]
`
	var cfg Config
	ok := head + `cluster:
  node: hub-a
  nats:
    urls: [nats://10.0.0.1:4222, nats://10.0.0.2:4222, nats://10.0.0.3:4222]
`
	if err := config.Decode("hub.yaml", []byte(ok), &cfg); err != nil {
		t.Fatal(err)
	}
	if c := cfg.Cluster; c.Replicas != 3 || c.LeaseTTL != DefaultLeaseTTL || c.Stream != "VAKA_JOURNAL" {
		t.Fatalf("defaults: %+v", c)
	}
	cfg = Config{}
	emb := head + `cluster:
  node: hub-a
  embedded:
    listen: 0.0.0.0:4222
    cluster_listen: 0.0.0.0:6222
    routes: [nats-route://10.0.0.2:6222, nats-route://10.0.0.3:6222]
`
	if err := config.Decode("hub.yaml", []byte(emb), &cfg); err != nil {
		t.Fatal(err)
	}
	if e := cfg.Cluster.Embedded; e.StoreDir != "/var/lib/vaka/nats" || e.ClusterName != "vaka" {
		t.Fatalf("embedded defaults: %+v", e)
	}

	for _, tc := range []struct{ yaml, want string }{
		{`cluster:
  nats: {urls: [nats://a:4222]}
`, "hub.yaml:5: field cluster.node: missing"},
		{`cluster:
  node: "hub a"
  nats: {urls: [nats://a:4222]}
`, "hub.yaml:6: field cluster.node:"},
		{`cluster:
  node: hub-a
`, "field cluster.nats: missing"},
		{`cluster:
  node: hub-a
  nats:
    urls:
      - nats://a:4222
      - http://b:4222
`, "hub.yaml:10: field cluster.nats.urls.1: scheme must be nats or tls"},
		{`cluster:
  node: hub-a
  nats: {urls: [nats://a]}
`, "field cluster.nats.urls.0: needs host and port"},
		{`cluster:
  node: hub-a
  nats: {urls: [nats://a:1]}
  embedded: {listen: 0.0.0.0:4222}
`, "hub.yaml:8: field cluster.embedded: set nats or embedded, not both"},
		{`cluster:
  node: hub-a
  embedded: {listen: 0.0.0.0:4222, cluster_listen: 0.0.0.0:6222, routes: [nats-route://b:6222]}
`, "hub.yaml:7: field cluster.embedded.routes: 3 replicas need at least 2 other nodes"},
		{`cluster:
  node: hub-a
  embedded: {listen: 0.0.0.0:4222, routes: ["tcp://b:6222", "nats-route://c:6222"]}
`, "field cluster.embedded.routes.0: must be nats-route://"},
		{`cluster:
  node: hub-a
  nats: {urls: [nats://a:1], local_server: "nats a"}
`, "hub.yaml:7: field cluster.nats.local_server: the NATS server's server_name"},
		{`cluster:
  node: hub-a
  replicas: 2
  nats: {urls: [nats://a:1]}
`, "hub.yaml:7: field cluster.replicas: must be 3 or 5"},
		{`cluster:
  node: hub-a
  lease_ttl: 100ms
  nats: {urls: [nats://a:1]}
`, "hub.yaml:7: field cluster.lease_ttl: must be between 1s and 60s"},
		{`cluster:
  node: hub-a
  stream: vaka.journal
  nats: {urls: [nats://a:1]}
`, "field cluster.stream: a plain name"},
		{`cluster:
  node: hub-a
  nats: {urls: [nats://a:1]}
  lease: 5s
`, "hub.yaml:8: field cluster.lease: unknown field"},
	} {
		var c Config
		err := config.Decode("hub.yaml", []byte(head+tc.yaml), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config\n%s\nerror = %v, want it to contain %q", tc.yaml, err, tc.want)
		}
	}
	// Not with an external broker: a standby refuses gateways by not
	// listening, which only the embedded broker does.
	var c Config
	ext := `data_dir: /x
http: {address: 127.0.0.1:0}
users: [{username: a, role: staff, password_hash: "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"}]
mqtt:
  broker: external
  external: {url: "tcp://127.0.0.1:1883"}
cluster: {node: hub-a, nats: {urls: [nats://a:1]}}
`
	if err := config.Decode("hub.yaml", []byte(ext), &c); err == nil || !strings.Contains(err.Error(), "mqtt.broker: a redundant group") {
		t.Errorf("external broker with cluster: %v", err)
	}
}
