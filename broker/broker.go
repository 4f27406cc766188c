// Package broker embeds the mochi MQTT broker and puts Vaka's rules on its
// publish path. Gateways connect with per-gateway credentials and may write
// only under their own site and gateway; every refused or dropped message
// is counted and exported.
//
// The rules run inside mochi's OnPublish hook, in the publishing client's
// own goroutine, before the PUBACK is written: an event is evaluated and its
// alarm persisted before the gateway is told it was received, and the alarm
// path never waits behind any subscriber's inflight quota.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/lograte"
	"github.com/vaka-care/vaka/trackers"
)

// Handler receives gateway traffic. The hub implements it.
type Handler interface {
	HandleEvent(site, gateway string, payload []byte) event.Reply
	HandleStatus(site, gateway string, payload []byte)
	HandleHeartbeat(site, gateway string, payload []byte)
}

// OwnTracksHandler receives OwnTracks messages (owntracks/<user>/<device>
// and its sub-topics). The hub implements it; a Handler without it leaves
// OwnTracks traffic unevaluated.
type OwnTracksHandler interface {
	HandleOwnTracks(user, device, leaf string, payload []byte) error
}

// OwnTracksCredential is one OwnTracks client's login. The username has no
// "/" (gateways' have one), and the client may use only owntracks/<username>/#.
type OwnTracksCredential struct {
	Username     string
	PasswordHash string // bcrypt
}

// Credential is one gateway's login. The MQTT username is "<site>/<gateway>".
type Credential struct {
	Site, Gateway string
	PasswordHash  string // bcrypt
}

// Username is the MQTT username of a gateway.
func Username(site, gateway string) string { return site + "/" + gateway }

// TLS names a certificate and key for a TLS listener.
type TLS struct {
	Address, CertFile, KeyFile string
}

// Options configure the broker.
type Options struct {
	TCP       string // address, e.g. 127.0.0.1:1883; empty disables
	WebSocket string
	TLS       *TLS
	// Demo allows anonymous clients to publish anywhere under vaka/v1.
	Demo        bool
	Credentials []Credential
	// OwnTracks are the logins of OwnTracks phones and trackers.
	OwnTracks []OwnTracksCredential
	Handler   Handler
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	// Limits bound connections, packet sizes and queues; zero fields
	// take DefaultLimits (limits.go).
	Limits Limits
}

// Broker is the embedded MQTT broker.
type Broker struct {
	srv  *mqtt.Server
	log  *slog.Logger
	opts Options
	hook *vakaHook
	lns  []listeners.Listener
	gate *connGate
}

// New builds the broker; Start begins listening.
func New(o Options) (*Broker, error) {
	if o.Handler == nil {
		return nil, errors.New("broker: a handler is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	lim := o.Limits.withDefaults()
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	caps := mqtt.NewDefaultServerCapabilities()
	lim.applyCapabilities(caps)
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true, // the hub answers refused events on the reply topic
		Logger:       slog.New(redactHandler{o.Logger.Handler()}).With("component", "mqtt"),
		Capabilities: caps,
		// A gateway's burst is read in few read(2)s (mochi's default is 2 KiB).
		ClientNetReadBufferSize: 16 << 10,
	})
	h := &vakaHook{h: o.Handler, log: o.Logger, demo: o.Demo, srv: srv, creds: map[string]string{},
		auth: newAuthGuard(lim.AuthConcurrency),
		// Twice the connection limit: a sweep of unconnected ids always frees room.
		ids: newClientIDs(2*lim.MaxConnections, clientActive(srv))}
	for _, c := range o.Credentials {
		h.creds[Username(c.Site, c.Gateway)] = c.PasswordHash
	}
	h.otCreds = map[string]string{}
	for _, c := range o.OwnTracks {
		h.otCreds[c.Username] = c.PasswordHash
	}
	h.ot, _ = o.Handler.(OwnTracksHandler)
	if err := h.register(o.Registry, srv); err != nil {
		return nil, fmt.Errorf("broker: metrics: %w", err)
	}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: add hook: %w", err)
	}
	b := &Broker{srv: srv, log: o.Logger, opts: o, hook: h, gate: newConnGate(lim, h)}
	logLimits(o.Logger, lim)
	if o.TCP != "" {
		b.lns = append(b.lns, newTCPListener("tcp", o.TCP, nil, &h.netWrites))
	}
	if o.WebSocket != "" {
		b.lns = append(b.lns, listeners.NewWebsocket(listeners.Config{ID: "ws", Address: o.WebSocket}))
	}
	if o.TLS != nil {
		cert, err := tls.LoadX509KeyPair(o.TLS.CertFile, o.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("broker: load TLS certificate: %w", err)
		}
		b.lns = append(b.lns, newTCPListener("tls", o.TLS.Address,
			&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, &h.netWrites))
	}
	if len(b.lns) == 0 {
		return nil, errors.New("broker: no listener configured")
	}
	return b, nil
}

