// Package gateway is the edge process: it runs the device drivers of one
// home or unit and forwards their events to the hub's MQTT broker.
//
// Its first duty is that no event is lost quietly. Every event goes into a
// bounded outbox (Queue) and leaves it only when the broker has
// acknowledged it (QoS 1 PUBACK). While the link is down events wait, in
// order; when the outbox is full, telemetry gives way to alarms, and every
// drop is counted (Stats), logged and raised to the hub as a technical event
// as soon as the link allows. The hub de-duplicates on (gateway, event id),
// so the rare duplicate after a reconnect is harmless; a gap would not be.
//
// On a real gateway the outbox is the disk spool (Config.Spool, OpenSpool):
// each event is fsynced to disk before it is published, so a SIGKILL, a
// power cut or a restart during a long outage loses nothing, and the
// sequence numbers continue across restarts.
//
// The gateway announces itself on a retained status topic ("online" on
// every connect, "offline" as its MQTT Last Will and on a clean shutdown)
// and proves it is alive with a heartbeat, so the hub can supervise it at
// minute level rather than noticing a dead gateway the next morning.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/devices/sim"
	"github.com/vaka-care/vaka/event"
)

// Errors Publish reports.
var (
	// ErrQueued means the event is not yet acknowledged but is held in the
	// outbox and will be retried in order: it is not lost.
	ErrQueued = errors.New("gateway: event held in the outbox for retry")
	// ErrDropped means the event was not kept (outbox full, invalid, or the
	// gateway shut down before it could be delivered). It was counted and
	// logged.
	ErrDropped = errors.New("gateway: event dropped")
)

// Drop reasons, the keys of Stats.Dropped.
const (
	DropQueueFull = "queue_full" // outbox full, event refused
	DropEvicted   = "evicted"    // telemetry evicted to make room for an alarm
	DropInvalid   = "invalid"    // event failed validation or encoding
	DropShutdown  = "shutdown"   // still undelivered when the process stopped
)

var dropReasons = []string{DropQueueFull, DropEvicted, DropInvalid, DropShutdown}

// Stats are the gateway's counters, for logs, the health page and tests.
type Stats struct {
	Connected  bool
	Published  int64            // events acknowledged by the broker
	Retried    int64            // publish attempts after an event's first
	Queued     int              // events waiting in the outbox now
	Dropped    map[string]int64 // by reason (Drop* constants); always has every key
	Refused    int64            // events the hub answered with a non-zero SCAIP reply code
	BadReplies int64            // unreadable messages on the reply topic
	Heartbeats int64            // heartbeats acknowledged by the broker
	// ClockSuspect counts checks (at start and at each heartbeat) that
	// found the system clock before the build-time floor.
	ClockSuspect int64
	// Spooled is true when the outbox is the disk spool; SpoolErrors
	// counts records the disk refused (the event is still sent, but would
	// not survive a restart) and SpoolCorrupt the records cut or skipped
	// when the spool was opened.
	Spooled      bool
	SpoolErrors  int
	SpoolCorrupt int
}

// Option tunes a Gateway beyond its YAML config, mostly for tests and for
// plugging in a disk spool.
type Option func(*options)

type options struct {
	queue          Queue
	publishTimeout time.Duration
	reconnectMax   time.Duration
	flushTimeout   time.Duration
	connectTimeout time.Duration
	clockFloor     time.Time
}

// WithClockFloor overrides the build-time clock floor (for tests).
func WithClockFloor(t time.Time) Option { return func(o *options) { o.clockFloor = t } }

// WithQueue replaces the in-memory outbox, e.g. with a disk spool.
func WithQueue(q Queue) Option { return func(o *options) { o.queue = q } }

// WithPublishTimeout bounds the wait for one PUBACK before the event is
// reported as held for retry (default 10s).
func WithPublishTimeout(d time.Duration) Option { return func(o *options) { o.publishTimeout = d } }

// WithReconnectMax caps the wait between reconnect attempts (default 30s,
// within the 10–60 s the Swedish IPA protocol asks for).
func WithReconnectMax(d time.Duration) Option { return func(o *options) { o.reconnectMax = d } }

// WithFlushTimeout bounds how long shutdown waits for the outbox to drain
// (default 3s).
func WithFlushTimeout(d time.Duration) Option { return func(o *options) { o.flushTimeout = d } }

