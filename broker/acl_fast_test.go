package broker

import (
	"log/slog"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vaka-care/vaka/event"
)

func TestIsGateway(t *testing.T) {
	for _, tc := range []struct {
		user, site, gw string
		want           bool
	}{
		{"s/g", "s", "g", true},
		{"solrosen/avd-a", "solrosen", "avd-a", true},
		{"s/g2", "s", "g", false},
		{"s/g", "s", "g2", false},
		{"sx/g", "s", "xg", false},
		{"s/g/x", "s", "g", false},
		{"s:g", "s", "g", false},
		{"", "s", "g", false},
		{"/g", "", "g", true}, // the caller passes only parsed, non-empty names
	} {
		if got := isGateway([]byte(tc.user), tc.site, tc.gw); got != tc.want {
			t.Errorf("isGateway(%q, %q, %q) = %v, want %v", tc.user, tc.site, tc.gw, got, tc.want)
		}
	}
}

// The write check runs for every gateway message: it must decide from
// the login and topic as they are, allocating nothing, and still refuse
// another gateway's topic and a leaf a gateway may not write.
func TestACLWriteCheck(t *testing.T) {
	h := &vakaHook{otCreds: map[string]string{"anna": "x"}, log: slog.New(slog.DiscardHandler)}
	if err := h.register(prometheus.NewRegistry(), mqtt.New(nil)); err != nil {
		t.Fatal(err)
	}
	cl := &mqtt.Client{ID: "gw"}
	cl.Properties.Username = []byte("s/g")
	own := event.EventTopic("s", "g")
	if n := testing.AllocsPerRun(100, func() {
		if !h.OnACLCheck(cl, own, true) {
			t.Fatal("own event topic refused")
		}
	}); n != 0 {
		t.Errorf("the write check allocates %v times per message", n)
	}
	for _, tp := range []string{event.StatusTopic("s", "g"), event.HeartbeatTopic("s", "g")} {
		if !h.OnACLCheck(cl, tp, true) {
			t.Errorf("%s refused", tp)
		}
	}
	for _, tp := range []string{event.EventTopic("s", "g2"), event.EventTopic("s2", "g"), event.ReplyTopic("s", "g"),
		"vaka/v1/s/g/event/x", "owntracks/anna/phone", "other/topic"} {
		if h.OnACLCheck(cl, tp, true) {
			t.Errorf("gateway s/g may write %s", tp)
		}
	}
	var m dto.Metric
	_ = h.refused.WithLabelValues("acl_publish").Write(&m)
	if got := m.GetCounter().GetValue(); got != 6 {
		t.Errorf("acl_publish refusals counted %v, want 6", got)
	}
}
