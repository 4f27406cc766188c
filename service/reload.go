package service

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
)

// WatchConfig reloads the rules from path on SIGHUP and whenever the file
// changes (checked every interval). A config that fails to load or
// validate is logged with its file, line and field, counted, and the old
// rules stay in force: a typo must never switch alarms off.
func (s *Hub) WatchConfig(ctx context.Context, path string, interval time.Duration) {
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vaka_config_reloads_total",
		Help: "Config reloads, by result (ok, failed: the old rules stay)."}, []string{"result"})
	reloads.WithLabelValues("ok")
	reloads.WithLabelValues("failed")
	_ = s.reg.Register(reloads)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	mod := modTime(path)
	go func() {
		defer signal.Stop(hup)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			case <-t.C:
				m := modTime(path)
				if m.Equal(mod) {
					continue
				}
				mod = m
			}
			var cfg hub.Config
			if err := config.Load(path, &cfg); err != nil {
				reloads.WithLabelValues("failed").Inc()
				s.log.Error("config reload failed; the old rules stay in force", "err", err)
				continue
			}
			s.Hub.Reload(&cfg)
			if t, err := cfg.RouteTree(); err == nil && s.Notify != nil {
				s.Notify.SetTree(t)
			}
			reloads.WithLabelValues("ok").Inc()
		}
	}()
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