// Gateway forwards the events of its drivers to the hub.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	reg      *devices.Registry
	opts     options
	client   mqtt.Client
	devs     map[string]*devices.Device
	byDriver map[string][]*devices.Device
	bootID   string
	heartbit time.Duration

	seq     atomic.Uint64 // event sequence
	hbSeq   atomic.Uint64 // heartbeat sequence
	epoch   atomic.Uint64 // bumped before each connect attempt
	running atomic.Bool

	mu      sync.Mutex // guards q, waiters and closed
	q       Queue
	waiters map[uint64]chan error
	closed  bool // the sender has stopped: nothing more can be delivered

	wake chan struct{} // for sendLoop: an event was queued, or the link is ready
	lost chan struct{} // for connLoop: the connection was lost

	connected       atomic.Bool // connected, resumed and announced: ready to publish
	published       atomic.Int64
	retried         atomic.Int64
	refused         atomic.Int64
	badReplies      atomic.Int64
	heartbeats      atomic.Int64
	dropped         [4]atomic.Int64 // indexed like dropReasons
	dropsUnreported atomic.Int64
	clockBad        atomic.Bool
	clockSuspect    atomic.Int64
}

// New builds a gateway from its config. reg holds drivers the caller has
// registered (nil for none); when cfg.Sim is set, New adds the simulation
// driver. Every configured device must name a registered driver. Secrets
// (password_file, ca_file) are read here so a typo fails at start-up, not
// at the first reconnect.
func New(cfg Config, log *slog.Logger, reg *devices.Registry, opts ...Option) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: invalid config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = devices.NewRegistry()
	}
	o := options{
		publishTimeout: 10 * time.Second,
		reconnectMax:   30 * time.Second,
		flushTimeout:   3 * time.Second,
		connectTimeout: 10 * time.Second,
		clockFloor:     ClockFloor(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	if dir := cfg.spoolDir(); o.queue == nil && dir != "" {
		sp, err := OpenSpoolLimits(dir, cfg.queueSize(), cfg.spoolMaxBytes())
		if err != nil {
			return nil, err
		}
		if sp.Len() > 0 || sp.Corrupt > 0 {
			log.Info("gateway: spool holds events from the last run; sending them first",
				"events", sp.Len(), "corrupt_records", sp.Corrupt)
		}
		o.queue = sp
	}
	if o.queue == nil {
		o.queue = NewMemQueue(cfg.queueSize())
	}
	g := &Gateway{
		cfg:      cfg,
		log:      log.With("site", cfg.Site, "gateway", cfg.ID),
		reg:      reg,
		opts:     o,
		q:        o.queue,
		devs:     make(map[string]*devices.Device),
		byDriver: make(map[string][]*devices.Device),
		heartbit: cfg.heartbeat(),
		waiters:  make(map[uint64]chan error),
		wake:     make(chan struct{}, 1),
		lost:     make(chan struct{}, 1),
	}
	if sp, ok := o.queue.(*Spool); ok {
		g.seq.Store(sp.MaxSeq())
	}
	for i := range g.cfg.Devices {
		d := &g.cfg.Devices[i]
		g.devs[d.ID] = d
		g.byDriver[d.Driver] = append(g.byDriver[d.Driver], d)
	}
	if cfg.Sim != nil {
		var simDevs []devices.Device
		for _, d := range g.byDriver[sim.Name] {
			simDevs = append(simDevs, *d)
		}
		s, err := sim.New(*cfg.Sim, simDevs)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		if err := reg.Register(s); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	if err := g.registerBuiltins(reg); err != nil {
		return nil, err
	}
	for i, d := range g.cfg.Devices {
		if !reg.Has(d.Driver) {
			return nil, fmt.Errorf("gateway: devices.%d (%s): no driver %q registered", i, d.ID, d.Driver)
		}
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("gateway: boot id: %w", err)
	}
	// A boot prefix of start time and randomness keeps event ids unique
	// across restarts, even on a Pi without a real-time clock that boots
	// at the same wrong time twice.
	g.bootID = strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + hex.EncodeToString(rnd[:])

	mo, err := g.clientOptions()
	if err != nil {
		return nil, err
	}
	g.client = mqtt.NewClient(mo)
	return g, nil
}

type statusMsg struct {
	State      string `json:"state"`
	TS         string `json:"ts,omitempty"`
	HeartbeatS int    `json:"heartbeat_s,omitempty"`
}

// heartbeatMsg proves life and carries the gateway's own health for the
// hub's device-health page: outbox depth, drops and each driver's state.
type heartbeatMsg struct {
	TS      string         `json:"ts"`
	Seq     uint64         `json:"seq"`
	Spool   int            `json:"spool"`
	Dropped int64          `json:"dropped"`
	Drivers []driverHealth `json:"drivers,omitempty"`
	// ClockSuspect is set while the gateway's clock reads before its
	// build-time floor (no RTC, no NTP yet): its event times are wrong.
	ClockSuspect bool `json:"clock_suspect,omitempty"`
}

type driverHealth struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Err   string `json:"err,omitempty"`
	// Input is what the driver could not use (malformed, unmapped,
	// unsupported), for drivers that read outside input: without it a
	// driver's drops would live only in its own counters.
	*devices.InputStats
}

var offlinePayload = []byte(`{"state":"offline"}`)

func (g *Gateway) clientOptions() (*mqtt.ClientOptions, error) {
	b := g.cfg.Broker
	mo := mqtt.NewClientOptions().
		AddBroker(b.URL).
		SetClientID(g.cfg.Site+"-"+g.cfg.ID).
		// A persistent session keeps the reply subscription and lets paho
		// resend an unacknowledged publish after a reconnect.
		SetCleanSession(false).
		// The gateway reconnects itself (connLoop) instead of using paho's
		// AutoReconnect/ConnectRetry: paho calls OnConnect before it has
		// resent its stored packets, so a publish from there races with
		// that resend (a data race in paho, a duplicate, and a token
		// completed without a PUBACK). Connect's own token completes only
		// after the resend, so publishing after it is safe and in order.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(g.opts.connectTimeout).
		SetWriteTimeout(g.opts.publishTimeout).
		SetKeepAlive(30*time.Second).
		SetBinaryWill(event.StatusTopic(g.cfg.Site, g.cfg.ID), offlinePayload, 1, true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			g.connected.Store(false)
			g.log.Warn("gateway: connection to broker lost; events are held until it is back", "err", err)
			notify(g.lost)
		})
	for _, u := range b.URLs {
		mo.AddBroker(u) // the other hubs of a redundant group, in order
	}
	if b.Username != "" {
		mo.SetUsername(b.Username)
	}
	switch {
	case b.Password != "":
		mo.SetPassword(b.Password)
	case b.PasswordFile != "":
		p, err := os.ReadFile(b.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: broker.password_file: %w", err)
		}
		mo.SetPassword(strings.TrimRight(string(p), "\r\n"))
	}
	u, err := url.Parse(b.URL)
	if err != nil {
		return nil, fmt.Errorf("gateway: broker.url: not a URL")
	}
	anyTLS := isTLS(u.Scheme)
	for _, s := range b.URLs {
		if v, err := url.Parse(s); err == nil && isTLS(v.Scheme) {
			anyTLS = true
		}
	}
	if anyTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if b.CAFile != "" {
			pem, err := os.ReadFile(b.CAFile)
			if err != nil {
				return nil, fmt.Errorf("gateway: broker.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("gateway: broker.ca_file %s: no PEM certificates found", b.CAFile)
			}
			tc.RootCAs = pool
		}
		mo.SetTLSConfig(tc)
	}
	return mo, nil
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run connects, starts the drivers and forwards events until ctx is done.
// Then it stops the drivers, gives the outbox a short time to drain,
// publishes the retained offline status and disconnects. It returns nil
// after a clean shutdown. Run may be called once.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("gateway: Run called twice")
	}
	g.log.Info("gateway: starting", "broker", redactURL(g.cfg.Broker.URL), "heartbeat", g.heartbit)
	g.checkClock(time.Now())
	// Drivers start first: what they emit before the link is up waits in
	// the outbox.
	if err := g.reg.Start(ctx, g.emit, g.driverReport); err != nil {
		return fmt.Errorf("gateway: start drivers: %w", err)
	}
	sendCtx, stopSend := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSend()
	var wg sync.WaitGroup
	wg.Go(func() { g.sendLoop(sendCtx) })
	wg.Go(func() { g.connLoop(sendCtx) })
	wg.Go(func() { g.heartbeatLoop(ctx) })

	<-ctx.Done()
	drivers := make(chan struct{})
	go func() { g.reg.Wait(); close(drivers) }()
	select {
	case <-drivers: // drivers have stopped emitting
	case <-time.After(driverStopTimeout):
		g.log.Error("gateway: a driver did not stop in time; shutting down without it", "timeout", driverStopTimeout)
	}
	g.flush(g.opts.flushTimeout)
	stopSend()
	wg.Wait()
	g.dropRest()

	if g.ready() {
		// A clean DISCONNECT suppresses the Will, so say offline ourselves.
		t := g.client.Publish(event.StatusTopic(g.cfg.Site, g.cfg.ID), 1, true, offlinePayload)
		if !t.WaitTimeout(time.Second) || t.Error() != nil {
			g.log.Warn("gateway: offline status not acknowledged; the broker's Will covers it", "err", t.Error())
		}
	}
	g.client.Disconnect(250)
	g.connected.Store(false)
	g.log.Info("gateway: stopped", "published", g.published.Load())
	return nil
}

