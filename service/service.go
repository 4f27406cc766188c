// Package service wires a running hub: the alarm journal, the hub, the
// embedded broker and the web server. cmd/vaka and the integration tests
// start hubs through it, so they test what production runs.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/broker"
	"github.com/vaka-care/vaka/extbroker"
	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/rtmetrics"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/roster"
	"github.com/vaka-care/vaka/scaipsip"
	"github.com/vaka-care/vaka/store"
	"github.com/vaka-care/vaka/webpush"
)

// Hub is a running hub.
type Hub struct {
	Hub *hub.Hub
	// Notify runs routing and escalation (who is alerted, and when).
	Notify *notify.Dispatcher
	// Broker is the embedded broker; nil with mqtt.broker: external,
	// when External is the hub's session on the external broker.
	Broker   *broker.Broker
	External *extbroker.Consumer
	Journal  hub.Journal

	front    mqttFront
	log      *slog.Logger
	http     *http.Server
	httpAddr string
	osmAddr  string // trackers.osmand_listen's bound address, if any
	scaip    *scaipsip.Server
	stop     chan struct{}
	done     chan struct{}

	cancelBase context.CancelFunc
	closeOnce  sync.Once
	closeErr   error
	closers    []func() error
	reloaders  []func(*hub.Config)
	reg        *prometheus.Registry
	roster     *roster.Roster // the shift roster (roster/), reloaded with the config
}

// Registry is the hub's metrics registry, for parts that export their own.
func (s *Hub) Registry() *prometheus.Registry { return s.reg }

// Option adds a part to a hub: an observer (pilot data export) or extra
// web routes (dashboards, device health).
type Option func(*options)

type options struct {
	observers []hub.Observer
	routes    []func(*hub.Hub) []httpapi.Route
	closers   []func() error
	reloaders []func(*hub.Config)

	loopbackPush bool
	seen         *seenStore       // devices heard before a restart (devseen.go)
	now          func() time.Time // the hub's clock (WithClock); nil: time.Now

	// openJournal opens a replicated journal instead of data_dir's file
	// (WithJournal, cluster.go).
	openJournal func(each func(alarm.Transition)) (hub.Journal, error)
	rebuilder   *hub.Rebuilder

	clusterWeb *httpapi.ClusterInfo       // WithClusterWeb (cluster_web.go)
	attachAuth func(*httpapi.Auth) error  // WithClusterWeb
	attachPush func(*webpush.Store) error // WithClusterPush
	// attachState: WithClusterState (cluster_state.go)
	attachState func(*roster.Roster, *DevicesSeen) error
}

// WithObserver adds an observer of events and alarm transitions.
func WithObserver(o hub.Observer) Option {
	return func(op *options) { op.observers = append(op.observers, o) }
}

// WithRoutes adds web routes built once the hub exists.
func WithRoutes(f func(*hub.Hub) []httpapi.Route) Option {
	return func(op *options) { op.routes = append(op.routes, f) }
}

// WithReloader runs f with the new config after each successful config
// reload (the pilot exporter retags what it observes next).
func WithReloader(f func(*hub.Config)) Option {
	return func(op *options) { op.reloaders = append(op.reloaders, f) }
}

// WithCloser runs f when the hub closes, after the web server and broker
// have stopped (to flush an exporter).
func WithCloser(f func() error) Option {
	return func(op *options) { op.closers = append(op.closers, f) }
}

