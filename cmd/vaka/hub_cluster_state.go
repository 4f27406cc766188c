//go:build !nocluster

package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/cluster"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/roster"
	"github.com/vaka-care/vaka/service"
)

// takeoverFailures counts the group's shared state (staff sessions, push
// subscriptions, the roster's API shifts, devices seen) that a hub
// becoming active could not take over: it then runs with its own older
// copy (staff logged out, phones not pushed, alarms routed by old shifts,
// devices shown as never heard), which must not go unnoticed. Exported as
// vaka_cluster_takeover_sync_failures_total{state}.
type takeoverFailures struct {
	vec *prometheus.CounterVec
}

func newTakeoverFailures() *takeoverFailures {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vaka_cluster_takeover_sync_failures_total",
		Help: "Shared state of the redundant group (state: sessions, push, roster, devices_seen) this hub could not take over when it became active; it runs with its own older copy."},
		[]string{"state"})
	for _, s := range []string{"sessions", "push", "roster", "devices_seen"} {
		v.WithLabelValues(s) // exported as 0 from the start, so an alert sees the series
	}
	return &takeoverFailures{vec: v}
}

func (f *takeoverFailures) add(state string) { f.vec.WithLabelValues(state).Inc() }

// prefetchRoster writes the group's roster shifts into this hub's roster
// file before its hub starts, by a direct get that needs no JetStream
// meta leader (one lost with the old active hub's machine is being
// replaced for seconds): the first alarms it routes then go to the staff
// the lead put on duty, not to this hub's older copy. Short tries: a
// direct get routed to a replica just cut off is lost, and another
// replica answers the next one. A failure is logged; Attach, once the
// hub runs, reads the shifts again (and counts its own failure).
func prefetchRoster(ctx context.Context, cfg *hub.Config, n *cluster.Node, log *slog.Logger) {
	r, err := cfg.OpenRoster()
	for try := 0; err == nil && try < 4; try++ {
		c, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		_, perr := n.Roster().Prefetch(c, r)
		cancel()
		if perr == nil {
			return
		}
		if try == 3 || ctx.Err() != nil {
			err = perr
		}
	}
	log.Warn("cluster: the group's roster shifts not read before taking over; routing with this hub's own until the hub has attached them", "err", err)
}

// clusterState returns the service option that takes the group's roster
// shifts and devices seen over when this hub starts (the roster before
// its web opens; devices seen beside it, a large fleet takes a while to
// read), a function registering their metrics, and a stop.
func clusterState(ctx context.Context, n *cluster.Node, fails *takeoverFailures, log *slog.Logger) (service.Option, func(*service.Hub), func()) {
	var (
		mu    sync.Mutex
		stops []func()
		ros   atomic.Pointer[roster.Roster]
		seen  atomic.Pointer[service.DevicesSeen]
	)
	bg, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	keep := func(stop func()) {
		mu.Lock()
		stops = append(stops, stop)
		mu.Unlock()
	}
	opt := service.WithClusterState(func(r *roster.Roster, ds *service.DevicesSeen) error {
		ros.Store(r)
		seen.Store(ds)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss, err := n.OpenDevicesSeen(bg)
			var stop func()
			if err == nil {
				stop, err = ss.Attach(bg, seenAdapter{ds})
			}
			if stop != nil { // attached, maybe without the last-heard times (cluster.ErrHeardNotRead)
				keep(stop)
			}
			if err != nil {
				if bg.Err() == nil {
					fails.add("devices_seen")
					log.Error("cluster: the group's devices seen not (fully) taken over; the device page shows what this hub heard, or older last-heard times", "err", err)
				}
				return
			}
		}()
		stop, err := n.Roster().Attach(ctx, r)
		if err != nil {
			fails.add("roster")
			return err
		}
		keep(stop)
		return nil
	})
	register := func(s *service.Hub) {
		s.Registry().MustRegister(fails.vec,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_cluster_roster_sync_failures_total",
				Help: "Roster changes (PUT /api/v1/roster) saved on this hub but not replicated to the group: after a failover the next active hub would route with the old shifts."},
				func() float64 {
					if r := ros.Load(); r != nil {
						return float64(r.SyncFailures())
					}
					return 0
				}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_cluster_devices_seen_sync_failures_total",
				Help: "Devices-seen records, and flushes of last-heard times, not replicated to the group (retried at the next flush)."},
				func() float64 {
					if d := seen.Load(); d != nil {
						return float64(d.SyncFailures())
					}
					return 0
				}))
	}
	return opt, register, func() {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, stop := range stops {
			stop()
		}
	}
}

// seenAdapter is the hub's devices seen as the cluster package sees them
// (the same record, two packages).
type seenAdapter struct{ d *service.DevicesSeen }

func (a seenAdapter) Merge(group map[string]cluster.DeviceSeen) int {
	m := make(map[string]service.SeenRecord, len(group))
	for k, r := range group {
		m[k] = service.SeenRecord(r)
	}
	return a.d.Merge(m)
}

func (a seenAdapter) Apply(key string, r cluster.DeviceSeen) { a.d.Apply(key, service.SeenRecord(r)) }

func (a seenAdapter) SetSync(to cluster.SeenSink) {
	if to == nil {
		a.d.SetSync(nil)
		return
	}
	a.d.SetSync(seenPut{to})
}

// seenPut is the group's side as the hub's devices seen sees it
// (service.SeenHeardSync).
type seenPut struct{ to cluster.SeenSink }

func (p seenPut) PutSeen(key string, r service.SeenRecord) error {
	return p.to.PutSeen(key, cluster.DeviceSeen(r))
}

func (p seenPut) PutHeard(heard map[string]time.Time) (int, error) { return p.to.PutHeard(heard) }
