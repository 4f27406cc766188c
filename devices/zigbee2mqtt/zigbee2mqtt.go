package zigbee2mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
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
}

// DefaultOpts is what an empty drivers.zigbee2mqtt section means.
var DefaultOpts = Opts{URL: "tcp://127.0.0.1:1883", BaseTopic: "zigbee2mqtt"}

// ParseOpts reads the driver options (all optional): url, base_topic,
// username, password_file, client_id.
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
		default:
			errs = append(errs, config.Errorf(k, "unknown option; known: url, base_topic, username, password_file, client_id"))
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
func CheckDevice(d devices.Device) error {
	var errs []error
	for k, v := range d.Options {
		switch k {
		case "friendly_name":
			if v == "" || strings.ContainsAny(v, "#+") || strings.HasSuffix(v, "/availability") {
				errs = append(errs, fmt.Errorf("options.friendly_name %q: not a usable zigbee2mqtt friendly name", v))
			}
		default:
			errs = append(errs, fmt.Errorf("options.%s: unknown option for driver zigbee2mqtt; known: friendly_name", k))
		}
	}
	if _, ok := d.Options["friendly_name"]; !ok {
		errs = append(errs, errors.New("options.friendly_name: missing; the device's name in zigbee2mqtt"))
	}
	return errors.Join(errs...)
}

// Stats are the driver's counters.
type Stats struct {
	Messages  int64 // messages received for configured devices
	Events    int64 // events emitted
	Malformed int64 // payloads that did not decode: counted, logged (without content), skipped
}

// Driver subscribes to zigbee2mqtt for the configured friendly names.
type Driver struct {
	opts Opts
	log  *slog.Logger
	devs map[string]*dev // by friendly name

	msgs, events, malformed atomic.Int64

	mu     sync.Mutex
	emit   devices.Emit
	client mqtt.Client
}

type dev struct {
	d    devices.Device
	typ  event.DeviceType
	mu   sync.Mutex
	last last
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
	d := &Driver{opts: opts, log: log.With("driver", Name), devs: map[string]*dev{}}
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
		d.devs[fn] = &dev{d: x, typ: t}
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

// Run implements devices.Driver.
func (d *Driver) Run(ctx context.Context, emit devices.Emit) error {
	d.mu.Lock()
	d.emit = emit
	d.mu.Unlock()
	d.client.Connect() // with ConnectRetry it keeps trying in the background
	<-ctx.Done()
	d.client.Disconnect(250)
	return nil
}

// Stats returns the counters.
func (d *Driver) Stats() Stats {
	return Stats{Messages: d.msgs.Load(), Events: d.events.Load(), Malformed: d.malformed.Load()}
}

func (d *Driver) subscribe(c mqtt.Client) {
	filters := make(map[string]byte, 2*len(d.devs))
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
func (d *Driver) Handle(topic string, payload []byte) {
	rest, ok := strings.CutPrefix(topic, d.opts.BaseTopic+"/")
	if !ok {
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
	x.mu.Lock()
	var evs []event.Event
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
		}
	} else {
		r, err := DecodeState(payload)
		if err != nil {
			x.mu.Unlock()
			d.bad(x, topic, payload, err)
			return
		}
		evs = x.last.events(x.typ, r)
	}
	x.mu.Unlock()
	d.mu.Lock()
	emit := d.emit
	d.mu.Unlock()
	now := time.Now()
	for _, ev := range evs {
		ev.Device, ev.Type, ev.Time = x.d.ID, x.typ, now
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
