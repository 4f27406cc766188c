package event

import (
	"fmt"
	"strings"
)

// The MQTT topic scheme, version 1. The version is in the topic so a hub can
// serve old and new gateways side by side during an upgrade.
//
//	vaka/v1/<site>/<gateway>/event      gateway → hub, QoS 1, one Event as JSON
//	vaka/v1/<site>/<gateway>/status     gateway → hub, retained, online/offline (also the Last Will)
//	vaka/v1/<site>/<gateway>/heartbeat  gateway → hub, QoS 1, periodic proof of life
//	vaka/v1/<site>/<gateway>/reply      hub → gateway, answer to a refused event (SCAIP snu code)
const (
	TopicRoot    = "vaka/v1"
	LeafEvent    = "event"
	LeafStatus   = "status"
	LeafBeat     = "heartbeat"
	LeafReply    = "reply"
	maxIDLength  = 64
	maxTopicPart = 64
)

// EventTopic is the topic a gateway publishes its events on.
func EventTopic(site, gateway string) string { return topic(site, gateway, LeafEvent) }

// StatusTopic is the retained online/offline topic of a gateway (and its Will).
func StatusTopic(site, gateway string) string { return topic(site, gateway, LeafStatus) }

// HeartbeatTopic is where a gateway proves it is alive.
func HeartbeatTopic(site, gateway string) string { return topic(site, gateway, LeafBeat) }

// ReplyTopic is where the hub answers a gateway's refused event.
func ReplyTopic(site, gateway string) string { return topic(site, gateway, LeafReply) }

// GatewayPrefix is the topic subtree a gateway may write to.
func GatewayPrefix(site, gateway string) string { return TopicRoot + "/" + site + "/" + gateway + "/" }

func topic(site, gateway, leaf string) string { return GatewayPrefix(site, gateway) + leaf }

// Topic is a parsed Vaka topic.
type Topic struct {
	Site, Gateway, Leaf string
}

// ParseTopic splits a Vaka v1 topic. ok is false for any topic outside the
// scheme, which the hub then ignores (it is just MQTT traffic).
func ParseTopic(t string) (Topic, bool) {
	rest, found := strings.CutPrefix(t, TopicRoot+"/")
	if !found {
		return Topic{}, false
	}
	// Cut, not Split: the broker parses every gateway message's topic
	// twice (ACL, hook), and the parts are substrings of t.
	site, rest, ok1 := strings.Cut(rest, "/")
	gw, leaf, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || strings.IndexByte(leaf, '/') >= 0 {
		return Topic{}, false
	}
	if !validName(site) || !validName(gw) {
		return Topic{}, false
	}
	return Topic{Site: site, Gateway: gw, Leaf: leaf}, true
}

// validName is ValidName without building an error.
func validName(s string) bool {
	if s == "" || len(s) > maxTopicPart {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// ValidName checks a site, gateway, device or unit identifier: it becomes a
// topic level, a metric label and a URL part, so it is kept to a safe set.
func ValidName(s string) error {
	if s == "" {
		return fmt.Errorf("is empty")
	}
	if len(s) > maxTopicPart {
		return fmt.Errorf("is longer than %d characters", maxTopicPart)
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return fmt.Errorf("has %q; use letters, digits, '-', '_' or '.'", r)
		}
	}
	return nil
}