const driverStopTimeout = 5 * time.Second

// flush waits up to d for the outbox to drain while the link is up.
func (g *Gateway) flush(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && g.queued() > 0 && g.ready() {
		time.Sleep(20 * time.Millisecond)
	}
}

// dropRest accounts for events still in the in-memory outbox at shutdown.
// A disk spool keeps them instead: they are sent first on the next start.
func (g *Gateway) dropRest() {
	g.mu.Lock()
	g.closed = true
	if sp, ok := g.q.(*Spool); ok {
		n := sp.Len()
		for seq, w := range g.waiters {
			delete(g.waiters, seq)
			w <- fmt.Errorf("gateway: %w: kept in the disk spool for the next start", ErrQueued)
		}
		err := sp.Close()
		g.mu.Unlock()
		if n > 0 {
			g.log.Warn("gateway: events kept in the disk spool; they are sent first on the next start", "count", n)
		}
		if err != nil {
			g.log.Error("gateway: closing the spool", "err", err)
		}
		return
	}
	n := 0
	for {
		m, ok := g.q.Front()
		if !ok {
			break
		}
		g.q.Pop()
		n++
		if w := g.waiters[m.Seq]; w != nil {
			delete(g.waiters, m.Seq)
			w <- fmt.Errorf("%w: %s undelivered at shutdown", ErrDropped, m.ID)
		}
	}
	g.mu.Unlock()
	if n > 0 {
		g.dropped[3].Add(int64(n))
		g.log.Error("gateway: events undelivered at shutdown are lost: configure spool.dir to keep them", "count", n)
	}
}

