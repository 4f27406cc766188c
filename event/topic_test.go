package event

import (
	"strings"
	"testing"
)

// parseTopicSplit is ParseTopic as it was written before it had to be
// allocation-free: the reference FuzzParseTopic holds it to.
func parseTopicSplit(t string) (Topic, bool) {
	rest, found := strings.CutPrefix(t, TopicRoot+"/")
	if !found {
		return Topic{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return Topic{}, false
	}
	if ValidName(parts[0]) != nil || ValidName(parts[1]) != nil {
		return Topic{}, false
	}
	return Topic{Site: parts[0], Gateway: parts[1], Leaf: parts[2]}, true
}

// FuzzParseTopic: topics are outside input (any MQTT client's); the
// allocation-free parser must agree with the Split one on every topic.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"vaka/v1/s/g/event", "vaka/v1/s//event", "vaka/v1/s/g/a/b", "vaka/v1/å/g/event",
		"vaka/v1/s/g/", "vaka/v1///", "vaka/v1/" + strings.Repeat("x", 65) + "/g/event", "owntracks/u/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseTopic(s)
		want, wok := parseTopicSplit(s)
		if got != want || ok != wok {
			t.Fatalf("ParseTopic(%q) = %+v, %v; Split version %+v, %v", s, got, ok, want, wok)
		}
		if ok != (validName(got.Site) && validName(got.Gateway)) {
			t.Fatalf("ParseTopic(%q) accepted invalid names %+v", s, got)
		}
	})
}

// The broker parses each gateway message's topic twice; neither may
// allocate.
func TestParseTopicAllocatesNothing(t *testing.T) {
	topic := EventTopic("solrosen", "avd-a")
	var tp Topic
	if n := testing.AllocsPerRun(100, func() { tp, _ = ParseTopic(topic) }); n != 0 {
		t.Fatalf("ParseTopic allocates %v times", n)
	}
	if tp.Site != "solrosen" || tp.Gateway != "avd-a" || tp.Leaf != LeafEvent {
		t.Fatalf("ParseTopic = %+v", tp)
	}
}
