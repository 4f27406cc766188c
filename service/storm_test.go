package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/testenv"
)

// One frame per change: a call-button press over real MQTT reaches the
// staff stream as one frame that already says who was alerted (raise and
// notify journaled together), not a raise frame and then a notify frame.
// The next frame for the alarm is the next change (an accept).
func TestIntegrationOneFramePerRaise(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
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
	if len(a.History()) != 2 || a.History()[0].Action != alarm.ActRaise || a.History()[1].Action != alarm.ActNotify ||
		len(a.History()[1].To) != 1 || a.History()[1].To[0] != staffUser {
		t.Fatalf("first frame's history %+v, want raise and notify %s", a.History(), staffUser)
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
	if acc.AcceptedBy() != staffUser {
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

// The staff app on a phone (real Chromium): two technical alarms behind
// one gateway are one group card that says how many it holds and lists
// them, and the call-button press beside them is a card of its own.
func TestIntegrationBrowserGroupCard(t *testing.T) {
	chrome := testenv.LookPath(t, "chromium")
	s := startStaffHub(t, t.TempDir(), "")
	base := "http://" + s.HTTPAddr()
	ctx := phoneBrowser(t, chrome)
	login(t, ctx, base, "natt1", "natt1-secret")
	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "browser-gw")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, p := range []string{
		`{"v":1,"id":"t-1","device":"dorr-entre","dty":"0014","state":"closed","battery":5,"ts":"` + now + `"}`,
		`{"v":1,"id":"t-2","device":"dorr-entre","dty":"0014","state":"tamper","ts":"` + now + `"}`,
	} {
		if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("g-1")); err != nil {
		t.Fatal(err)
	}
	group := `.alarm-card[data-kind="technical"] details.group[data-count="2"]`
	call := `.alarm-card[data-kind="call"]`
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(group)), chromedp.WaitVisible(chromedp.CSS(call))); err != nil {
		t.Fatalf("group card or call card not shown: %v", err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelectorAll('#open-alarms .alarm-card[data-kind="technical"]').length`))
	if err != nil || n != 1 {
		t.Fatalf("%v technical cards (%v), want one group card", n, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(group+` summary`))); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(group)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 tekniska larm i gruppen", "dorr-entre · Basstation avd-a · Lågt batteri", "dorr-entre · Basstation avd-a · Enhet öppnad eller flyttad"} {
		if !strings.Contains(text, want) {
			t.Errorf("group card lacks %q: %q", want, text)
		}
	}
	screenshot(t, ctx, "staff-phone-group.png")
}
