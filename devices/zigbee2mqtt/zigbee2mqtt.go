package zigbee2mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
)

// Name is the driver name device descriptions use ("driver: zigbee2mqtt").
const Name = "zigbee2mqtt"

// Opts are the driver-wide options (the gateway config's
// drivers.zigbee2mqtt section).
type Opts struct {
	// URL of the broker zigbee2mqtt publishes to, usually the Pi's own
	// Mosquitto: tcp://127.0.0.1:1883.
	URL string
	// BaseTopic is zigbee2mqtt's base_topic (default "zigbee2mqtt").
	BaseTopic    string
	Username     string
	PasswordFile string
	// ClientID defaults to "vaka-z2m-<pid>".
	ClientID string
	// Liveness is the longest a device's reports may go unforwarded: a
	// device that reports without news (an unchanged state, a repeated
	// "online", a last_seen) gets one event with neither state nor status
	// per Liveness, so the hub's supervision sees it alive without a
	// message per report. Default 1 min; it must stay well under the
	// shortest supervision period.
	Liveness time.Duration
}

// DefaultOpts is what an empty drivers.zigbee2mqtt section means.
var DefaultOpts = Opts{URL: "tcp://127.0.0.1:1883", BaseTopic: "zigbee2mqtt", Liveness: time.Minute}

// ParseOpts reads the driver options (all optional): url, base_topic,
// username, password_file, client_id, liveness_interval.
func ParseOpts(m map[string]string) (Opts, error) {
	o := DefaultOpts
	var errs []error
	for k, v := range m {
		switch k {
		case "url":
			o.URL = v
		case "base_topic":
			o.BaseTopic = strings.TrimSuffix(v, "/")
		case "username":
			o.Username = v
		case "password_file":
			o.PasswordFile = v
		case "client_id":
			o.ClientID = v
		case "liveness_interval":
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > 10*time.Minute {
				errs = append(errs, config.Errorf(k, "must be a duration from 1s to 10m, e.g. 1m"))
			}
			o.Liveness = d
		default:
			errs = append(errs, config.Errorf(k, "unknown option; known: url, base_topic, username, password_file, client_id, liveness_interval"))
		}
	}
	if u, err := url.Parse(o.URL); err != nil || u.Host == "" {
		errs = append(errs, config.Errorf("url", "not a broker URL, e.g. tcp://127.0.0.1:1883"))
	}
	if o.BaseTopic == "" || strings.ContainsAny(o.BaseTopic, "#+") {
		errs = append(errs, config.Errorf("base_topic", "must be a topic without wildcards, e.g. zigbee2mqtt"))
	}
	return o, errors.Join(errs...)
}

// CheckDevice validates a device's options: friendly_name is required
// (the name zigbee2mqtt publishes it under; a "/" makes a topic tree).
// press_actions and ignore_actions are comma-separated action words for
// a button whose words Vaka does not know: press_actions raise a call,
// ignore_actions are known non-presses (neither counted nor logged).
func CheckDevice(d devices.Device) error {
	var errs []error
	for k, v := range d.Options {
		switch k {
		case "friendly_name":
			if v == "" || strings.ContainsAny(v, "#+") || strings.HasSuffix(v, "/availability") || strings.HasPrefix(v, "bridge/") {
				errs = append(errs, fmt.Errorf("options.friendly_name %q: not a usable zigbee2mqtt friendly name", v))
			}
		case "press_actions", "ignore_actions":
			if len(wordSet(v)) == 0 {
				errs = append(errs, fmt.Errorf("options.%s %q: want comma-separated action words, e.g. arm_all_zones,disarm", k, v))
			}
		default:
			errs = append(errs, fmt.Errorf("options.%s: unknown option for driver zigbee2mqtt; known: friendly_name, press_actions, ignore_actions", k))
		}
	}
	p, i := wordSet(d.Options["press_actions"]), wordSet(d.Options["ignore_actions"])
	for w := range p {
		if i[w] {
			errs = append(errs, fmt.Errorf("options: action %q is in both press_actions and ignore_actions", w))
		}
	}
	if _, ok := d.Options["friendly_name"]; !ok {
		errs = append(errs, errors.New("options.friendly_name: missing; the device's name in zigbee2mqtt"))
	}
	return errors.Join(errs...)
}

// wordSet splits a comma-separated option into a set.
func wordSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			m[w] = true
		}
	}
	return m
}

// Stats are the driver's counters.
type Stats struct {
	Messages  int64 // messages received for configured devices
	Events    int64 // events emitted (liveness included)
	Malformed int64 // payloads that did not decode: counted, logged (without content), skipped
	Unmapped  int64 // properties and action words that arrived and map to nothing
	Liveness  int64 // liveness events (reports without news, forwarded at most once per interval)
}