// Start opens the journal, rebuilds state and starts broker and web server.
// cfg must be validated.
func Start(cfg *hub.Config, log *slog.Logger, opts ...Option) (*Hub, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var op options
	for _, o := range opts {
		o(&op)
	}
	// The journal is replayed into the alarms as it is read, never held
	// decoded as a whole (hub.Rebuilder).
	rb := op.rebuilder // a standby's, already fed by following the journal (cluster.go)
	if rb == nil {
		rb = hub.NewRebuilder(log)
	}
	var j hub.Journal
	var err error
	if op.openJournal != nil {
		j, err = op.openJournal(rb.Add) // a replicated journal (cluster.go)
	} else {
		j, err = store.OpenEach(cfg.DataDir, store.Options{SyncEvery: cfg.Store.SyncEvery, SyncEachWrite: cfg.Store.SyncEachWrite, Logger: log}, rb.Add)
	}
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(rtmetrics.New()) // heap live, GC pauses, assists: vaka_go_* (internal/rtmetrics)
	// Stream frames left to json.Marshal (httpapi/frameenc.go).
	reg.MustRegister(httpapi.FrameFallbackCollector())
	var evlog *hub.EventLog
	if cfg.DataDir != "" {
		evlog, err = hub.NewEventLog(filepath.Join(cfg.DataDir, "events"), log)
		if err != nil {
			j.Close()
			return nil, err
		}
		op.observers = append(op.observers, evlog)
		op.closers = append(op.closers, evlog.Close)
		reg.MustRegister(newDiskCollector(cfg.DataDir)) // diskmetrics.go
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_eventlog_dropped_total",
			Help: "Events the replay log could not take or write (raised as hub_integrity)."},
			func() float64 { return float64(evlog.Dropped()) }))
	}
	seenPath := ""
	if cfg.DataDir != "" {
		seenPath = filepath.Join(cfg.DataDir, SeenFile)
	}
	if op.seen, err = openSeen(seenPath, log); err != nil {
		j.Close()
		return nil, err
	}
	op.observers = append(op.observers, op.seen)
	op.closers = append(op.closers, op.seen.Close)
	pp, err := newPushParts(cfg, &op)
	if err != nil {
		j.Close()
		return nil, err
	}
	pp.disp = notify.New(notify.Options{Tree: pp.tree, Pusher: pp.sender, Logger: log})
	disp := pp.disp
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_push_sent_total",
			Help: "Web Push messages handed to push services."}, func() float64 { return float64(disp.Sent.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_push_failures_total",
			Help: "Web Push sends that failed (the escalation timers still run: no receipt means next tier)."},
			func() float64 { return float64(disp.PushFailures.Load()) }))
	registerLaneMetrics(reg, disp)        // groups.go
	registerSCAIPSenderMetrics(reg, disp) // scaip_sender.go
	op.observers = append(op.observers, pp.disp)
	h, err := hub.New(hub.Options{Config: cfg, Journal: j, Rebuilt: rb, Logger: log, Registry: reg, Observers: op.observers, Now: op.now})
	if err != nil {
		j.Close()
		return nil, err
	}
	var (
		b     *broker.Broker
		ext   *extbroker.Consumer
		front mqttFront
	)
	if cfg.MQTT.IsExternal() {
		// The external broker authenticates gateways; the hub consumes.
		if ext, err = newExternal(cfg, h, log, reg); err != nil {
			j.Close()
			return nil, err
		}
		front = ext
	} else {
		if b, err = newBroker(cfg, h, log, reg); err != nil {
			j.Close()
			return nil, err
		}
		front = b
	}
	h.AddDropSource(front.Dropped)
	h.SetRouter(pp.disp) // grouping, and one frame for a raise and its notify
	pp.disp.Start(h, openAlarms(h))
	op.closers = append([]func() error{pp.disp.Close}, op.closers...)
	if evlog != nil {
		h.AddDropSource(evlog.Dropped)
	}
	startupGC() // startgc.go: before the first event is taken
	if err := front.Start(); err != nil {
		pp.disp.Close()
		j.Close()
		return nil, err
	}
	// The group's push subscriptions are taken over once events are
	// acknowledged again: reading them needs JetStream's meta leader (a
	// watch is a consumer), which a lost machine may have taken with it,
	// and an alarm must not wait for that. Until then the notifier pushes
	// to the subscriptions in this hub's own file.
	if op.attachPush != nil && pp.store != nil {
		if err := op.attachPush(pp.store); err != nil {
			log.Error("service: the group's push subscriptions not taken over; phones get push after the app is opened", "err", err)
		}
	}
	if op.attachState != nil { // the roster and devices seen: as the push subscriptions
		if err := op.attachState(pp.roster, &DevicesSeen{s: op.seen}); err != nil {
			log.Error("service: the group's roster or devices seen not taken over", "err", err)
		}
	}
	svc, err := startHTTP(cfg, log, op, pp, h, j, reg, b, ext, front)
	if err == nil {
		if err = svc.startSCAIP(cfg); err != nil {
			svc.Close()
			return nil, err
		}
	}
	return svc, err
}

// newBroker builds the embedded broker with the gateways' credentials.
func newBroker(cfg *hub.Config, h *hub.Hub, log *slog.Logger, reg *prometheus.Registry) (*broker.Broker, error) {
	var creds []broker.Credential
	for _, s := range cfg.Sites {
		for _, g := range s.Gateways {
			if g.PasswordHash != "" {
				creds = append(creds, broker.Credential{Site: s.ID, Gateway: g.ID, PasswordHash: g.PasswordHash})
			}
		}
	}
	bo := broker.Options{TCP: cfg.MQTT.TCP, WebSocket: cfg.MQTT.WebSocket, Demo: cfg.Demo,
		Credentials: creds, OwnTracks: ownTracksLogins(cfg), Handler: h, Logger: log, Registry: reg,
		Limits: brokerLimits(cfg.MQTT.Limits)}
	if t := cfg.MQTT.TLS; t != nil {
		bo.TLS = &broker.TLS{Address: t.Address, CertFile: t.CertFile, KeyFile: t.KeyFile}
	}
	return broker.New(bo)
}

