package service_test

import (
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/testenv"
)

// One frame per change: a call-button press over real MQTT reaches the
// staff stream as one frame that already says who was alerted (raise and
// notify journaled together), not a raise frame and then a notify frame.
// The next frame for the alarm is the next change (an accept).
func TestIntegrationOneFramePerRaise(t *testing.T) {
	s := startHub(t, t.TempDir())
	base := "http://" + s.HTTPAddr()
	st := testenv.OpenStream(t, base, staffUser, staffPass)
	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "solrosen-avd-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("e-1")); err != nil {
		t.Fatal(err)
	}
	// The PUBACK came after the journal write: the frame is out or queued.
	a := st.Next(t, 5*time.Second, func(a *alarm.Alarm) bool { return a.Kind == alarm.KindCall })
	if len(a.History) != 2 || a.History[0].Action != alarm.ActRaise || a.History[1].Action != alarm.ActNotify ||
		len(a.History[1].To) != 1 || a.History[1].To[0] != staffUser {
		t.Fatalf("first frame's history %+v, want raise and notify %s", a.History, staffUser)
	}
	if code := testenv.DoJSON(t, "POST", base+"/api/v1/alarms/"+a.ID+"/accept", staffUser, staffPass, nil, nil); code != 200 {
		t.Fatalf("accept: %d", code)
	}
	between := 0
	acc := st.Next(t, 5*time.Second, func(x *alarm.Alarm) bool {
		if x.ID != a.ID {
			return false
		}
		if x.State != alarm.Accepted {
			between++
			return false
		}
		return true
	})
	if between != 0 {
		t.Errorf("%d more frames for the raise before the accept, want none", between)
	}
	if acc.AcceptedBy != staffUser {
		t.Errorf("accept frame %+v", acc)
	}
	// The stream counters are exported.
	for _, m := range []string{"vaka_stream_coalesced_total", "vaka_stream_technical_dropped_total", "vaka_stream_summaries_total",
		"vaka_stream_feed_cut_total", "vaka_stream_care_frames_total", "vaka_stream_technical_frames_total"} {
		testenv.Metric(t, base+"/metrics", m)
	}
	if v := testenv.Metric(t, base+"/metrics", "vaka_stream_care_frames_total"); v < 2 {
		t.Errorf("vaka_stream_care_frames_total %v, want at least the raise and the accept", v)
	}
}
