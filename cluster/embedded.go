package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions run a NATS server with JetStream inside the process: one
// node of a cluster routed to the other hubs' nodes.
type EmbeddedOptions struct {
	Name          string   // server name, unique in the cluster (the hub's node name)
	Listen        string   // client address host:port
	ClusterListen string   // route address host:port; empty for a single node
	Routes        []string // nats-route://host:port of the other nodes
	ClusterName   string
	StoreDir      string // JetStream data
}

// Route liveness between embedded nodes (see StartEmbedded).
const (
	routePingInterval = time.Second
	routeMaxPingsOut  = 2
)

// Embedded is a running NATS node.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts the node and waits until it takes client
// connections (JetStream may still be electing its meta leader; Connect
// waits for that).
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	host, port, err := splitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded listen: %w", err)
	}
	opts := &server.Options{
		ServerName: o.Name, Host: host, Port: port,
		JetStream: true, StoreDir: o.StoreDir,
		NoSigs: true, NoLog: true, MaxPayload: 1 << 20,
	}
	if o.ClusterListen != "" {
		ch, cp, err := splitHostPort(o.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("cluster: embedded cluster_listen: %w", err)
		}
		// A node cut off by the network (no TCP reset, unlike a process
		// that died) is noticed by its peers only when its route misses
		// pings; until then requests answered by any replica (the lease's
		// direct gets) may be routed to it and lost. NATS's default of
		// two minutes would hold a takeover that long: here about 3 s.
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: ch, Port: cp,
			PingInterval: routePingInterval, MaxPingsOut: routeMaxPingsOut}
		if len(o.Routes) > 0 {
			opts.Routes = server.RoutesFromStr(strings.Join(o.Routes, ","))
		}
	}
	setRaftTiming() // raft_timing.go: elections in 1.5–3 s, not 4–9 s
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("cluster: embedded nats did not take connections within 10 s")
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL is the node's client address, nats://host:port.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Close stops the node.
func (e *Embedded) Close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return h, n, nil
}