// brokerLimits maps mqtt.limits onto the broker's; zero fields stay zero
// and take the broker's defaults.
func brokerLimits(l hub.MQTTLimits) broker.Limits {
	return broker.Limits{MaxConnectSize: l.MaxConnectSize, MaxPacketSize: l.MaxPacketSize,
		ConnectTimeout: l.ConnectTimeout, MaxConnections: l.MaxConnections,
		MaxConnectionsPerAddress: l.MaxConnectionsPerAddress, MaxInflight: l.MaxInflight,
		MaxQueued: l.MaxQueued, AuthConcurrency: l.AuthConcurrency}
}

func startHTTP(cfg *hub.Config, log *slog.Logger, op options, pp *pushParts, h *hub.Hub, j hub.Journal,
	reg *prometheus.Registry, b *broker.Broker, ext *extbroker.Consumer, front mqttFront) (*Hub, error) {
	var users []httpapi.User
	for _, u := range cfg.Users {
		users = append(users, httpapi.User{Username: u.Username, Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash})
	}
	osm := newOsmAnd(h, reg)
	routes := append(hubRoutes(h, op.seen), pp.routes(h)...)
	routes = append(routes, groupRoutes(h)...) // groups.go
	routes = append(routes, tillsynRoutes(h)...)
	for _, f := range op.routes {
		routes = append(routes, f(h)...)
	}
	routes = append(routes, floorPlanRoute(h))
	routes = append(routes, roster.Routes(pp.roster, func(u string) bool {
		return slices.Contains(h.Config().Usernames(), u)
	}, log)...)
	po := &placesOf{h: h}
	auth := httpapi.NewAuth(users, cfg.HTTP.SessionTTL, nil)
	if cfg.DataDir != "" {
		// Sessions survive a restart (issue 15); a damaged file costs
		// logins only, never the hub's start.
		if err := auth.Persist(filepath.Join(cfg.DataDir, "sessions.json")); err != nil {
			log.Warn("service: sessions not restored", "err", err)
		}
	}
	if op.attachAuth != nil {
		if err := op.attachAuth(auth); err != nil {
			log.Error("service: the group's sessions not taken over; staff may have to log in again", "err", err)
		}
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_login_checks_total",
			Help: "Passwords checked with bcrypt (logins and HTTP Basic)."}, func() float64 { return float64(auth.Checks()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_login_throttled_total",
			Help: "Login attempts answered 429 unchecked: too many failures from the source or on the account, or too many checks at once."},
			func() float64 { return float64(auth.Throttled()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_sessions_save_failures_total",
			Help: "Writes of the sessions file that failed (those logins would not survive a restart)."},
			func() float64 { return float64(auth.SaveFailures()) }))
	mx, err := newMetricsEndpoint(cfg.Metrics, reg) // metrics.go: /metrics' address and token
	if err != nil {
		front.Close()
		j.Close()
		pp.disp.Close()
		return nil, err
	}
	handler := httpapi.New(httpapi.Options{
		Alarms: h, Auth: auth, Logger: log,
		NotFound: hub.ErrNotFound, SecureCookies: cfg.HTTP.TLS != nil, Routes: routes,
		PublicRoutes: append(append(pp.public(h), publicRoutes(osm)...), mx.routes()...),
		NameRoles:    cfg.HTTP.ShowNamesTo, ResidentName: residentNames(h),
		Where:       func(a *alarm.Alarm, personal bool) *httpapi.Where { return po.get().where(a, personal) },
		Access:      func(a *alarm.Alarm) *httpapi.AccessInfo { return po.get().access(a) },
		AccessRoles: cfg.HTTP.ShowAccessTo, ImgSources: tileOrigin(cfg.HTTP.MapTiles),
		TrustedProxies: cfg.HTTP.TrustedPrefixes(), BodyTimeout: cfg.HTTP.BodyTimeout,
		Cluster: op.clusterWeb,
	})
	ln, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		front.Close()
		j.Close()
		pp.disp.Close()
		return nil, fmt.Errorf("service: listen http: %w", err)
	}
	if err := mx.start(log); err != nil {
		ln.Close()
		front.Close()
		j.Close()
		pp.disp.Close()
		return nil, err
	}
	op.closers = append(op.closers, mx.close)
	var osmAddr string
	if a := cfg.Trackers.OsmAndListen; a != "" {
		bound, stop, err := startOsmAndListener(a, osm, log)
		if err != nil {
			ln.Close()
			front.Close()
			j.Close()
			pp.disp.Close()
			return nil, err
		}
		log.Info("osmand listener started", "addr", bound)
		osmAddr = bound
		op.closers = append([]func() error{stop}, op.closers...)
	}
	// Streams never go idle, so Shutdown alone would wait its whole
	// timeout: cancelling the base context ends them first.
	base, cancelBase := context.WithCancel(context.Background())
	s := &Hub{Hub: h, Notify: pp.disp, Broker: b, External: ext, front: front, Journal: j, log: log, httpAddr: ln.Addr().String(), osmAddr: osmAddr,
		http:       newHTTPServer(cfg.HTTP, trackerAtRoot(handler, osm), base),
		cancelBase: cancelBase, closers: op.closers, reloaders: op.reloaders, reg: reg, roster: pp.roster,
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		var err error
		if t := cfg.HTTP.TLS; t != nil {
			err = s.http.ServeTLS(ln, t.CertFile, t.KeyFile)
		} else {
			err = s.http.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("service: http server stopped", "err", err)
		}
	}()
	go func() {
		defer close(s.done)
		h.Run(s.stop)
	}()
	op.seen.start()
	log.Info("hub started", "http", s.httpAddr, "mqtt", s.MQTTAddr(), "external_broker", ext != nil, "data", cfg.DataDir, "demo", cfg.Demo)
	return s, nil
}

