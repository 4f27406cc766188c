package service

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
)

// WatchConfig reloads the rules from path on SIGHUP and whenever the file,
// or a file it includes (a site's devices_file), changes (checked every
// interval). A config that fails to load or
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
	// The included files are those of the config the hub already runs
	// on: no second load to learn them. A large config (tens of thousands
	// of SCAIP units or devices) costs a second of CPU to parse, and that
	// second load ran after the hub was already answering, in the middle
	// of its first alarms. The times are taken now: an edit made while
	// the hub was starting (after its load) now waits for the next edit
	// or a SIGHUP; the second load used to pick it up.
	files := append([]string{path}, s.Hub.Config().IncludedFiles()...)
	mod := modTimes(files)
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
				m := modTimes(files)
				if m == mod {
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
			files = append([]string{path}, cfg.IncludedFiles()...)
			mod = modTimes(files)
			s.Hub.Reload(&cfg)
			if s.roster != nil {
				s.roster.SetFile(cfg.RosterShifts())
			}
			if t, err := cfg.RouteTree(); err == nil && s.Notify != nil {
				s.Notify.SetTree(t.WithRoster(s.roster))
			}
			for _, f := range s.reloaders {
				f(&cfg)
			}
			reloads.WithLabelValues("ok").Inc()
		}
	}()
}

// modTimes is the files' modification times and sizes as one comparable
// string: any change to any of them changes it.
func modTimes(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		} else {
			b.WriteString("-;")
		}
	}
	return b.String()
}