// ready reports whether events may be published now.
func (g *Gateway) ready() bool { return g.connected.Load() && g.client.IsConnectionOpen() }

func (g *Gateway) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.q.Len()
}

// Stats returns a snapshot of the counters.
func (g *Gateway) Stats() Stats {
	s := Stats{
		Connected:  g.connected.Load(),
		Published:  g.published.Load(),
		Retried:    g.retried.Load(),
		Queued:     g.queued(),
		Refused:    g.refused.Load(),
		BadReplies: g.badReplies.Load(),
		Heartbeats: g.heartbeats.Load(),
		Dropped:    make(map[string]int64, len(dropReasons)),

		ClockSuspect: g.clockSuspect.Load(),
	}
	g.mu.Lock()
	if sp, ok := g.q.(*Spool); ok {
		s.Spooled, s.SpoolErrors, s.SpoolCorrupt = true, sp.WriteErrors(), sp.Corrupt
	}
	g.mu.Unlock()
	for i, r := range dropReasons {
		s.Dropped[r] = g.dropped[i].Load()
	}
	return s
}

// Drivers returns each driver's state, for the health page.
func (g *Gateway) Drivers() []devices.Status { return g.reg.States() }

// Publish queues ev for the broker and waits for the first attempt: nil
// means the broker acknowledged it. An error wrapping ErrQueued means it is
// held for retry (the link is down, or ctx ended first): it is not lost. An
// error wrapping ErrDropped means it was not kept, and was counted.
//
// The gateway fills V, Site, Gateway, ID, Seq and Time (if zero), and the
// device's type, resident, unit and room from its description if empty.
func (g *Gateway) Publish(ctx context.Context, ev event.Event) error {
	w := make(chan error, 1)
	seq, id, err := g.enqueue(ev, w)
	if err != nil {
		return err
	}
	if !g.connected.Load() {
		g.forget(seq)
		return fmt.Errorf("gateway: event %s: not connected: %w", id, ErrQueued)
	}
	select {
	case err := <-w:
		return err
	case <-ctx.Done():
		g.forget(seq)
		return fmt.Errorf("gateway: event %s: %w (%w)", id, ErrQueued, ctx.Err())
	}
}

func (g *Gateway) forget(seq uint64) {
	g.mu.Lock()
	delete(g.waiters, seq)
	g.mu.Unlock()
}

// signal tells a Publish caller, if one still waits, how its event fared.
// Only the first outcome is reported.
func (g *Gateway) signal(seq uint64, err error) {
	g.mu.Lock()
	w := g.waiters[seq]
	delete(g.waiters, seq)
	g.mu.Unlock()
	if w != nil {
		w <- err
	}
}

