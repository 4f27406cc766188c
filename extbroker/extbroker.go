// Package extbroker connects the hub to an external MQTT broker (Mosquitto,
// EMQX, VerneMQ …) instead of the embedded one. The hub is then an ordinary
// MQTT client of that broker: it subscribes to the gateways' event, status
// and heartbeat topics through a persistent session (clean session off, a
// stable client id, QoS 1), so messages published while the hub is down or
// reconnecting wait in the broker and arrive afterwards.
//
// Delivery is at least once and in order: messages are handled one at a
// time, in the order the broker sent them, and each is acknowledged (PUBACK)
// only after the handler has returned, that is after the rules ran and any
// alarm transition was written to the journal. A message redelivered after a
// lost connection reaches the hub again; the hub drops repeated events by
// their id, so each alarm is raised once.
//
// Gateway authentication and topic rights are the external broker's job in
// this mode: see docs/scale-out.md for a Mosquitto password file and ACL per
// gateway.
package extbroker

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/event"
)

// Handler receives gateway traffic; the hub implements it (the same
// methods as broker.Handler, declared here where they are consumed).
type Handler interface {
	HandleEvent(site, gateway string, payload []byte) event.Reply
	HandleStatus(site, gateway string, payload []byte)
	HandleHeartbeat(site, gateway string, payload []byte)
}

// Options configure the consumer.
type Options struct {
	// URL of the broker: tcp://host:1883, or ssl://host:8883 for TLS.
	URL      string
	Username string
	Password string
	// CAFile is a PEM bundle that verifies the broker's certificate
	// (ssl:// URLs); empty uses the system roots.
	CAFile string
	// ClientID must be stable across restarts: the broker keeps the
	// session (subscriptions and queued messages) under it.
	ClientID string
	// Sites limits the subscription to these sites' topics (partitioning
	// by site: several hubs on one broker cluster, each with its sites).
	// Empty subscribes to every site.
	Sites []string
	// Share, if set, subscribes through the shared subscription group
	// $share/<Share>/…, for a standby hub that takes over the same sites.
	Share    string
	Handler  Handler
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// ConnectTimeout bounds the first connection attempt in Start
	// (default 10 s). Later reconnects retry forever, with backoff.
	ConnectTimeout time.Duration
}

// Consumer is the hub's session on the external broker.
type Consumer struct {
	o      Options
	log    *slog.Logger
	client paho.Client
	topics map[string]byte

	replies chan reply
	wg      sync.WaitGroup
	stop    chan struct{}
	once    sync.Once

	subscribed chan struct{} // closed after the first SUBACK
	subOnce    sync.Once

	connected   atomic.Bool
	received    atomic.Int64
	ignored     atomic.Int64
	replyFailed atomic.Int64
	notKept     atomic.Int64 // events acknowledged at shutdown though the hub could not store them
	lost        atomic.Int64
}

type reply struct {
	topic   string
	payload []byte
}

// New checks the options and builds a consumer; Start connects.
func New(o Options) (*Consumer, error) {
	if o.Handler == nil {
		return nil, errors.New("extbroker: a handler is required")
	}
	if o.URL == "" {
		return nil, errors.New("extbroker: url is required")
	}
	if o.ClientID == "" {
		return nil, errors.New("extbroker: client_id is required (the broker keeps the session under it)")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("extbroker: url: %w", err)
	}
	c := &Consumer{o: o, log: o.Logger, topics: Topics(o.Sites, o.Share),
		replies: make(chan reply, 1024), stop: make(chan struct{}), subscribed: make(chan struct{})}
	if err := c.register(o.Registry); err != nil {
		return nil, fmt.Errorf("extbroker: metrics: %w", err)
	}
	var tlsCfg *tls.Config
	if isTLS(u.Scheme) {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("extbroker: ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("extbroker: ca_file %s: no PEM certificate", o.CAFile)
			}
			tlsCfg.RootCAs = pool
		}
	} else if o.CAFile != "" {
		return nil, errors.New("extbroker: ca_file needs an ssl:// URL")
	}
	po := paho.NewClientOptions().AddBroker(o.URL).SetClientID(o.ClientID).
		SetUsername(o.Username).SetPassword(o.Password).
		SetProtocolVersion(4).
		SetCleanSession(false). // persistent session: the broker queues while we are away
		SetOrderMatters(true).  // one message at a time, in order; acked when the handler returns
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).SetKeepAlive(30 * time.Second).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second).
		SetDefaultPublishHandler(c.onMessage). // queued messages can arrive before SUBSCRIBE is answered
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.connected.Store(false)
			c.lost.Add(1)
			c.log.Error("extbroker: connection lost; reconnecting", "err", err)
		})
	if tlsCfg != nil {
		po.SetTLSConfig(tlsCfg)
	}
	// paho reads each packet with several small reads: a buffered reader
	// saves a syscall per read on a busy link (docs/benchmarks.md).
	po.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		d := &net.Dialer{Timeout: 5 * time.Second}
		var (
			conn net.Conn
			err  error
		)
		switch strings.ToLower(u.Scheme) {
		case "tcp", "mqtt":
			conn, err = d.Dial("tcp", u.Host)
		case "ssl", "tls", "mqtts", "tcps":
			conn, err = tls.DialWithDialer(d, "tcp", u.Host, tlsCfg)
		default:
			return nil, fmt.Errorf("extbroker: unsupported scheme %q (use tcp or ssl)", u.Scheme)
		}
		if err != nil {
			return nil, err
		}
		return &bufConn{Conn: conn, r: bufio.NewReaderSize(conn, 32<<10)}, nil
	})
	c.client = paho.NewClient(po)
	return c, nil
}

