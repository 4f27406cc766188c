//go:build !nocluster

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/cluster"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/service"
)

// runClusterHub runs one hub of a redundant group (cluster: in the config,
// docs/scale-out.md): connect to the group's NATS cluster (or start this
// hub's own embedded node), wait as a standby with no MQTT or web listener
// until this hub holds the lease, then replay the replicated journal and
// start the hub as after a restart: open alarms, escalation steps and
// silences from the journal, every device and gateway given a fresh
// supervision period. It returns an error (so the service manager restarts
// it, as a standby) when the lease is lost or another hub's append fenced
// this one off.
func runClusterHub(ctx context.Context, path string, cfg *hub.Config, log *slog.Logger) error {
	cl := cfg.Cluster
	var urls []string
	var avoid string
	if e := cl.Embedded; e != nil {
		avoid = cl.Node // the embedded node's server name
		nd, err := cluster.StartEmbedded(cluster.EmbeddedOptions{Name: cl.Node, Listen: e.Listen,
			ClusterListen: e.ClusterListen, Routes: e.Routes, ClusterName: e.ClusterName, StoreDir: e.StoreDir})
		if err != nil {
			return err
		}
		defer nd.Close()
		urls = []string{nd.ClientURL()}
	} else {
		urls = cl.NATS.URLs
		avoid = cl.NATS.LocalServer
	}
	n, err := cluster.Connect(ctx, cluster.Options{Node: cl.Node, URLs: urls, Replicas: cl.Replicas,
		LeaseTTL: cl.LeaseTTL, Stream: cl.Stream, Logger: log, AvoidLeader: avoid})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer n.Close()
	// Look at the lease from now on, not only once everything below has
	// started (seconds, on a busy machine): a standby started just before
	// or after the active hub died times the lease from here, dated by
	// the NATS server's clock (cluster/leasewatch.go).
	n.WatchLease()
	var active atomic.Pointer[service.Hub]
	// Under systemd a standby is a started service: READY now, and the
	// watchdog fed while it waits (and, once active, while the hub answers).
	sd := newNotifier(log)
	sd.ready()
	go sd.watchdog(ctx, func() {
		if s := active.Load(); s != nil {
			_ = s.Hub.Health()
		}
	})
	log.Info("cluster: standby; waiting for the lease", "stream", cl.Stream, "lease_ttl", cl.LeaseTTL)
	// While it waits the standby follows the journal into the state the
	// hub will start from, so taking over reads only the newest records.
	rb := hub.NewRebuilder(log)
	follower := n.Follow(rb.Add)
	fails := newTakeoverFailures()                                             // hub_cluster_state.go
	shareVAPID(ctx, cfg, n, log)                                               // hub_cluster_web.go
	sessOpt, sessMetrics, sessStop := clusterSessions(ctx, cfg, n, fails, log) // hub_cluster_web.go
	defer sessStop()
	pushOpt, pushStop := clusterPush(ctx, n, fails) // hub_cluster_web.go
	defer pushStop()
	stateOpt, stateMetrics, stateStop := clusterState(ctx, n, fails, log) // hub_cluster_state.go
	defer stateStop()
	sw := startStandbyWeb(ctx, cfg, clusterWebInfo(cl), n, log)
	lease, err := n.Acquire(ctx)
	sw.close()
	if err != nil {
		follower.Stop()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	t0 := time.Now()
	// The group's roster shifts are read while the journal is opened
	// (both wait on the network), and in place before the hub reads its
	// roster, which it does after the journal.
	rosterRead := make(chan struct{})
	go func() {
		defer close(rosterRead)
		prefetchRoster(ctx, cfg, n, log) // hub_cluster_state.go
	}()
	defer func() { <-rosterRead }()
	var j *cluster.Journal
	pp, popts, err := startPilot(cfg, log)
	if err != nil {
		follower.Stop()
		lease.Release()
		return err
	}
	popts = append(popts, sessOpt, pushOpt, stateOpt, service.WithRebuilder(rb), service.WithJournal(func(each func(alarm.Transition)) (hub.Journal, error) {
		var err error
		j, err = n.OpenJournal(ctx, lease, each, follower)
		<-rosterRead
		if err != nil {
			return nil, err
		}
		return j, nil
	}))
	s, err := service.Start(cfg, log, popts...)
	if err != nil {
		follower.Stop()
		pp.close()
		lease.Release()
		return err
	}
	active.Store(s)
	s.Registry().MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vaka_cluster_term",
			Help: "The lease term this hub is active under (a redundant group); a standby serves no metrics."},
			func() float64 { return float64(lease.Term) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_cluster_journal_appends_total",
			Help: "Journal records acknowledged by a quorum of the stream's replicas since this hub became active."},
			func() float64 { return float64(j.Appends.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_cluster_journal_entries_total",
			Help: "Transitions and records in the journal messages of vaka_cluster_journal_appends_total (group commit: several to a message)."},
			func() float64 { return float64(j.Batched.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_cluster_shared_state_damaged_total",
			Help: "Values of the group's shared state (sessions, push subscriptions, roster shifts, devices seen) left out as damaged or invalid."},
			func() float64 { return float64(n.SharedDamaged()) }))
	sessMetrics(s)
	stateMetrics(s)
	pp.attach(s)
	s.WatchConfig(ctx, path, 5*time.Second)
	log.Info("cluster: this hub is active", "term", lease.Term, "took_over_in", time.Since(t0).Round(time.Millisecond),
		"mqtt", s.MQTTAddr(), "http", s.HTTPAddr())
	var stopErr error
	select {
	case <-ctx.Done():
	case <-lease.Lost():
		stopErr = errors.New("cluster: lease lost; stopping so a standby takes over (restart makes this hub a standby)")
	case <-j.Deposed():
		stopErr = fmt.Errorf("cluster: %w", cluster.ErrDeposed)
	}
	sd.stopping()
	log.Info("hub stopping", "err", stopErr)
	err = s.Close()
	lease.Release()
	return errors.Join(stopErr, err)
}
