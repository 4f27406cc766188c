package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/rules"
)

// seenStore remembers when each device was last heard and its last
// battery level, across restarts, for the device-health page only: the
// rules engine starts every device as "not heard since start", which after
// a restart made a whole unit look unpaired. The page now tells a device
// never heard at all from one heard before the restart (and shows its last
// battery level). Supervision is not changed by it.
type seenStore struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex
	now   map[string]seenRec // heard since this start
	prior map[string]seenRec // as saved before this start
	dirty bool

	stop    chan struct{}
	done    chan struct{}
	started bool

	sync seenSync // a redundant group's replication (cluster_state.go)
}

type seenRec struct {
	LastSeen  time.Time  `json:"last_seen"`
	Battery   *int       `json:"battery,omitempty"`
	BatteryAt *time.Time `json:"battery_at,omitempty"`
}

// SeenFile is the snapshot's name in the data directory.
const SeenFile = "devices-seen.json"

// seenFlushEvery is how often the snapshot is written (and on close).
const seenFlushEvery = time.Minute

func openSeen(path string, log *slog.Logger) (*seenStore, error) {
	s := &seenStore{path: path, log: log, now: map[string]seenRec{}, prior: map[string]seenRec{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("service: %w", err)
		default:
			if err := json.Unmarshal(b, &s.prior); err != nil {
				// A damaged snapshot costs only the page's memory.
				log.Warn("service: device snapshot unreadable; devices show as not heard since start", "file", path, "err", err)
				s.prior = map[string]seenRec{}
			}
		}
	}
	return s, nil
}

// start begins the periodic flush, once the hub is running (a start that
// fails earlier leaves no goroutine behind).
func (s *seenStore) start() {
	s.started = true
	go s.run()
}

// ObserveEvent notes the device as heard (hub.Observer; cheap, under a lock).
func (s *seenStore) ObserveEvent(ev *event.Event, received time.Time) {
	if ev.Device == "" {
		return
	}
	k := ev.Site + "/" + ev.Device
	s.mu.Lock()
	r := s.now[k]
	if r.Battery == nil {
		r.Battery, r.BatteryAt = s.prior[k].Battery, s.prior[k].BatteryAt
	}
	r.LastSeen = received
	if ev.Battery != nil {
		b, at := *ev.Battery, received
		r.Battery, r.BatteryAt = &b, &at
	}
	s.now[k] = r
	s.dirty = true
	s.sync.heard = true
	s.mu.Unlock()
}

// ObserveTransition is not needed.
func (s *seenStore) ObserveTransition(*alarm.Alarm, alarm.Transition) {}

func (s *seenStore) run() {
	defer close(s.done)
	t := time.NewTicker(seenFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.flush(); err != nil {
				s.log.Warn("service: device snapshot not written", "err", err)
			}
			s.replicate()
		}
	}
}

func (s *seenStore) flush() error {
	s.mu.Lock()
	if !s.dirty || s.path == "" {
		s.mu.Unlock()
		return nil
	}
	all := make(map[string]seenRec, len(s.prior)+len(s.now))
	for k, v := range s.prior {
		all[k] = v
	}
	for k, v := range s.now {
		all[k] = v
	}
	s.dirty = false
	s.mu.Unlock()
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Clean(s.path))
}

// Close stops the flusher and writes the snapshot one last time.
func (s *seenStore) Close() error {
	if s.started {
		close(s.stop)
		<-s.done
	}
	return s.flush()
}

// deviceView is one device on the page: the engine's health plus what
// the snapshot knows from before this start.
type deviceView struct {
	rules.DeviceHealth
	// HeardBefore is when a device not heard since this start was last
	// heard before it; its status is then not_heard_since_restart.
	HeardBefore *time.Time `json:"heard_before_restart,omitempty"`
	// BatteryAt is when the battery level shown was reported (it may be
	// from before the restart).
	BatteryAt *time.Time `json:"battery_at,omitempty"`
}

// merge adds the snapshot to the engine's health view.
func (s *seenStore) merge(h hub.Health) any {
	if s == nil {
		return h
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	devs := make([]deviceView, len(h.Devices))
	for i, d := range h.Devices {
		v := deviceView{DeviceHealth: d}
		k := d.Site + "/" + d.Device
		rec, heardNow := s.now[k]
		if !heardNow {
			rec = s.prior[k]
		}
		if d.NeverHeard && !rec.LastSeen.IsZero() {
			at := rec.LastSeen
			v.HeardBefore = &at
			if v.Status == "never_heard" {
				v.Status = "not_heard_since_restart"
			}
		}
		if d.Battery < 0 && rec.Battery != nil {
			v.Battery = *rec.Battery
		}
		if v.Battery >= 0 {
			v.BatteryAt = rec.BatteryAt
		}
		devs[i] = v
	}
	return map[string]any{"gateways": h.Gateways, "devices": devs}
}
