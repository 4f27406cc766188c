package hub

import (
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
)

// ClusterConfig makes this hub one of a redundant group (docs/scale-out.md,
// "A redundant group"): the alarm journal is a NATS JetStream stream
// replicated to Replicas servers instead of the file in data_dir, one hub
// of the group is active (it holds a lease in a JetStream key-value
// bucket), and the others wait as standbys with no MQTT or web listener
// open, so gateways given every hub's address connect to the active one.
// Absent (the default): one hub, the local journal, unchanged.
type ClusterConfig struct {
	// Node names this hub in the group; unique, a plain name.
	Node string `yaml:"node"`
	// NATS lists the servers of an existing NATS cluster to use. Set
	// this or Embedded.
	NATS *ClusterNATS `yaml:"nats"`
	// Embedded runs a NATS server inside the hub process, one node of a
	// cluster routed to the other hubs' (small sites, tests).
	Embedded *ClusterEmbedded `yaml:"embedded"`
	// Replicas of the journal stream and the lease bucket: 3 (default)
	// or 5; 1 only for trying it out (no redundancy at all).
	Replicas int `yaml:"replicas"`
	// LeaseTTL is how long the active hub's lease lasts without renewal:
	// a standby takes over that long after the active hub stopped
	// renewing it. Default 5s, between 1s and 60s.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// Stream names the JetStream stream of the journal; default
	// VAKA_JOURNAL. Two groups sharing one NATS cluster need two names.
	Stream string `yaml:"stream"`
	// WebURLs are every hub's public address for the staff app
	// (config_cluster_web.go); optional.
	WebURLs []ClusterWebURL `yaml:"web_urls"`
}

// ClusterNATS is an external NATS cluster.
type ClusterNATS struct {
	// URLs are nats://host:4222 (or tls://); the client fails over
	// between them.
	URLs []string `yaml:"urls"`
	// LocalServer names (its server_name) the NATS server on this hub's
	// own machine, if one is: while this hub is active it keeps the
	// journal's and the lease's Raft leaders off that server, so losing
	// the machine costs no leader election (docs/scale-out.md). Empty:
	// leaders are not moved. An embedded node is always kept clear.
	LocalServer string `yaml:"local_server"`
}

// ClusterEmbedded is the NATS node this hub runs itself.
type ClusterEmbedded struct {
	// Listen is the client address, e.g. 0.0.0.0:4222.
	Listen string `yaml:"listen"`
	// ClusterListen is the route address the other nodes connect to,
	// e.g. 0.0.0.0:6222.
	ClusterListen string `yaml:"cluster_listen"`
	// Routes are the other nodes' route addresses,
	// nats-route://host:6222.
	Routes []string `yaml:"routes"`
	// StoreDir holds this node's JetStream data; default data_dir/nats.
	StoreDir string `yaml:"store_dir"`
	// Name of the NATS cluster; default vaka.
	ClusterName string `yaml:"cluster_name"`
}

// Cluster defaults.
const (
	DefaultClusterReplicas = 3
	DefaultLeaseTTL        = 5 * time.Second
	DefaultClusterStream   = "VAKA_JOURNAL"
)

func (c *Config) validateCluster() []error {
	cl := c.Cluster
	if cl == nil {
		return nil
	}
	var errs []error
	add := func(f, format string, a ...any) { errs = append(errs, config.Errorf("cluster."+f, format, a...)) }
	if cl.Node == "" {
		add("node", "missing: name this hub in the group, e.g. hub-a")
	} else if err := event.ValidName(cl.Node); err != nil {
		add("node", "%v", err)
	}
	if c.MQTT.IsExternal() {
		errs = append(errs, config.Errorf("mqtt.broker", "a redundant group (cluster) needs the embedded broker: a standby refuses gateways by not listening"))
	}
	if c.Demo {
		errs = append(errs, config.Errorf("demo", "not with cluster: a redundant group keeps real alarms"))
	}
	switch {
	case cl.NATS == nil && cl.Embedded == nil:
		add("nats", "missing: set nats.urls (an existing NATS cluster) or embedded (a NATS node in this hub)")
	case cl.NATS != nil && cl.Embedded != nil:
		add("embedded", "set nats or embedded, not both")
	}
	if n := cl.NATS; n != nil {
		if ls := n.LocalServer; ls != "" && (strings.ContainsAny(ls, " \t\r\n.*>") || len(ls) > 128) {
			add("nats.local_server", "the NATS server's server_name: no spaces, dots or wildcards")
		}
		if len(n.URLs) == 0 {
			add("nats.urls", "missing, e.g. [nats://10.0.0.1:4222, nats://10.0.0.2:4222, nats://10.0.0.3:4222]")
		}
		for i, s := range n.URLs {
			f := config.Field("nats.urls", i)
			u, err := url.Parse(s)
			switch {
			case err != nil:
				add(f, "not a URL")
			case u.Scheme != "nats" && u.Scheme != "tls":
				add(f, "scheme must be nats or tls, e.g. nats://10.0.0.1:4222")
			case u.Hostname() == "" || u.Port() == "":
				add(f, "needs host and port, e.g. nats://10.0.0.1:4222")
			case u.User != nil:
				add(f, "must not carry credentials")
			}
		}
	}
	if e := cl.Embedded; e != nil {
		hostPort := func(f, v, eg string) {
			if v == "" {
				add(f, "missing, e.g. %s", eg)
			} else if _, p, err := net.SplitHostPort(v); err != nil || p == "" {
				add(f, "must be host:port, e.g. %s", eg)
			}
		}
		hostPort("embedded.listen", e.Listen, "0.0.0.0:4222")
		if len(e.Routes) > 0 || e.ClusterListen != "" {
			hostPort("embedded.cluster_listen", e.ClusterListen, "0.0.0.0:6222")
		}
		for i, r := range e.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Scheme != "nats-route" || u.Hostname() == "" || u.Port() == "" {
				add(config.Field("embedded.routes", i), "must be nats-route://host:port, e.g. nats-route://10.0.0.2:6222")
			}
		}
		if e.StoreDir == "" && c.DataDir != "" {
			e.StoreDir = strings.TrimRight(c.DataDir, "/") + "/nats"
		}
		if e.ClusterName == "" {
			e.ClusterName = "vaka"
		}
	}
	switch cl.Replicas {
	case 0:
		cl.Replicas = DefaultClusterReplicas
	case 1, 3, 5:
	default:
		add("replicas", "must be 3 or 5 (1 only to try it out), not %d", cl.Replicas)
	}
	if embedded := cl.Embedded; embedded != nil && cl.Replicas > 1 && len(embedded.Routes) < cl.Replicas-1 {
		add("embedded.routes", "%d replicas need at least %d other nodes", cl.Replicas, cl.Replicas-1)
	}
	switch {
	case cl.LeaseTTL == 0:
		cl.LeaseTTL = DefaultLeaseTTL
	case cl.LeaseTTL < time.Second || cl.LeaseTTL > time.Minute:
		add("lease_ttl", "must be between 1s and 60s (a standby takes over this long after the active hub stops)")
	}
	if cl.Stream == "" {
		cl.Stream = DefaultClusterStream
	} else if strings.ContainsAny(cl.Stream, ". *>/\\") {
		add("stream", "a plain name without dots, spaces, slashes or wildcards")
	}
	errs = append(errs, c.validateClusterWeb()...)
	return errs
}
