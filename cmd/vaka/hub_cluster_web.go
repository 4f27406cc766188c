//go:build !nocluster

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/cluster"
	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/record"
	"github.com/vaka-care/vaka/service"
	"github.com/vaka-care/vaka/webpush"
)

// clusterWebInfo is what the staff app is told about the group.
func clusterWebInfo(cl *hub.ClusterConfig) *httpapi.ClusterInfo {
	info := &httpapi.ClusterInfo{Node: cl.Node}
	for _, w := range cl.WebURLs {
		info.Hubs = append(info.Hubs, httpapi.HubURL{Node: w.Node, URL: w.URL})
	}
	return info
}

// standbyWeb is the standby's web listener: every request is answered 503
// with Retry-After and the active hub's address (httpapi.StandbyHandler),
// so a load balancer's health check skips this hub and a phone that
// reached it is told where to go instead of waiting on a closed port.
type standbyWeb struct {
	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// startStandbyWeb opens the listener on http.address (with http.tls as
// the hub itself would). Failing to listen is logged, not fatal: the
// standby's real job is to wait for the lease.
func startStandbyWeb(ctx context.Context, cfg *hub.Config, info *httpapi.ClusterInfo, n *cluster.Node, log *slog.Logger) *standbyWeb {
	var active atomic.Value
	active.Store("")
	ctx, cancel := context.WithCancel(ctx)
	sw := &standbyWeb{cancel: cancel, done: make(chan struct{})}
	go func() { // who is active, read once a second from the lease
		defer close(sw.done)
		for {
			c, cc := context.WithTimeout(ctx, time.Second)
			if a, err := n.ActiveNode(c); err == nil {
				active.Store(a)
			}
			cc()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	ln, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		log.Warn("cluster: standby web listener not opened; browsers reaching this hub get no answer", "err", err)
		return sw
	}
	sw.srv = &http.Server{Handler: httpapi.StandbyHandler(info, func() string { return active.Load().(string) }),
		ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second}
	go func() {
		var err error
		if t := cfg.HTTP.TLS; t != nil {
			err = sw.srv.ServeTLS(ln, t.CertFile, t.KeyFile)
		} else {
			err = sw.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("cluster: standby web listener", "err", err)
		}
	}()
	log.Info("cluster: standby web listener answers 503", "http", ln.Addr().String())
	return sw
}

// close frees the web address for the hub that is starting.
func (sw *standbyWeb) close() {
	if sw == nil {
		return
	}
	if sw.srv != nil {
		_ = sw.srv.Close()
	}
	sw.cancel()
	<-sw.done
}

// clusterSessions returns the service option that takes the group's
// sessions over when this hub starts, a function registering its metric,
// and a stop to call when the hub stops. It first opens the sessions
// bucket, retrying for up to a minute while the NATS cluster forms (as
// Connect waits for the journal stream), so a hub does not become active
// without it; past that it keeps trying in the background, and a hub that
// takes over without it keeps sessions per hub, as before a group, and
// logs that.
func clusterSessions(ctx context.Context, cfg *hub.Config, n *cluster.Node, fails *takeoverFailures, log *slog.Logger) (service.Option, func(*service.Hub), func()) {
	info := clusterWebInfo(cfg.Cluster)
	var opened atomic.Pointer[cluster.Sessions]
	open := func(within time.Duration) error {
		c, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		ss, err := n.OpenSessions(c, cfg.HTTP.SessionTTL)
		if err == nil {
			opened.Store(ss)
		}
		return err
	}
	bg, stopBG := context.WithCancel(ctx)
	first := make(chan struct{})
	go func() {
		defer func() {
			select {
			case <-first:
			default:
				close(first)
			}
		}()
		t0 := time.Now()
		for attempt := 0; opened.Load() == nil; attempt++ {
			if err := open(5 * time.Second); err != nil && attempt%10 == 9 {
				log.Warn("cluster: sessions bucket not open yet; retrying", "err", err)
			}
			if opened.Load() == nil && time.Since(t0) > time.Minute {
				select {
				case <-first:
				default:
					log.Error("cluster: sessions bucket not open after a minute; going on, retrying in the background")
					close(first)
				}
			}
			select {
			case <-bg.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	select {
	case <-first:
	case <-ctx.Done():
	}
	var (
		stop func()
		auth *httpapi.Auth
	)
	opt := service.WithClusterWeb(info, func(a *httpapi.Auth) error {
		stopBG()
		if opened.Load() == nil {
			if err := open(time.Second); err != nil {
				fails.add("sessions")
				return fmt.Errorf("staff sessions stay on this hub and a failover logs them out: %w", err)
			}
		}
		auth = a
		var err error
		if stop, err = opened.Load().Attach(ctx, a); err != nil {
			fails.add("sessions")
		}
		return err
	})
	register := func(s *service.Hub) {
		if auth == nil {
			return
		}
		s.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_cluster_session_sync_failures_total",
			Help: "Logins, logouts and revocations not replicated to the group: a login may not survive a failover, a revocation may not hold on the next active hub."},
			func() float64 { return float64(auth.SyncFailures()) }))
		s.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_cluster_push_sync_failures_total",
			Help: "Web Push subscriptions stored or removed without reaching the group: the next active hub may not reach that phone."},
			func() float64 { return float64(webpush.SyncFailures()) }))
	}
	return opt, register, func() {
		stopBG()
		if stop != nil {
			stop()
		}
	}
}