// Start opens the listeners and serves in the background.
func (b *Broker) Start() error {
	for _, l := range b.lns {
		if err := b.srv.AddListener(&gatedListener{Listener: l, gate: b.gate}); err != nil {
			return fmt.Errorf("broker: listen %s: %w", l.ID(), err)
		}
	}
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	return nil
}

// Addr is the bound address of a listener ("tcp", "ws" or "tls"), which
// differs from the configured one when that used port 0.
func (b *Broker) Addr(id string) string {
	for _, l := range b.lns {
		if l.ID() == id {
			return l.Address()
		}
	}
	return ""
}

// Close stops the broker and disconnects every client.
func (b *Broker) Close() error { return b.srv.Close() }

// Dropped is the number of messages the broker failed to deliver or
// refused; the hub raises a technical alarm when it grows.
func (b *Broker) Dropped() int64 {
	return b.hook.publishDropped.Load() + b.hook.qosDropped.Load() + b.inflightDropped()
}

// inflightDropped counts QoS 1/2 messages mochi dropped because a
// subscriber's inflight store was full (MaxInflight) or its packet ids ran
// out: mochi only logs these, with no hook, so its counter is read.
func (b *Broker) inflightDropped() int64 { return atomic.LoadInt64(&b.srv.Info.InflightDropped) }

// vakaHook authenticates gateways, enforces topic rights, runs the rules
// and counts every drop. It declares only the events it handles.
type vakaHook struct {
	mqtt.HookBase
	h     Handler
	log   *slog.Logger
	demo  bool
	srv   *mqtt.Server
	mu    sync.RWMutex
	creds map[string]string
	// otCreds are OwnTracks logins (username → bcrypt hash); ot is the
	// handler's OwnTracks side, nil if it has none.
	otCreds map[string]string
	ot      OwnTracksHandler

	auth      *authGuard
	ids       *clientIDs
	subs      eventSubs // subscriptions that could receive gateway events (fanout.go)
	refuseLog lograte.Limiter

	publishDropped atomic.Int64
	received       atomic.Int64 // PUBLISH packets read from clients (not the hub's own)
	retainStripped atomic.Int64
	qosDropped     atomic.Int64
	refused        *prometheus.CounterVec
	replyFailed    atomic.Int64
	notAcked       atomic.Int64 // messages answered without a PUBACK: not durable yet
	netWrites      atomic.Int64 // write calls on TCP and TLS client connections (batchConn)
	selfAcked      atomic.Int64 // PUBACKs the hook wrote itself (ackKept)
}

func (h *vakaHook) ID() string { return "vaka" }

// Provides is asked by mochi for each hook event on every packet (about
// ten times per PUBLISH), so it is a table lookup.
func (h *vakaHook) Provides(b byte) bool { return vakaHookEvents[b] }