// Topics are the subscriptions for sites ("+" when none), optionally
// through a shared subscription group.
func Topics(sites []string, share string) map[string]byte {
	if len(sites) == 0 {
		sites = []string{"+"}
	}
	out := map[string]byte{}
	for _, s := range sites {
		for _, leaf := range []string{event.LeafEvent, event.LeafStatus, event.LeafBeat} {
			t := event.TopicRoot + "/" + s + "/+/" + leaf
			if share != "" {
				t = "$share/" + share + "/" + t
			}
			out[t] = 1
		}
	}
	return out
}

// Start connects (waiting at most ConnectTimeout for the first CONNACK and
// SUBACK) and keeps the session up until Close.
func (c *Consumer) Start() error {
	c.wg.Add(1)
	go c.publishReplies()
	tok := c.client.Connect()
	if !tok.WaitTimeout(c.o.ConnectTimeout) {
		c.Close()
		return fmt.Errorf("extbroker: no connection to %s within %v", redact(c.o.URL), c.o.ConnectTimeout)
	}
	if err := tok.Error(); err != nil {
		c.Close()
		return fmt.Errorf("extbroker: connect %s: %w", redact(c.o.URL), err)
	}
	select {
	case <-c.subscribed:
	case <-time.After(c.o.ConnectTimeout):
		c.Close()
		return fmt.Errorf("extbroker: %s did not confirm the subscription within %v (check the hub's ACL)", redact(c.o.URL), c.o.ConnectTimeout)
	}
	return nil
}

func (c *Consumer) onConnect(cl paho.Client) {
	// With a persistent session the broker remembers the subscription;
	// subscribing again is harmless and covers a session that expired.
	tok := cl.SubscribeMultiple(c.topics, nil)
	go func() {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			// The broker may still hold the subscription from the
			// persistent session; the next reconnect tries again.
			c.log.Error("extbroker: subscribe failed", "err", tok.Error())
			return
		}
		if st, ok := tok.(*paho.SubscribeToken); ok {
			for topic, q := range st.Result() {
				if q == 0x80 {
					c.log.Error("extbroker: broker refused the subscription (ACL?)", "topic", topic)
					return
				}
			}
		}
		c.connected.Store(true)
		c.subOnce.Do(func() { close(c.subscribed) })
		c.log.Info("extbroker: connected and subscribed", "broker", redact(c.o.URL), "client_id", c.o.ClientID)
	}()
}

// onMessage runs in paho's ordered router goroutine: one message at a
// time. paho sends the PUBACK when it returns, so everything the hub must
// do before the broker may forget the message happens inside it.
func (c *Consumer) onMessage(_ paho.Client, m paho.Message) {
	c.received.Add(1)
	t, ok := event.ParseTopic(strings.TrimPrefix(m.Topic(), sharePrefix(c.o.Share)))
	if !ok {
		c.ignored.Add(1)
		return
	}
	switch t.Leaf {
	case event.LeafEvent:
		r := c.o.Handler.HandleEvent(t.Site, t.Gateway, m.Payload())
		if r.Code == event.ReplyBusy {
			r = c.untilKept(t, m.Payload(), r)
		}
		if r.Code != event.ReplyOK {
			c.reply(t, r)
		}
	case event.LeafStatus:
		c.o.Handler.HandleStatus(t.Site, t.Gateway, m.Payload())
	case event.LeafBeat:
		c.o.Handler.HandleHeartbeat(t.Site, t.Gateway, m.Payload())
	default:
		c.ignored.Add(1)
	}
}