// shareVAPID gives every hub of the group one VAPID key, before this hub
// stands for the lease: its own data_dir/vapid.pem is offered, and if
// the group already has another key, that one replaces the file (the old
// one kept beside it as vapid.pem.replaced). Phones subscribe against the
// public key, so with one key a subscription stays valid across a
// failover once the subscription itself is known to the new hub (not yet
// replicated: docs/scale-out.md). Failing is logged, not fatal: push
// then works per hub, as before a group.
func shareVAPID(ctx context.Context, cfg *hub.Config, n *cluster.Node, log *slog.Logger) {
	if cfg.DataDir == "" {
		return
	}
	path := filepath.Join(cfg.DataDir, "vapid.pem")
	fail := func(err error) {
		log.Error("cluster: VAPID key not shared with the group; a phone's push subscription stays with one hub", "err", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		fail(err)
		return
	}
	if _, err := webpush.LoadOrCreateVAPID(path); err != nil {
		fail(err)
		return
	}
	local, err := os.ReadFile(path)
	if err != nil {
		fail(err)
		return
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	group, err := n.ShareValue(c, "vapid", local)
	if err != nil {
		fail(err)
		return
	}
	if bytes.Equal(group, local) {
		return
	}
	if err := record.WriteFile(path+".group", group, 0o600); err != nil {
		fail(err)
		return
	}
	if _, err := webpush.LoadOrCreateVAPID(path + ".group"); err != nil {
		_ = os.Remove(path + ".group")
		fail(fmt.Errorf("the group's key: %w", err))
		return
	}
	if err := os.Rename(path, path+".replaced"); err != nil {
		fail(err)
		return
	}
	if err := os.Rename(path+".group", path); err != nil {
		_ = os.Rename(path+".replaced", path)
		fail(err)
		return
	}
	log.Warn("cluster: this hub's VAPID key replaced by the group's; phones subscribed to this hub alone subscribe again when the app is opened",
		"kept", path+".replaced")
}

// clusterPush returns the service option that takes the group's Web Push
// subscriptions over when this hub starts, and a stop for when it stops.
func clusterPush(ctx context.Context, n *cluster.Node, fails *takeoverFailures) (service.Option, func()) {
	var stop func()
	opt := service.WithClusterPush(func(st *webpush.Store) error {
		var err error
		if stop, err = n.PushSubs().Attach(ctx, st); err != nil {
			fails.add("push")
		}
		return err
	})
	return opt, func() {
		if stop != nil {
			stop()
		}
	}
}