// BridgeDevice is the device name of events about zigbee2mqtt itself
// (type communication_link): its bridge/state going offline or online.
const BridgeDevice = "zigbee2mqtt"

// BrokerDevice is the device name of events about the driver's link to
// the broker zigbee2mqtt publishes to (type communication_link).
const BrokerDevice = "zigbee2mqtt-broker"

// maxWordsPerDevice bounds the distinct unmapped words remembered per
// device (beyond it they are still counted, and logged once as "more").
const maxWordsPerDevice = 16

// Driver subscribes to zigbee2mqtt for the configured friendly names.
type Driver struct {
	opts Opts
	log  *slog.Logger
	devs map[string]*dev // by friendly name

	msgs, events, malformed, unmapped, liveness atomic.Int64

	mu     sync.Mutex
	emit   devices.Emit
	client mqtt.Client
	now    func() time.Time

	linkGrace, linkTick time.Duration // tests shorten them

	bmu           sync.Mutex
	bridgeOffline bool
	bridgeSeen    bool     // a bridge/state arrived since start
	problems      []string // configured devices that cannot work (bridge.go)
}

type dev struct {
	d     devices.Device
	typ   event.DeviceType
	words Words
	mu    sync.Mutex
	last  last
	// sent is when an event for the device was last emitted: a report
	// without news is forwarded as liveness only when sent is older than
	// the driver's Liveness.
	sent time.Time
	// seen counts unmapped words by word: each is logged once.
	seen map[string]int64
}

var _ devices.Driver = (*Driver)(nil)

// New builds the driver for devs (each with options.friendly_name).
func New(opts Opts, devs []devices.Device, log *slog.Logger) (*Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.BaseTopic == "" {
		opts.BaseTopic = DefaultOpts.BaseTopic
	}
	if opts.Liveness <= 0 {
		opts.Liveness = DefaultOpts.Liveness
	}
	d := &Driver{opts: opts, log: log.With("driver", Name), devs: map[string]*dev{}, now: time.Now}
	for _, x := range devs {
		if err := CheckDevice(x); err != nil {
			return nil, fmt.Errorf("zigbee2mqtt: device %s: %w", x.ID, err)
		}
		t, err := x.DeviceType()
		if err != nil {
			return nil, fmt.Errorf("zigbee2mqtt: device %s: %w", x.ID, err)
		}
		fn := x.Options["friendly_name"]
		if o, dup := d.devs[fn]; dup {
			return nil, fmt.Errorf("zigbee2mqtt: devices %s and %s share friendly_name %q", o.d.ID, x.ID, fn)
		}
		d.devs[fn] = &dev{d: x, typ: t, seen: map[string]int64{},
			words: Words{Press: wordSet(x.Options["press_actions"]), Ignore: wordSet(x.Options["ignore_actions"])}}
	}
	return d, nil
}

// Name implements devices.Driver.
func (d *Driver) Name() string { return Name }

// Init implements devices.Driver: it prepares the MQTT client. It does not
// wait for the broker, which may start after the gateway; Run retries.
func (d *Driver) Init(context.Context) (bool, error) {
	mo := mqtt.NewClientOptions().AddBroker(d.opts.URL).
		SetClientID(d.clientID()).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true). // handlers never block (emit does not), and per-device order matters.
		SetOnConnectHandler(d.subscribe).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			d.log.Warn("zigbee2mqtt: connection to the zigbee broker lost; retrying", "err", err)
		})
	if d.opts.Username != "" {
		mo.SetUsername(d.opts.Username)
	}
	if d.opts.PasswordFile != "" {
		p, err := os.ReadFile(d.opts.PasswordFile)
		if err != nil {
			return false, fmt.Errorf("password_file: %w", err)
		}
		mo.SetPassword(strings.TrimRight(string(p), "\r\n"))
	}
	d.client = mqtt.NewClient(mo)
	return true, nil
}

func (d *Driver) clientID() string {
	if d.opts.ClientID != "" {
		return d.opts.ClientID
	}
	return fmt.Sprintf("vaka-z2m-%d", os.Getpid())
}

// SetEmit sets where Handle's events go without running the driver: for
// replaying recorded messages (tests, what-if runs) with no broker.
func (d *Driver) SetEmit(emit devices.Emit) {
	d.mu.Lock()
	d.emit = emit
	d.mu.Unlock()
}