var vakaHookEvents = func() (t [256]bool) {
	for _, e := range []byte{
		mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish,
		mqtt.OnPublishDropped, mqtt.OnQosDropped, mqtt.OnWillSent,
		mqtt.OnConnect, mqtt.OnPacketRead, mqtt.OnWill, mqtt.OnDisconnect,
		mqtt.OnSubscribed, mqtt.OnUnsubscribed,
	} {
		t[e] = true
	}
	return t
}()

func (h *vakaHook) register(reg prometheus.Registerer, srv *mqtt.Server) error {
	h.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vaka_mqtt_refused_total", Help: "MQTT connections and messages refused, by reason (auth, acl_publish, acl_subscribe, " +
			"packet_too_large, connect_timeout, too_many_connections, client_id_taken, auth_busy)."},
		[]string{"reason"})
	for _, r := range []string{"auth", "acl_publish", "acl_subscribe",
		reasonTooLarge, reasonConnectTimeout, reasonTooMany, reasonClientIDTaken, reasonAuthBusy} {
		h.refused.WithLabelValues(r)
	}
	cs := []prometheus.Collector{
		h.refused,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_publish_dropped_total",
			Help: "Messages mochi dropped because a client's outbound queue was full."},
			func() float64 { return float64(h.publishDropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_qos_dropped_total",
			Help: "QoS 1/2 messages mochi dropped (inflight quota full or expired)."},
			func() float64 { return float64(h.qosDropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_reply_failed_total",
			Help: "Replies to refused events the hub could not publish."},
			func() float64 { return float64(h.replyFailed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_not_acknowledged_total",
			Help: "QoS 1 messages left without a successful PUBACK because the hub could not make them durable (MQTT 3.1.1 clients are disconnected so they resend)."},
			func() float64 { return float64(h.notAcked.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_net_writes_total",
			Help: "Write calls on MQTT client connections (PUBACKs of one burst share one)."},
			func() float64 { return float64(h.netWrites.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vaka_mqtt_clients_connected", Help: "Connected MQTT clients."},
			func() float64 { return float64(atomic.LoadInt64(&srv.Info.ClientsConnected)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_messages_received_total",
			Help: "MQTT PUBLISH packets received from clients (the hub's own replies are not counted)."},
			func() float64 { return float64(h.received.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_inflight_dropped_total",
			Help: "QoS 1/2 messages mochi dropped because a subscriber's inflight store was full or out of packet ids."},
			func() float64 { return float64(atomic.LoadInt64(&srv.Info.InflightDropped)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_retain_stripped_total",
			Help: "Retained publishes and Wills on non-status vaka/ topics stored without retain."},
			func() float64 { return float64(h.retainStripped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_mqtt_bcrypt_compares_total",
			Help: "bcrypt password comparisons run for MQTT logins (cached logins skip them)."},
			func() float64 { return float64(h.auth.compares.Load()) }),
	}
	var errs []error
	for _, c := range cs {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}

// identity returns the site and gateway of an authenticated gateway client;
// ok is false for anonymous (demo) clients.
func identity(cl *mqtt.Client) (site, gateway string, ok bool) {
	u := string(cl.Properties.Username)
	site, gateway, ok = strings.Cut(u, "/")
	return site, gateway, ok && site != "" && gateway != ""
}

// OnConnectAuthenticate checks the login, then binds the client id to it
// (clientid.go): a login presenting another login's id was already refused
// in OnConnect.
func (h *vakaHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return h.login(cl, pk) && h.claimClientID(cl, pk)
}

func (h *vakaHook) login(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if user == "" && h.demo {
		return true
	}
	h.mu.RLock()
	hash, ok := h.creds[user]
	h.mu.RUnlock()
	otHash, isOT := h.otCreds[user]
	if isOT && !ok {
		hash, ok = otHash, true
	}
	if !ok && h.demo {
		// Demo mode: any username without credentials on file is let in,
		// still confined to its own topics if it is "<site>/<gateway>".
		// A known OwnTracks user with a wrong password is refused even here.
		return true
	}
	if ok {
		switch h.checkPassword(cl, user, hash, pk.Connect.Password) {
		case authOK:
			return true
		case authBusy:
			h.refuse(reasonAuthBusy, "username", user, "remote", cl.Net.Remote)
			return false
		}
	}
	h.refused.WithLabelValues("auth").Inc()
	// The username is a gateway id, not personal data.
	h.log.Warn("broker: login refused", "username", user, "remote", cl.Net.Remote)
	return false
}

func (h *vakaHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if user := cl.Properties.Username; len(user) > 0 && h.otCreds[string(user)] != "" {
		// An OwnTracks client reads and writes only its own subtree.
		u := string(user)
		if strings.HasPrefix(topic, trackers.OwnTracksRoot+"/"+u+"/") {
			return true
		}
		h.countACL(write, topic, cl.ID)
		return false
	}
	if write {
		// Every gateway message passes here: compare the topic with the
		// login in place, building no strings.
		if t, ok := event.ParseTopic(topic); ok && isGateway(cl.Properties.Username, t.Site, t.Gateway) &&
			(t.Leaf == event.LeafEvent || t.Leaf == event.LeafStatus || t.Leaf == event.LeafBeat) {
			return true
		}
	}
	site, gw, ok := identity(cl)
	if !ok {
		if h.demo {
			return true
		}
		h.countACL(write, topic, "")
		return false
	}
	if write {
		h.countACL(write, topic, cl.ID)
		return false
	}
	// Read: a gateway may follow only its own subtree (its replies).
	if topic == event.ReplyTopic(site, gw) || strings.HasPrefix(topic, event.GatewayPrefix(site, gw)) {
		return true
	}
	h.countACL(write, topic, cl.ID)
	return false
}

// isGateway reports whether user is the login "<site>/<gateway>".
func isGateway(user []byte, site, gateway string) bool {
	return len(user) == len(site)+1+len(gateway) && user[len(site)] == '/' &&
		string(user[:len(site)]) == site && string(user[len(site)+1:]) == gateway
}

func (h *vakaHook) countACL(write bool, topic, client string) {
	reason := "acl_subscribe"
	if write {
		reason = "acl_publish"
	}
	h.refused.WithLabelValues(reason).Inc()
	h.log.Warn("broker: topic refused", "reason", reason, "client", client, "topic", topic)
}

// OnPublish runs the rules for Vaka topics. The error it returns decides
// the PUBACK: MQTT 5 clients get a reason code for a refused payload;
// 3.1.1 has none, so every client also gets a JSON reply on its reply topic.
func (h *vakaHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	if strings.HasPrefix(pk.TopicName, trackers.OwnTracksRoot+"/") {
		return h.ownTracks(cl, pk)
	}
	t, ok := event.ParseTopic(pk.TopicName)
	if !ok {
		return pk, nil
	}
	switch t.Leaf {
	case event.LeafEvent:
		r := h.h.HandleEvent(t.Site, t.Gateway, pk.Payload)
		if r.Code == event.ReplyOK {
			return h.ackKept(cl, h.unforwarded(pk))
		}
		h.reply(t, r)
		if r.Code == event.ReplyBusy {
			return h.notKept(cl, pk)
		}
		if r.Evaluated {
			// An unregistered device's event was still evaluated (and
			// may have raised an alarm): acknowledge it normally.
			return pk, nil
		}
		if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
			return pk, packets.ErrPayloadFormatInvalid
		}
		// 3.1.1: acknowledge (the gateway must not resend a payload that
		// will never parse) but do not forward it to subscribers.
		return pk, packets.CodeSuccessIgnore
	case event.LeafStatus:
		h.h.HandleStatus(t.Site, t.Gateway, pk.Payload)
	case event.LeafBeat:
		h.h.HandleHeartbeat(t.Site, t.Gateway, pk.Payload)
		return h.unforwarded(pk), nil
	}
	return pk, nil
}

// ownTracks hands an OwnTracks message to the hub. The client's topic
// rights were checked by OnACLCheck; this checks again that an OwnTracks
// login writes only as itself. Positions are never retained by the broker
// (OwnTracks publishes them retained by default): they are personal data.
// A malformed payload is acknowledged (the app must not resend it
// forever) and counted by the hub.
func (h *vakaHook) ownTracks(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	pk.FixedHeader.Retain = false
	t, ok := trackers.ParseOwnTracksTopic(pk.TopicName)
	if !ok || h.ot == nil {
		return pk, nil
	}
	if u := string(cl.Properties.Username); u != t.User && !(h.demo && h.otCreds[u] == "" && h.creds[u] == "") {
		h.countACL(true, pk.TopicName, cl.ID)
		return pk, packets.ErrRejectPacket
	}
	if err := h.ot.HandleOwnTracks(t.User, t.Device, t.Leaf, pk.Payload); errors.Is(err, trackers.ErrNotStored) {
		return h.notKept(cl, pk)
	}
	return pk, nil
}

// errNotKept is the stop cause of a 3.1.1 client whose message the hub
// could not make durable.
var errNotKept = errors.New("broker: message not stored (alarm journal cannot write); disconnected without PUBACK so the client resends")

// notKept answers a message the hub evaluated but could not make durable:
// the sender must never be told it was kept. MQTT 5 gets a failure reason
// code in its PUBACK. MQTT 3.1.1 has no failure PUBACK, and a client resends
// an unacknowledged message only when it reconnects, so the connection is
// closed without a PUBACK; its Last Will is not sent, as the gateway is
// alive and will be back in a moment (its heartbeat supervision still
// watches it).
func (h *vakaHook) notKept(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.notAcked.Add(1)
	if pk.FixedHeader.Qos == 0 {
		return pk, packets.CodeSuccessIgnore // QoS 0 promised nothing; do not forward it either
	}
	if cl.Properties.ProtocolVersion == 5 {
		return pk, packets.ErrImplementationSpecificError
	}
	atomic.StoreUint32(&cl.Properties.Will.Flag, 0)
	h.log.Warn("broker: closing a client's connection without PUBACK: its message is not stored yet", "client", cl.ID)
	cl.Stop(errNotKept)
	return pk, packets.ErrRejectPacket
}

func (h *vakaHook) reply(t event.Topic, r event.Reply) {
	b, err := jsonReply(r)
	if err == nil {
		err = h.srv.Publish(event.ReplyTopic(t.Site, t.Gateway), b, false, 1)
	}
	if err != nil {
		h.replyFailed.Add(1)
		h.log.Error("broker: reply not published", "site", t.Site, "gateway", t.Gateway, "err", err)
	}
}

// OnWillSent hands a gateway's Last Will (its link died) to the hub.
func (h *vakaHook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	t, ok := event.ParseTopic(pk.TopicName)
	if !ok || t.Leaf != event.LeafStatus {
		return
	}
	if site, gw, ok := identity(cl); ok && (site != t.Site || gw != t.Gateway) {
		return // a Will for someone else's topic; ACL refuses these at connect anyway
	}
	h.h.HandleStatus(t.Site, t.Gateway, pk.Payload)
}

func (h *vakaHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.publishDropped.Add(1)
	h.log.Error("broker: message dropped, client outbound queue full", "client", cl.ID, "topic", pk.TopicName)
}

func (h *vakaHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	h.qosDropped.Add(1)
	h.log.Error("broker: QoS message dropped", "client", cl.ID, "packet", pk.PacketID)
}

// CloseConnection drops a client's network connection without an MQTT
// DISCONNECT, as a dead link would: the broker then sends its Last Will.
// Operators use it to force a stuck gateway to reconnect; tests use it to
// simulate a lost link.
func (b *Broker) CloseConnection(clientID string) bool {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok || cl.Net.Conn == nil {
		return false
	}
	_ = cl.Net.Conn.Close()
	return true
}