// emit is the devices.Emit given to drivers: it queues without waiting.
func (g *Gateway) emit(ev event.Event) { _, _, _ = g.enqueue(ev, nil) }

// AlarmClass reports whether an event must be kept in preference to
// telemetry when the outbox is full: call buttons, falls, door, bed, mat
// and chair state changes, alarm and technical status codes, and the
// gateway's own link events. Motion, positions and plain battery reports
// are telemetry.
func AlarmClass(ev *event.Event) bool {
	if ev.Status == "" && ev.State == event.StateNone && ev.Battery == nil && ev.Position == nil && ev.Type != event.CommLink {
		// A driver's liveness event (a report without news): telemetry,
		// even from a call button, so it never displaces an alarm.
		return false
	}
	switch ev.Status {
	case event.AutomaticAlarm, event.ManualAlarm, event.Assistance, event.OpenTooLong,
		event.Offline, event.IPConnectionFailed, event.RadioTestMissing, event.BatteryLow:
		return true
	}
	switch ev.Type {
	case event.PersonalTrigger, event.FixedTrigger, event.FallDetector, event.CommLink:
		return true
	case event.DoorSensor, event.WanderSensor, event.BedMonitor, event.MatSensor, event.ChairMonitor:
		return ev.State != event.StateNone
	}
	return false
}

// stager is a Queue that can write a message without waiting for the disk
// (the disk spool), so enqueue waits for the fsync outside g.mu.
type stager interface {
	Stage(m Message) (evicted []Message, err error)
	Sync() error
}

func (g *Gateway) enqueue(ev event.Event, w chan error) (seq uint64, id string, err error) {
	if d, ok := g.devs[ev.Device]; ok {
		if ev.Type == "" {
			ev.Type, _ = d.DeviceType()
		}
		if ev.Resident == "" {
			ev.Resident = d.Resident
		}
		if ev.Unit == "" {
			ev.Unit = d.Unit
		}
		if ev.Room == "" {
			ev.Room = d.Room
		}
	}
	seq = g.seq.Add(1)
	ev.V = event.Version
	ev.Site, ev.Gateway = g.cfg.Site, g.cfg.ID
	ev.ID = g.bootID + "-" + strconv.FormatUint(seq, 10)
	ev.Seq = seq
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	payload, err := g.encode(&ev)
	if err != nil {
		g.dropped[2].Add(1)
		g.log.Error("gateway: event refused as invalid; it will not reach the hub",
			"device", ev.Device, "event", ev.ID, "err", err)
		return 0, ev.ID, fmt.Errorf("%w: %s: %w", ErrDropped, ev.ID, err)
	}
	m := Message{ID: ev.ID, Seq: seq, Alarm: AlarmClass(&ev), Payload: payload}

	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		// A driver that outlived shutdown: count it rather than queue it
		// where nothing will ever send it.
		g.dropped[3].Add(1)
		g.log.Error("gateway: event after shutdown dropped", "device", ev.Device, "event", ev.ID)
		return 0, ev.ID, fmt.Errorf("%w: %s: gateway stopped", ErrDropped, ev.ID)
	}
	st, staged := g.q.(stager)
	var evicted []Message
	if staged {
		evicted, err = st.Stage(m)
	} else {
		evicted, err = g.q.Push(m)
	}
	if err == nil && w != nil {
		g.waiters[seq] = w
	}
	ews := make([]chan error, len(evicted))
	for i, e := range evicted {
		ews[i] = g.waiters[e.Seq]
		delete(g.waiters, e.Seq)
	}
	g.mu.Unlock()
	if staged && err == nil {
		// On disk before the caller hears it is queued, but without g.mu:
		// other drivers and the send loop go on during the fsync.
		if serr := st.Sync(); serr != nil {
			g.log.Error("gateway: spool fsync failed; the event is queued but would not survive a restart",
				"event", ev.ID, "err", serr)
		}
	}

	for i, e := range evicted {
		g.dropped[1].Add(1)
		g.dropsUnreported.Add(1)
		g.log.Error("gateway: outbox full; telemetry event dropped to keep an alarm",
			"event", e.ID, "kept", ev.ID, "device", ev.Device)
		if ews[i] != nil {
			ews[i] <- fmt.Errorf("%w: %s evicted from a full outbox", ErrDropped, e.ID)
		}
	}
	if err != nil {
		g.dropped[0].Add(1)
		g.dropsUnreported.Add(1)
		g.log.Error("gateway: outbox full; event dropped", "device", ev.Device, "event", ev.ID,
			"alarm", m.Alarm, "err", err)
		return 0, ev.ID, fmt.Errorf("%w: %s: %w", ErrDropped, ev.ID, err)
	}
	notify(g.wake)
	return seq, ev.ID, nil
}