// Run implements devices.Driver.
func (d *Driver) Run(ctx context.Context, emit devices.Emit) error {
	d.SetEmit(emit)
	d.client.Connect() // with ConnectRetry it keeps trying in the background
	d.watchLink(ctx, d.client.IsConnectionOpen)
	d.client.Disconnect(250)
	return nil
}

// LinkGrace is how long the zigbee broker may be unreachable before the
// driver reports zigbee2mqtt down: longer than a broker restart, far
// shorter than any device's supervision (a dead local Mosquitto would
// otherwise only show as idle sensors going silent a day later).
const LinkGrace = 60 * time.Second

// watchLink checks the connection to the zigbee broker until ctx is done:
// unreachable for longer than the grace (from the start, too: a broker
// that never comes up), it emits a communication_link offline for device
// BrokerDevice; back, a restoral.
func (d *Driver) watchLink(ctx context.Context, up func() bool) {
	grace, tick := d.linkGrace, d.linkTick
	if grace <= 0 {
		grace = LinkGrace
	}
	if tick <= 0 {
		tick = 5 * time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	// The first time the link is up, a restoral is sent too: the hub may
	// still hold the link down from before this gateway restarted.
	const unknown, isUp, isDown = 0, 1, 2
	state, downSince := unknown, d.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := d.now()
		switch {
		case up():
			downSince = time.Time{}
			if state != isUp {
				if state == isDown {
					d.log.Info("zigbee2mqtt: zigbee broker reachable again")
				}
				state = isUp
				d.send(BrokerDevice, event.CommLink, now, []event.Event{{Status: event.Restoral}})
			}
		case downSince.IsZero():
			downSince = now
		case state != isDown && now.Sub(downSince) >= grace:
			state = isDown
			d.log.Error("zigbee2mqtt: zigbee broker unreachable; no zigbee device can be heard", "for", now.Sub(downSince).Round(time.Second))
			d.send(BrokerDevice, event.CommLink, now, []event.Event{{Status: event.Offline}})
		}
	}
}

// Stats returns the counters.
func (d *Driver) Stats() Stats {
	return Stats{Messages: d.msgs.Load(), Events: d.events.Load(), Malformed: d.malformed.Load(),
		Unmapped: d.unmapped.Load(), Liveness: d.liveness.Load()}
}

var _ devices.InputReporter = (*Driver)(nil)

// InputStats implements devices.InputReporter: the gateway sends it in
// its heartbeat, so the hub sees what this driver could not use.
func (d *Driver) InputStats() devices.InputStats {
	s := devices.InputStats{Malformed: d.malformed.Load(), Unmapped: d.unmapped.Load()}
	for _, x := range d.devs {
		x.mu.Lock()
		for w := range x.seen {
			s.Words = append(s.Words, x.d.ID+": "+w)
		}
		x.mu.Unlock()
	}
	slices.Sort(s.Words)
	if len(s.Words) > devices.MaxInputWords {
		s.Words = s.Words[:devices.MaxInputWords]
	}
	d.bmu.Lock()
	s.Problems = slices.Clone(d.problems)
	d.bmu.Unlock()
	return s
}

func (d *Driver) subscribe(c mqtt.Client) {
	filters := make(map[string]byte, 2*len(d.devs)+2)
	// zigbee2mqtt's own liveness: retained, and its MQTT Last Will.
	filters[d.opts.BaseTopic+"/bridge/state"] = 1
	// Its retained device list: what each configured device can report.
	filters[d.opts.BaseTopic+"/bridge/devices"] = 1
	for fn := range d.devs {
		filters[d.opts.BaseTopic+"/"+fn] = 1
		filters[d.opts.BaseTopic+"/"+fn+"/availability"] = 1
	}
	tok := c.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) { d.Handle(m.Topic(), m.Payload()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		d.log.Error("zigbee2mqtt: subscribe failed; devices stay silent until the next connect", "err", tok.Error())
		return
	}
	d.log.Info("zigbee2mqtt: subscribed", "devices", len(d.devs), "base_topic", d.opts.BaseTopic)
}