// untilKept holds a message the hub could not make durable (its journal
// cannot write): paho acknowledges a message when this handler returns, so
// returning would tell the broker to forget an alarm the hub did not keep.
// It offers the message again every second (the hub answers a resend from
// what it already holds, without evaluating it twice) until it is kept or
// the consumer stops; later messages wait at the broker meanwhile.
func (c *Consumer) untilKept(t event.Topic, payload []byte, r event.Reply) event.Reply {
	c.log.Error("extbroker: event not stored by the hub; holding it (and the queue behind it) until it is", "site", t.Site, "gateway", t.Gateway)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for r.Code == event.ReplyBusy {
		select {
		case <-c.stop:
			// paho acknowledges the message when this returns: it is
			// lost to the broker. Counted as a drop and logged; the
			// gateway's own spool no longer has it either.
			c.notKept.Add(1)
			c.log.Error("extbroker: stopping while an event was not stored; the broker will consider it delivered", "site", t.Site, "gateway", t.Gateway)
			return r
		case <-tick.C:
		}
		r = c.o.Handler.HandleEvent(t.Site, t.Gateway, payload)
	}
	return r
}

func sharePrefix(share string) string {
	if share == "" {
		return ""
	}
	return "$share/" + share + "/"
}

// reply queues an answer to a refused event. paho must not be blocked from
// inside the ordered handler, so a separate goroutine publishes; a full
// queue is counted, never waited on.
func (c *Consumer) reply(t event.Topic, r event.Reply) {
	b, err := json.Marshal(r)
	if err != nil {
		c.replyFailed.Add(1)
		return
	}
	select {
	case c.replies <- reply{event.ReplyTopic(t.Site, t.Gateway), b}:
	default:
		c.replyFailed.Add(1)
		c.log.Error("extbroker: reply queue full; reply dropped", "site", t.Site, "gateway", t.Gateway)
	}
}

func (c *Consumer) publishReplies() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case r := <-c.replies:
			tok := c.client.Publish(r.topic, 1, false, r.payload)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				c.replyFailed.Add(1)
				c.log.Error("extbroker: reply not published", "topic", r.topic, "err", tok.Error())
			}
		}
	}
}

// Connected reports whether the session is up and subscribed.
func (c *Consumer) Connected() bool { return c.connected.Load() }

// Dropped counts replies that could not be published; the hub raises a
// technical alarm when it grows.
func (c *Consumer) Dropped() int64 { return c.replyFailed.Load() + c.notKept.Load() }

// Close disconnects cleanly. The broker keeps the session: messages
// published meanwhile are delivered on the next Start with the same client id.
func (c *Consumer) Close() error {
	c.once.Do(func() {
		close(c.stop)
		if c.client.IsConnectionOpen() || c.client.IsConnected() {
			c.client.Disconnect(250)
		} else {
			// Stops a connect retry loop as well.
			c.client.Disconnect(0)
		}
		c.connected.Store(false)
		c.wg.Wait()
	})
	return nil
}

func (c *Consumer) register(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vaka_mqtt_external_connected",
			Help: "1 while the hub's session on the external broker is up and subscribed."},
			func() float64 { return cond(c.connected.Load(), 1.0, 0.0) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_external_received_total",
			Help: "Messages received from the external broker."},
			func() float64 { return float64(c.received.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_external_connection_lost_total",
			Help: "Times the session on the external broker was lost."},
			func() float64 { return float64(c.lost.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_reply_failed_total",
			Help: "Replies to refused events the hub could not publish."},
			func() float64 { return float64(c.replyFailed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_external_not_stored_at_stop_total",
			Help: "Events the hub could not store that the external broker's session acknowledged because the hub was stopping (lost)."},
			func() float64 { return float64(c.notKept.Load()) }),
	}
	var errs []error
	for _, col := range cs {
		errs = append(errs, reg.Register(col))
	}
	return errors.Join(errs...)
}

func cond[T any](b bool, x, y T) T {
	if b {
		return x
	}
	return y
}

func isTLS(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "ssl", "tls", "mqtts", "tcps":
		return true
	}
	return false
}

// redact drops any user info from a URL before it is logged.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable url)"
	}
	u.User = nil
	return u.String()
}

// bufConn serves paho's many small reads from a buffer.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }
