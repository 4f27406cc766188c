// Package natstest starts a real NATS JetStream cluster for tests of a
// redundant group of hubs (the cluster package's own tests have theirs:
// they cannot import this).
package natstest

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vaka-care/vaka/cluster"
	"github.com/vaka-care/vaka/internal/testenv"
)

// Group starts a 3-node JetStream cluster in the test process, on
// loopback, each node with its own store directory, the nodes named
// prefix0..prefix2; it returns the nodes (stopped at the test's end, or
// earlier by Close) and their client URLs.
func Group(t testing.TB, prefix string) ([]*cluster.Embedded, []string) {
	t.Helper()
	addrs := make([]string, 6)
	for i := range addrs {
		addrs[i] = testenv.FreeAddr(t)
	}
	dir := t.TempDir()
	var urls []string
	var nodes []*cluster.Embedded
	for i := range 3 {
		var routes []string
		for k := range 3 {
			if k != i {
				routes = append(routes, "nats-route://"+addrs[3+k])
			}
		}
		e, err := cluster.StartEmbedded(cluster.EmbeddedOptions{Name: fmt.Sprintf("%s%d", prefix, i), Listen: addrs[i],
			ClusterListen: addrs[3+i], Routes: routes, ClusterName: "vaka-test", StoreDir: filepath.Join(dir, fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		nodes = append(nodes, e)
		urls = append(urls, e.ClientURL())
	}
	return nodes, urls
}