// newHTTPServer bounds what a slow or idle client can hold: the headers
// within 10 s, each body within http.body_timeout (in httpapi, per request,
// so the live stream is not cut), an idle keep-alive connection within
// http.idle_timeout. There is no WriteTimeout: it would end every staff
// member's hours-long alarm stream after that long (the stream bounds each
// of its writes instead). The body bound is httpapi's, per request, so it
// is the same in tests and is only set where there is a body.
func newHTTPServer(c hub.HTTPConfig, handler http.Handler, base context.Context) *http.Server {
	idle := c.IdleTimeout
	if idle == 0 {
		idle = 2 * time.Minute
	}
	return &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle,
		MaxHeaderBytes: 64 << 10, BaseContext: func(net.Listener) context.Context { return base }}
}

// residentNames looks names up in the hub's current config, rebuilding the
// map only when a reload swapped the config.
func residentNames(h *hub.Hub) func(site, resident string) string {
	var (
		mu    sync.Mutex
		for_  *hub.Config
		names map[string]string
	)
	return func(site, resident string) string {
		cfg := h.Config()
		mu.Lock()
		defer mu.Unlock()
		if cfg != for_ {
			for_, names = cfg, cfg.ResidentNames()
		}
		return names[site+"/"+resident]
	}
}

// HTTPAddr is the bound web address.
func (s *Hub) HTTPAddr() string { return s.httpAddr }

// MQTTAddr is the bound MQTT TCP address.
// It is empty when the hub uses an external broker.
func (s *Hub) MQTTAddr() string {
	if s.Broker == nil {
		return ""
	}
	return s.Broker.Addr("tcp")
}

// Close stops everything, syncing the journal last.
// It is safe to call more than once; later calls return the first result.
func (s *Hub) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Hub) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	close(s.stop)
	<-s.done
	s.cancelBase()
	err := s.http.Shutdown(ctx)
	// mochi v2.7.9's Close can hang if a client connects or disconnects
	// while it runs; do not let that hold up the journal's final sync.
	bc := make(chan error, 1)
	go func() { bc <- s.front.Close() }()
	select {
	case e := <-bc:
		if err == nil {
			err = e
		}
	case <-time.After(5 * time.Second):
		s.log.Error("service: broker did not close within 5 s; continuing shutdown")
	}
	for _, c := range s.closers {
		if e := c(); err == nil {
			err = e
		}
	}
	// Transitions the journal could not take while its disk was full get
	// a last chance; none of them was acknowledged to a gateway.
	if e := s.Hub.Flush(); e != nil {
		s.log.Error("service: alarm transitions lost at shutdown", "err", e)
		if err == nil {
			err = e
		}
	}
	if e := s.Journal.Close(); err == nil {
		err = e
	}
	return err
}