func (g *Gateway) encode(ev *event.Event) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	p, err := event.Encode(ev)
	if err != nil {
		return nil, err
	}
	if len(p) > event.MaxPayload {
		return nil, fmt.Errorf("event: encoded size %d exceeds %d", len(p), event.MaxPayload)
	}
	return p, nil
}

// sendLoop publishes the front of the outbox, one event at a time, and
// removes it only on a PUBACK received on the same connection. One in
// flight keeps the order strict across reconnects; a home produces a
// handful of events a minute, far below what one round trip per event
// carries.
func (g *Gateway) sendLoop(ctx context.Context) {
	topic := event.EventTopic(g.cfg.Site, g.cfg.ID)
	var (
		tok      mqtt.Token
		tokEpoch uint64
		sentAt   time.Time
		due      time.Time // when the wait for this PUBACK counts as too long
		cur      uint64    // seq of the front message
		attempts int
		warned   bool // the Publish caller was told the event is held
		slow     bool // this token's slowness was logged
	)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// sleep waits until woken (an event was queued or the link became
	// ready), d passed, or ctx ended (false).
	sleep := func(d time.Duration) bool {
		timer.Reset(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		case <-g.wake:
		}
		return true
	}
	held := func(m Message) {
		if !warned {
			warned = true
			g.signal(m.Seq, fmt.Errorf("gateway: event %s: %w", m.ID, ErrQueued))
		}
	}
	stuckAfter := 4 * g.opts.publishTimeout
	for ctx.Err() == nil {
		g.mu.Lock()
		m, ok := g.q.Front()
		g.mu.Unlock()
		if !ok {
			if !sleep(time.Minute) {
				return
			}
			continue
		}
		if m.Seq != cur {
			cur, attempts, tok, warned = m.Seq, 0, nil, false
		}
		if tok == nil {
			if !g.ready() {
				held(m)
				if !sleep(time.Second) {
					return
				}
				continue
			}
			tokEpoch = g.epoch.Load()
			tok = g.client.Publish(topic, 1, false, m.Payload)
			sentAt = time.Now()
			due = sentAt.Add(g.opts.publishTimeout)
			slow = false
			attempts++
			if attempts > 1 {
				g.retried.Add(1)
			}
		}
		if now := time.Now(); !now.Before(due) {
			// Not acknowledged in time: the caller hears it is held. Paho
			// resends it after a reconnect, so a new copy is sent only
			// then, or if the link stays up without a PUBACK for long.
			held(m)
			if !slow {
				slow = true
				g.log.Warn("gateway: event not acknowledged in time; holding it for retry",
					"event", m.ID, "timeout", g.opts.publishTimeout)
			}
			if g.ready() && now.Sub(sentAt) > stuckAfter {
				tok = nil
				continue
			}
			due = now.Add(g.opts.publishTimeout)
		}
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-g.wake:
			if g.epoch.Load() != tokEpoch && g.ready() {
				tok = nil // sent on a connection that is gone: send again
			}
		case <-tok.Done():
			err := tok.Error()
			tok = nil
			if err == nil && g.epoch.Load() == tokEpoch {
				g.mu.Lock()
				g.q.Pop()
				g.mu.Unlock()
				g.published.Add(1)
				g.signal(m.Seq, nil)
				g.reportDrops()
				continue
			}
			// Failed, or completed by a reconnect's resend rather than a
			// PUBACK: send again (a duplicate the hub removes by id).
			held(m)
			if err != nil {
				g.log.Warn("gateway: publish failed; holding the event for retry", "event", m.ID, "err", err)
				if !sleep(time.Second) {
					return
				}
			}
		}
		timer.Stop()
	}
}

// reportDrops raises a technical event once the link works after events
// were dropped, so a loss is seen by the hub and not only in a local log.
func (g *Gateway) reportDrops() {
	n := g.dropsUnreported.Swap(0)
	if n == 0 {
		return
	}
	g.log.Error("gateway: raising a technical event for dropped events", "count", n)
	_, _, _ = g.enqueue(event.Event{Device: g.cfg.ID, Type: event.CommLink, Status: event.IPConnectionFailed}, nil)
}

