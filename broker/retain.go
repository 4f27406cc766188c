package broker

import (
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vaka-care/vaka/event"
)

// OnPacketRead sees every packet a client sends, after mochi decoded it and
// before it is processed. It counts the client's PUBLISHes (mochi's own
// counter also counts the hub's inline replies) and strips the retain flag
// where retaining would store an event, a heartbeat or a reply and hand it
// to every later subscriber: stale, and possibly personal.
func (h *vakaHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Publish {
		h.received.Add(1)
		if pk.FixedHeader.Retain && !retainable(pk.TopicName) {
			pk.FixedHeader.Retain = false
			h.retainStripped.Add(1)
		}
	}
	return pk, nil
}

// OnWill strips retain from a Last Will on a topic that may not be retained.
func (h *vakaHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if will.Retain && !retainable(will.TopicName) {
		will.Retain = false
		h.retainStripped.Add(1)
	}
	return will, nil
}

// retainable reports whether the broker may retain a message on topic:
// under vaka/ only a gateway's status (online/offline, and its Will) is
// retained (docs/mqtt.md). Topics outside Vaka's tree are left alone,
// except OwnTracks, whose positions are never retained (see ownTracks).
func retainable(topic string) bool {
	if !strings.HasPrefix(topic, "vaka/") {
		return true
	}
	t, ok := event.ParseTopic(topic)
	return ok && t.Leaf == event.LeafStatus
}
