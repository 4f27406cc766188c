package broker

import (
	"strings"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vaka-care/vaka/event"
)

// eventSubs knows whether any subscription could receive a gateway's
// event or heartbeat. Usually none does: gateways follow only their reply
// topic and the hub reads events in its publish hook, not by subscribing.
// Yet mochi looks up the subscribers of every publish in its topic tree,
// which builds several maps per message (5 of the broker's 12 allocations
// per event, profiled at 10,000 care alarms/s). When no subscription can
// match, the hook marks the message Ignore: mochi then acknowledges it as
// before but skips the lookup that would have found nobody.
//
// The set holds (client id, filter) for every granted subscription whose
// filter could match some vaka/v1/<site>/<gateway>/event or /heartbeat
// topic, added in OnSubscribed (after mochi indexed it and before the
// SUBACK leaves, so every message published after a client got its SUBACK
// sees it) and removed in OnUnsubscribed (after mochi dropped it). A
// persistent session that goes offline keeps its entries, as mochi keeps
// queueing for it; a session taken over keeps its client id and so its
// entries. Anything unsure counts as a subscriber: an extra entry costs
// only the lookup, a missing one would lose a message.
type eventSubs struct {
	mu   sync.Mutex
	keys map[subKey]struct{}
	n    atomic.Int64 // len(keys), read on every publish
}

// subKey names one subscription as mochi indexes it: a client has at most
// one per filter (a new SUBSCRIBE replaces it), but the broker's inline
// client may hold several per filter, told apart by their identifier.
type subKey struct {
	client, filter string
	inlineID       int
}

func keyOf(cl *mqtt.Client, f packets.Subscription) subKey {
	k := subKey{client: cl.ID, filter: f.Filter}
	if cl.Net.Inline {
		k.inlineID = f.Identifier
	}
	return k
}

// none reports that no subscription could receive a gateway's event.
func (s *eventSubs) none() bool { return s.n.Load() == 0 }

func (s *eventSubs) subscribed(cl *mqtt.Client, filters packets.Subscriptions, codes []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range filters {
		if i < len(codes) && codes[i] >= packets.ErrUnspecifiedError.Code {
			continue // refused: mochi did not index it
		}
		if !mayReceiveGatewayTraffic(f.Filter) {
			continue
		}
		if s.keys == nil {
			s.keys = map[subKey]struct{}{}
		}
		s.keys[keyOf(cl, f)] = struct{}{}
	}
	s.n.Store(int64(len(s.keys)))
}

func (s *eventSubs) unsubscribed(cl *mqtt.Client, filters packets.Subscriptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range filters {
		delete(s.keys, keyOf(cl, f))
	}
	s.n.Store(int64(len(s.keys)))
}

// mayReceiveGatewayTraffic reports whether filter matches some topic
// vaka/v1/<site>/<gateway>/event or …/heartbeat. A shared subscription
// ($share/<group>/<filter>) is judged by its filter.
func mayReceiveGatewayTraffic(filter string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, f, ok := strings.Cut(rest, "/")
		if !ok {
			return true // malformed: mochi refuses it, but be safe
		}
		filter = f
	}
	want := len(topicRootLevels) + 3 // root, site, gateway, leaf
	level := 0
	for part := range strings.SplitSeq(filter, "/") {
		if part == "#" {
			return true
		}
		if level >= want {
			return false // deeper than an event topic
		}
		switch {
		case part == "+":
		case level < len(topicRootLevels):
			if part != topicRootLevels[level] {
				return false
			}
		case level == want-1:
			if part != event.LeafEvent && part != event.LeafBeat {
				return false
			}
		case part == "": // site, gateway: any name but the empty one
			return false
		}
		level++
	}
	return level == want
}

// topicRootLevels are the levels of event.TopicRoot ("vaka", "v1").
var topicRootLevels = strings.Split(event.TopicRoot, "/")

// OnSubscribed records a granted subscription that could receive gateway
// events (see eventSubs).
func (h *vakaHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	h.subs.subscribed(cl, pk.Filters, reasonCodes)
}

// OnUnsubscribed forgets subscriptions mochi removed.
func (h *vakaHook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	h.subs.unsubscribed(cl, pk.Filters)
}

// unforwarded marks a gateway's event or heartbeat that no subscription
// could receive, so mochi skips the subscriber lookup. A retained message
// is left alone (Ignore would also keep mochi from retaining it).
func (h *vakaHook) unforwarded(pk packets.Packet) packets.Packet {
	if !pk.FixedHeader.Retain && h.subs.none() {
		pk.Ignore = true
	}
	return pk
}

// ackKept acknowledges a kept event that no subscriber can receive (pk is
// marked Ignore) itself, and hands it back to mochi as QoS 0, which mochi
// then neither acknowledges nor tracks. The PUBACK is the same four bytes
// mochi would write at the same moment: after the hub made the event
// durable, through the client's own write lock. What it saves per event
// is mochi's bookkeeping for a QoS 1 message it receives: an 800-byte
// packet stored in and deleted from the client's inflight map (an
// allocation each time), two clock reads and its quota counters (net
// zero). Only for MQTT 3.1.1 (and 3.1) clients: mochi's MQTT 5 PUBACK
// also echoes the PUBLISH's properties, so MQTT 5 keeps mochi's path, as
// do retained, QoS 2 and forwarded messages.
func (h *vakaHook) ackKept(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !pk.Ignore || pk.FixedHeader.Qos != 1 || pk.FixedHeader.Retain || cl.Net.Inline ||
		cl.Properties.ProtocolVersion >= 5 {
		return pk, nil
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}
	if err := cl.WritePacket(ack); err != nil {
		// mochi ends the client when its PUBACK cannot be written; so do
		// we. The gateway, never acknowledged, resends on reconnecting.
		cl.Stop(err)
		return pk, packets.ErrRejectPacket
	}
	h.selfAcked.Add(1)
	pk.FixedHeader.Qos = 0
	return pk, nil
}