// connLoop connects, and reconnects with capped exponential backoff and
// jitter (so a restarted hub is not hit by every gateway at once). After
// each connect it subscribes to replies (again: a restarted broker may have
// lost the session) and announces the retained online status.
func (g *Gateway) connLoop(ctx context.Context) {
	first := min(time.Second, g.opts.reconnectMax)
	backoff := first
	for failures := 0; ctx.Err() == nil; {
		// Bumped before Connect, whose resend of stored packets completes
		// their old tokens: the sender then knows no PUBACK came.
		g.epoch.Add(1)
		tok := g.client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			tok.WaitTimeout(g.opts.connectTimeout) // let it settle before Disconnect
			return
		}
		if err := tok.Error(); err != nil {
			failures++
			g.log.Warn("gateway: cannot connect to broker; retrying", "err", err, "attempt", failures, "retry_in", backoff)
			if !sleepCtx(ctx, jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, g.opts.reconnectMax)
			continue
		}
		failures, backoff = 0, first
		select { // a loss signal from before this connection is stale
		case <-g.lost:
		default:
		}
		g.announce()
		g.connected.Store(true)
		notify(g.wake)
		g.log.Info("gateway: connected to broker")
		select {
		case <-g.lost:
			g.connected.Store(false)
			if !sleepCtx(ctx, jitter(first)) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (g *Gateway) announce() {
	rt := g.client.Subscribe(event.ReplyTopic(g.cfg.Site, g.cfg.ID), 1, g.onReply)
	st := g.client.Publish(event.StatusTopic(g.cfg.Site, g.cfg.ID), 1, true, g.onlinePayload())
	if !rt.WaitTimeout(g.opts.publishTimeout) || rt.Error() != nil {
		g.log.Error("gateway: subscribe to hub replies failed; refusals will not be seen until the next connect", "err", rt.Error())
	}
	if !st.WaitTimeout(g.opts.publishTimeout) || st.Error() != nil {
		g.log.Warn("gateway: online status not acknowledged", "err", st.Error())
	}
}

// jitter spreads d by ±20 %.
func jitter(d time.Duration) time.Duration {
	return d - d/5 + time.Duration(mrand.Int64N(int64(d/5)*2+1))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (g *Gateway) onlinePayload() []byte {
	p, _ := json.Marshal(statusMsg{
		State:      "online",
		TS:         time.Now().UTC().Format(time.RFC3339),
		HeartbeatS: int(g.heartbit / time.Second),
	})
	return p
}

func (g *Gateway) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(g.heartbit)
	defer t.Stop()
	topic := event.HeartbeatTopic(g.cfg.Site, g.cfg.ID)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !g.ready() {
			continue // a heartbeat is proof of life now; a stale one proves nothing
		}
		p := fitHeartbeat(g.heartbeat(time.Now()))
		tok := g.client.Publish(topic, 1, false, p)
		if !tok.WaitTimeout(g.heartbit) || tok.Error() != nil {
			g.log.Warn("gateway: heartbeat not acknowledged", "err", tok.Error())
			continue
		}
		g.heartbeats.Add(1)
	}
}

func (g *Gateway) heartbeat(now time.Time) heartbeatMsg {
	g.checkClock(now)
	hb := heartbeatMsg{
		TS: now.UTC().Format(time.RFC3339), Seq: g.hbSeq.Add(1),
		Spool: g.queued(), ClockSuspect: g.clockBad.Load(),
	}
	for i := range g.dropped {
		hb.Dropped += g.dropped[i].Load()
	}
	for _, d := range g.reg.States() {
		e := d.Err
		if len(e) > 200 { // a panic's stack trace stays in the local log
			e = e[:200]
		}
		dh := driverHealth{Name: d.Name, State: string(d.State), Err: e}
		if r, ok := g.reg.Driver(d.Name).(devices.InputReporter); ok {
			in := r.InputStats()
			dh.InputStats = &in
		}
		hb.Drivers = append(hb.Drivers, dh)
	}
	return hb
}

// maxHeartbeat keeps a heartbeat well inside the hub's payload limit
// (event.MaxPayload): a larger one is not read at all, and the drops it
// reports would be lost with it.
const maxHeartbeat = event.MaxPayload * 3 / 4

// fitHeartbeat encodes hb, shortening the drivers' word and problem lists
// (never their counts) until it fits maxHeartbeat.
func fitHeartbeat(hb heartbeatMsg) []byte {
	p, _ := json.Marshal(hb)
	hb.Drivers = slices.Clone(hb.Drivers) // shortened here, not in the caller's
	for range 16 {
		if len(p) <= maxHeartbeat {
			break
		}
		cut := false
		for i := range hb.Drivers {
			in := hb.Drivers[i].InputStats
			if in == nil {
				continue
			}
			c := *in
			if n := len(c.Words); n > 0 {
				c.Words, cut = c.Words[:n/2], true
			}
			if n := len(c.Problems); n > 1 {
				c.Problems, cut = c.Problems[:n/2], true
			}
			hb.Drivers[i].InputStats = &c
		}
		if !cut {
			break
		}
		p, _ = json.Marshal(hb)
	}
	return p
}

// clockFloor is the earliest believable time: the build date, or later.
// A Pi has no real-time clock; until NTP answers it may believe it is
// 1970 or the time of its last shutdown. Set at build time with
// -ldflags "-X github.com/vaka-care/vaka/gateway.clockFloor=2026-06-01".
var clockFloor = "2026-01-01"

// ClockFloor is the parsed clockFloor (2026-01-01 if it does not parse).
func ClockFloor() time.Time {
	t, err := time.Parse("2006-01-02", clockFloor)
	if err != nil {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return t
}

// checkClock flags the gateway's own clock when it reads before the floor:
// a log line, a counter (Stats.ClockSuspect) and, on each change to bad, a
// technical event (dty 0032 communication link, no status code) so the hub
// knows this gateway's event times cannot be trusted. The hub separately
// flags events stamped far from its own clock.
func (g *Gateway) checkClock(now time.Time) {
	bad := now.Before(g.opts.clockFloor)
	if !bad {
		if g.clockBad.Swap(false) {
			g.log.Info("gateway: clock is believable again", "now", now.UTC().Format(time.RFC3339))
		}
		return
	}
	g.clockSuspect.Add(1)
	if !g.clockBad.Swap(true) {
		g.log.Error("gateway: system clock is before the build-time floor; event times are wrong until NTP sets it",
			"now", now.UTC().Format(time.RFC3339), "floor", g.opts.clockFloor.Format("2006-01-02"))
		_, _, _ = g.enqueue(event.Event{Device: g.cfg.ID, Type: event.CommLink, Time: now}, nil)
	}
}

// replyMsg is the hub's answer to a refused event.
type replyMsg struct {
	ID     string `json:"id"`
	SNU    *int   `json:"snu"`
	Reason string `json:"reason"`
}

const maxReply = 4 << 10

// onReply runs in paho's router: it must not block.
func (g *Gateway) onReply(_ mqtt.Client, msg mqtt.Message) {
	var r replyMsg
	p := msg.Payload()
	if len(p) > maxReply || json.Unmarshal(p, &r) != nil || r.SNU == nil || len(r.ID) > 128 {
		g.badReplies.Add(1)
		g.log.Warn("gateway: unreadable message on the reply topic", "bytes", len(p))
		return
	}
	switch event.ReplyCode(*r.SNU) {
	case event.ReplyOK:
		return
	case event.ReplyBusy:
		// The hub evaluated the event but could not store it (its disk):
		// it sent no PUBACK, so the event stays in the spool and is sent
		// again. Not a refusal.
		g.log.Warn("gateway: hub could not store an event yet; it stays in the spool and is sent again", "event", r.ID)
		return
	}
	g.refused.Add(1)
	reason := r.Reason
	if len(reason) > 200 {
		reason = reason[:200]
	}
	g.log.Error("gateway: hub refused an event", "event", r.ID, "snu", *r.SNU, "reason", reason)
}

// driverReport logs driver state changes and turns a failed driver, or a
// skipped one that has configured devices, into technical events: those
// devices are silent, and the hub must know before someone relies on them.
func (g *Gateway) driverReport(s devices.Status) {
	log := g.log.With("driver", s.Name)
	switch s.State {
	case devices.StateRunning:
		log.Info("gateway: driver running")
	case devices.StateStopped:
		log.Info("gateway: driver stopped")
	case devices.StateSkipped:
		if len(g.byDriver[s.Name]) == 0 {
			log.Info("gateway: driver skipped (hardware not present)")
			return
		}
		log.Error("gateway: driver skipped but devices are configured for it; reporting them offline")
		g.driverDown(s.Name)
	case devices.StateFailed:
		log.Error("gateway: driver failed; reporting its devices offline", "err", s.Err)
		g.driverDown(s.Name)
	}
}

func (g *Gateway) driverDown(name string) {
	devs := g.byDriver[name]
	if len(devs) == 0 {
		g.emit(event.Event{Device: name, Type: event.CommLink, Status: event.Offline})
		return
	}
	for _, d := range devs {
		t, _ := d.DeviceType()
		g.emit(event.Event{Device: d.ID, Type: t, Status: event.Offline})
	}
}

// redactURL drops any user info so a URL can be logged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid)"
	}
	u.User = nil
	return u.String()
}