// Handle decodes one message from the zigbee broker and emits its events.
// It is exported for tests and fuzzing; Run's subscriber calls it.
//
// Every decoded report is proof of life, changed or not: if it brings no
// event and nothing was emitted for the device within Opts.Liveness, a
// liveness event (no state, no status) is emitted, so the hub's
// supervision never mistakes an idle sensor for a dead one.
func (d *Driver) Handle(topic string, payload []byte) {
	rest, ok := strings.CutPrefix(topic, d.opts.BaseTopic+"/")
	if !ok {
		return
	}
	switch rest {
	case "bridge/state":
		d.bridge(topic, payload)
		return
	case "bridge/devices":
		d.bridgeDevices(topic, payload)
		return
	}
	fn, avail := strings.CutSuffix(rest, "/availability")
	x := d.devs[fn]
	if x == nil {
		if !avail {
			return
		}
		// A device whose friendly name itself ends in /availability.
		if x = d.devs[rest]; x == nil {
			return
		}
		avail = false
	}
	d.msgs.Add(1)
	now := d.now()
	x.mu.Lock()
	var evs []event.Event
	var unmapped []string
	if avail {
		online, err := DecodeAvailability(payload)
		if err != nil {
			x.mu.Unlock()
			d.bad(x, topic, payload, err)
			return
		}
		switch {
		case !online && !x.last.offline:
			x.last.offline = true
			evs = append(evs, event.Event{Status: event.Offline})
		case online && x.last.offline:
			x.last.offline = false
			evs = append(evs, event.Event{Status: event.Restoral})
		case !online:
			// Still offline: not a sign of life.
			x.mu.Unlock()
			return
		}
	} else {
		r, err := DecodeState(payload)
		if err != nil {
			x.mu.Unlock()
			d.bad(x, topic, payload, err)
			return
		}
		evs, unmapped = x.last.events(x.typ, r, x.words)
		unmapped = append(unmapped, r.Unmapped...)
	}
	if len(evs) == 0 && now.Sub(x.sent) >= d.opts.Liveness {
		evs = append(evs, event.Event{})
		d.liveness.Add(1)
	}
	if len(evs) > 0 {
		x.sent = now
	}
	var fresh []string
	for _, w := range unmapped {
		d.unmapped.Add(1)
		if _, ok := x.seen[w]; ok {
			x.seen[w]++
			continue
		}
		if len(x.seen) >= maxWordsPerDevice {
			w = "(more)"
			if _, ok := x.seen[w]; ok {
				x.seen[w]++
				continue
			}
		}
		x.seen[w] = 1
		fresh = append(fresh, w)
	}
	x.mu.Unlock()
	for _, w := range fresh {
		// Once per device and word: the word is a property name or an
		// action word from the device's converter, never personal data.
		d.log.Warn("zigbee2mqtt: unmapped property or action word; counted, no event (add press_actions/ignore_actions to the device if it is a button)",
			"device", x.d.ID, "word", w, "unmapped_total", d.unmapped.Load())
	}
	d.send(x.d.ID, x.typ, now, evs)
}

// bridge handles zigbee2mqtt's bridge/state: when zigbee2mqtt dies its
// Will sets it offline, while every device's retained "online" stays, so
// without this a dead zigbee2mqtt would look like a quiet home.
func (d *Driver) bridge(topic string, payload []byte) {
	d.msgs.Add(1)
	online, err := DecodeAvailability(payload)
	if err != nil {
		n := d.malformed.Add(1)
		d.log.Warn("zigbee2mqtt: bridge state skipped", "topic", topic, "bytes", len(payload), "err", err, "malformed_total", n)
		return
	}
	d.bmu.Lock()
	var ev event.Event
	switch {
	case !online && !d.bridgeOffline:
		d.bridgeOffline = true
		ev.Status = event.Offline
		d.log.Error("zigbee2mqtt: zigbee2mqtt reports itself offline; no zigbee device can be heard")
	case online && d.bridgeOffline:
		d.bridgeOffline = false
		ev.Status = event.Restoral
		d.log.Info("zigbee2mqtt: zigbee2mqtt back online")
	case online && !d.bridgeSeen:
		// The first "online" since start: the hub may still hold
		// zigbee2mqtt down from before this gateway restarted.
		ev.Status = event.Restoral
	}
	d.bridgeSeen = true
	d.bmu.Unlock()
	if ev.Status != "" {
		d.send(BridgeDevice, event.CommLink, d.now(), []event.Event{ev})
	}
}

func (d *Driver) send(device string, typ event.DeviceType, now time.Time, evs []event.Event) {
	d.mu.Lock()
	emit := d.emit
	d.mu.Unlock()
	for _, ev := range evs {
		ev.Device, ev.Type, ev.Time = device, typ, now
		d.events.Add(1)
		if emit != nil {
			emit(ev)
		}
	}
}

// bad counts and logs an undecodable payload. The content is not logged:
// it may be large, and it is not ours to copy into logs.
func (d *Driver) bad(x *dev, topic string, payload []byte, err error) {
	n := d.malformed.Add(1)
	d.log.Warn("zigbee2mqtt: payload skipped", "device", x.d.ID, "topic", topic, "bytes", len(payload), "err", err, "malformed_total", n)
}
