package notify_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/scaip"
)

// centreYAML routes every alarm first to an alarm receiving centre over
// SCAIP, then to the lead. The staff timers (20 s, 60 s) must not move an
// alarm away from a centre: only the hand-over's outcome does.
func centreYAML(t *testing.T, to, transport, extra string) string {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "larm.pw")
	if err := os.WriteFile(pw, []byte("hemligt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`
routing:
  receivers:
    - name: larm
      scaip:
        to: %q
        transport: %s
        username: vaka
        password_file: %s
        cid: "4711"
%s
    - name: lead
      users: [lead]
  route:
    receiver: larm
    escalate: [lead]
    delivery_timeout: 20s
    accept_timeout: 60s
    remind_every: 30s
`, to, transport, pw, extra)
}

// fakeCentre is an alarm receiving centre in the test's process, for the
// timing tests under synctest (the third-party one, over real SIP, is in
// scaip_peer_test.go). It parses every request strictly and answers what
// answer says; false means no <mrs> at all (the send times out).
type fakeCentre struct {
	mu     sync.Mutex
	start  time.Time
	reqs   []sentReq
	counts map[scaip.MessageType]int
	answer func(r *scaip.Request, n int) (scaip.SNU, bool)
	// hbi, when set, is the hbi of the answer to the n-th PI.
	hbi func(n int) int
}

type sentReq struct {
	after time.Duration
	body  string
	req   *scaip.Request
}

func (c *fakeCentre) Exchange(ctx context.Context, _ *notify.SCAIP, body []byte) (*scaip.Response, error) {
	r, err := scaip.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("centre: strict parse: %w", err)
	}
	c.mu.Lock()
	if c.counts == nil {
		c.counts = map[scaip.MessageType]int{}
	}
	n := c.counts[r.Mty]
	c.counts[r.Mty]++
	c.reqs = append(c.reqs, sentReq{after: time.Since(c.start), body: string(body), req: r})
	c.mu.Unlock()
	snu, ok := c.answer(r, n)
	if !ok {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	resp := &scaip.Response{Ref: r.Ref, SNU: snu, Mre: -1}
	if c.hbi != nil && r.Mty == scaip.Heartbeat {
		resp.Hbi = c.hbi(n)
	}
	return resp, nil
}

func (c *fakeCentre) sent(mty scaip.MessageType) []sentReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sentReq
	for _, s := range c.reqs {
		if s.req.Mty == mty {
			out = append(out, s)
		}
	}
	return out
}

func afters(rs []sentReq) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.after.String())
	}
	return strings.Join(s, " ")
}

// handovers lists the hand-over steps on the alarm: handover notes and
// the centre's delivered, with when.
func (h *fakeHub) handovers() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, t := range h.a.History() {
		switch {
		case t.Action == alarm.ActHandover:
			out = append(out, fmt.Sprintf("%s:%d:%s:%s@%v", t.Action, t.Tier, t.Receiver, t.Note, t.At.Sub(h.a.RaisedAt)))
		case t.Action == alarm.ActDelivered && t.Channel == alarm.ChannelSCAIP:
			out = append(out, fmt.Sprintf("%s:%d:%s:%s@%v", t.Action, t.Tier, t.By, t.Note, t.At.Sub(h.a.RaisedAt)))
		}
	}
	return out
}

// firstSteps is the first n notification steps.
func firstSteps(h *fakeHub, n int) string {
	s := h.steps()
	return strings.Join(s[:min(n, len(s))], " ")
}

func startCentre(t *testing.T, y string, c *fakeCentre) (*fakeHub, *notify.Dispatcher) {
	t.Helper()
	tr := tree(t, y)
	time.Sleep(time.Until(time.Date(2026, 1, 15, 1, 0, 0, 0, time.UTC)))
	c.start = time.Now()
	d := notify.New(notify.Options{Tree: tr, SCAIP: c})
	h := &fakeHub{d: d}
	d.Start(h, nil)
	raise(h, time.Now())
	synctest.Wait()
	return h, d
}

// snu 4 three times: the same request every 10 s, the hold journaled
// once; snu 0 at 30 s: delivered to the centre, and no staff timer moves
// the alarm on afterwards.
func TestSCAIPHoldThenTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCentre{answer: func(r *scaip.Request, n int) (scaip.SNU, bool) {
			if n < 3 {
				return scaip.Hold, true
			}
			return scaip.OK, true
		}}
		h, d := startCentre(t, centreYAML(t, "sip:larm@127.0.0.2:5060", "udp", ""), c)
		defer d.Close()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		me := c.sent(scaip.Message)
		if got := afters(me); got != "0s 10s 20s 30s" {
			t.Errorf("ME sent at %s, want 0s 10s 20s 30s", got)
		}
		for _, s := range me[1:] {
			if s.body != me[0].body {
				t.Errorf("resend differs:\n%s\n%s", s.body, me[0].body)
			}
		}
		if r := me[0].req; r.Ref != notify.HandoverRef("A000001", 0, "larm") || r.Cid != "4711" || r.Dty != "0003" || r.Stc != "0010" || r.Pri != 9 {
			t.Errorf("ME %+v", r)
		}
		want := "handover:0:larm:snu 4@0s delivered:0:scaip:larm:snu 0@30s"
		if got := strings.Join(h.handovers(), " "); got != want {
			t.Errorf("hand-over\n got %s\nwant %s", got, want)
		}
		if got := strings.Join(h.steps(), " "); got != "notify:0:scaip:larm@0s" {
			t.Errorf("steps %s: the centre has it, nothing more is due", got)
		}
		if len(c.sent(scaip.Reset)) != 0 {
			t.Error("RE sent after snu 0")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.a.Deliveries) != 1 || h.a.Deliveries[0].Channel != alarm.ChannelSCAIP || h.a.Deliveries[0].At.Sub(h.a.RaisedAt) != 30*time.Second {
			t.Errorf("deliveries %+v", h.a.Deliveries)
		}
	})
}

// The centre holds for ever: ME every 10 s until the 3-minute deadline,
// then RE with the same ref and the lead is alerted.
func TestSCAIPDeadlineREThenNextTier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCentre{answer: func(*scaip.Request, int) (scaip.SNU, bool) { return scaip.Hold, true }}
		h, d := startCentre(t, centreYAML(t, "sip:larm@127.0.0.2", "udp", ""), c)
		defer d.Close()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		me := c.sent(scaip.Message)
		if len(me) != 18 || me[17].after != 170*time.Second {
			t.Errorf("ME sent at %s, want every 10 s from 0s to 2m50s", afters(me))
		}
		re := c.sent(scaip.Reset)
		if len(re) != 1 || re[0].after != 3*time.Minute || re[0].req.Ref != me[0].req.Ref || re[0].req.Cid != "4711" || re[0].req.Dty == "" {
			t.Fatalf("RE %+v, want one at 3m0s with ref %s", re, me[0].req.Ref)
		}
		// No reminder while only the centre had it; the lead is reminded.
		if got, want := firstSteps(h, 3), "notify:0:scaip:larm@0s escalate:1:lead@3m0s reminder:1:lead@3m30s"; got != want {
			t.Errorf("steps\n got %s\nwant %s", got, want)
		}
		want := "handover:0:larm:snu 4@0s handover:0:larm:RE: no snu 0 within 3m0s@3m0s"
		if got := strings.Join(h.handovers(), " "); got != want {
			t.Errorf("hand-over\n got %s\nwant %s", got, want)
		}
		if d.SCAIPAborted.Load() != 1 {
			t.Errorf("aborted %d", d.SCAIPAborted.Load())
		}
	})
}

// snu 5 (not treated) and no answer at all: the first at once, the
// second at the deadline (resent each time), each followed by RE and the
// next tier.
func TestSCAIPNotTreatedAndSilentCentre(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCentre{answer: func(r *scaip.Request, _ int) (scaip.SNU, bool) {
			if r.Mty == scaip.Reset {
				return scaip.OK, true
			}
			return scaip.NotTreated, true
		}}
		h, d := startCentre(t, centreYAML(t, "sip:larm@127.0.0.2", "udp", ""), c)
		time.Sleep(time.Minute)
		synctest.Wait()
		if got, want := firstSteps(h, 2), "notify:0:scaip:larm@0s escalate:1:lead@0s"; got != want {
			t.Errorf("snu 5: steps %s, want %s", got, want)
		}
		if len(c.sent(scaip.Message)) != 1 || len(c.sent(scaip.Reset)) != 1 {
			t.Errorf("snu 5: sent %d ME, %d RE", len(c.sent(scaip.Message)), len(c.sent(scaip.Reset)))
		}
		d.Close()
	})
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCentre{answer: func(*scaip.Request, int) (scaip.SNU, bool) { return 0, false }}
		h, d := startCentre(t, centreYAML(t, "sip:larm@127.0.0.2", "tcp", "        resend: 20s\n        deadline: 5m\n        timeout: 3s"), c)
		defer d.Close()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if me := c.sent(scaip.Message); len(me) != 15 || me[1].after != 20*time.Second {
			t.Errorf("silent: ME at %s, want every 20 s until 5m", afters(me))
		}
		if got, want := firstSteps(h, 3), "notify:0:scaip:larm@0s escalate:1:lead@5m0s reminder:1:lead@5m30s"; got != want {
			t.Errorf("silent: steps %s, want %s", got, want)
		}
		if got := strings.Join(h.handovers(), " "); got != "handover:0:larm:RE: no snu 0 within 5m0s@5m0s" {
			t.Errorf("silent: hand-over %s", got)
		}
	})
}

// A restart in the middle of a hold: the new dispatcher resends at once,
// the same bytes, and keeps the deadline counted from the first alert.
func TestSCAIPHandoverResumesAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCentre{answer: func(r *scaip.Request, _ int) (scaip.SNU, bool) { return scaip.Hold, true }}
		y := centreYAML(t, "sip:larm@127.0.0.2", "udp", "")
		h, d := startCentre(t, y, c)
		time.Sleep(65 * time.Second)
		synctest.Wait()
		d.Close()
		time.Sleep(20 * time.Second) // down
		d2 := notify.New(notify.Options{Tree: tree(t, y), SCAIP: c})
		h.mu.Lock()
		h.d = d2
		open := h.a.Clone()
		h.mu.Unlock()
		d2.Start(h, []*alarm.Alarm{open})
		defer d2.Close()
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		me := c.sent(scaip.Message)
		want := "0s 10s 20s 30s 40s 50s 1m0s 1m25s 1m35s 1m45s 1m55s 2m5s 2m15s 2m25s 2m35s 2m45s 2m55s"
		if got := afters(me); got != want {
			t.Errorf("ME sent at\n %s\nwant\n %s", got, want)
		}
		for _, s := range me {
			if s.body != me[0].body {
				t.Errorf("resent after restart differs:\n%s\n%s", s.body, me[0].body)
			}
		}
		if re := c.sent(scaip.Reset); len(re) != 1 || re[0].after != 3*time.Minute || re[0].req.Ref != me[0].req.Ref {
			t.Errorf("RE %+v", re)
		}
		if got, want := firstSteps(h, 3), "notify:0:scaip:larm@0s escalate:1:lead@3m0s reminder:1:lead@3m30s"; got != want {
			t.Errorf("steps %s, want %s", got, want)
		}
		// The hold was journaled once, before the restart.
		if got := strings.Join(h.handovers(), " "); got != "handover:0:larm:snu 4@0s handover:0:larm:RE: no snu 0 within 3m0s@3m0s" {
			t.Errorf("hand-over %s", got)
		}
	})
}

// A repeat with a new position while the centre has the alarm is sent as
// IN with the same ref; staff accepting then sends nothing more.
func TestSCAIPUpdateIsIN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCentre{answer: func(*scaip.Request, int) (scaip.SNU, bool) { return scaip.OK, true }}
		h, d := startCentre(t, centreYAML(t, "sip:larm@127.0.0.2", "udp", ""), c)
		defer d.Close()
		time.Sleep(30 * time.Second)
		h.act(alarm.Transition{Alarm: "A000001", Action: alarm.ActRepeat, At: time.Now(), By: "rule:call_button",
			Pos: &event.Position{Lat: 59.334591, Lon: 18.063240}})
		synctest.Wait()
		in := c.sent(scaip.Info)
		me := c.sent(scaip.Message)
		if len(me) != 1 || len(in) != 1 {
			t.Fatalf("sent %d ME, %d IN", len(me), len(in))
		}
		if in[0].req.Ref != me[0].req.Ref || in[0].req.Lge == nil || in[0].req.Lge.Geo != "59.334591,18.063240" || in[0].req.Cid != "4711" || in[0].req.Dty != "0003" {
			t.Errorf("IN %+v (lge %+v)", in[0].req, in[0].req.Lge)
		}
		if got := strings.Join(h.handovers(), " "); got != "delivered:0:scaip:larm:snu 0@0s handover:0:larm:IN: repeat@30s" {
			t.Errorf("hand-over %s", got)
		}
		h.act(alarm.Transition{Alarm: "A000001", Action: alarm.ActAccept, At: time.Now(), By: "lead"})
		synctest.Wait()
		if len(c.sent(scaip.Reset)) != 0 {
			t.Error("RE after the centre took it")
		}
	})
}

// centreHub is the fake hub that also raises the centre's technical alarm.
type centreHub struct {
	*fakeHub
	mu     sync.Mutex
	start  time.Time
	events []string
}

func (c *centreHub) CentreUnreachable(receiver string, down bool, note string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, fmt.Sprintf("%v:%s@%v", down, receiver, time.Since(c.start)))
}

// The centre stops answering PI at 10m30s: the technical alarm comes at
// the second missed heartbeat, 12m05s (within 2 × heartbeat + timeout of
// the last answer at 10m); it answers again from 15m30s: restored at 16m.
func TestSCAIPHeartbeatSupervision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var up atomic.Bool
		up.Store(true)
		c := &fakeCentre{answer: func(r *scaip.Request, _ int) (scaip.SNU, bool) {
			if r.Mty != scaip.Heartbeat {
				return scaip.OK, true
			}
			return scaip.OK, up.Load()
		}}
		tr := tree(t, centreYAML(t, "sip:larm@127.0.0.2", "udp", "        heartbeat: 1m"))
		c.start = time.Now()
		d := notify.New(notify.Options{Tree: tr, SCAIP: c})
		ch := &centreHub{fakeHub: &fakeHub{d: d}, start: time.Now()}
		d.Start(ch, nil)
		defer d.Close()
		time.Sleep(10*time.Minute + 30*time.Second)
		up.Store(false)
		time.Sleep(5 * time.Minute)
		up.Store(true)
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		ch.mu.Lock()
		got := strings.Join(ch.events, " ")
		ch.mu.Unlock()
		if want := "true:larm@12m5s false:larm@16m0s"; got != want {
			t.Errorf("centre alarm %s, want %s", got, want)
		}
		pi := c.sent(scaip.Heartbeat)
		if len(pi) != 18 || pi[0].after != time.Minute || pi[0].req.Cid != "4711" || pi[0].req.Dty == "" || pi[0].req.Ref == pi[1].req.Ref {
			t.Errorf("PI: %d, first %+v", len(pi), pi[0].req)
		}
	})
}

func TestSCAIPConfigErrorsNameFileLineField(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	_ = os.WriteFile(pw, []byte("x"), 0o600)
	y := fmt.Sprintf(`
routing:
  receivers:
    - name: larm
      scaip:
        to: "http://centre"
        username: vaka
        password_file: %s
        cid: "4711"
        resend: 3s
        deadline: 40m
    - name: larm2
      scaip:
        to: "sip:larm@centre:99999"
        cid: "47a"
        transport: sctp
    - name: larm3
      scaip:
        to: "sips:larm@centre"
        transport: udp
        username: vaka
        password_file: /nonexistent/pw
        cid: "1"
        heartbeat: 10s
  route:
    receiver: larm
`, pw)
	var f file
	err := config.Decode("hub.yaml", []byte(y), &f)
	if err == nil {
		t.Fatal("bad scaip receivers accepted")
	}
	for _, want := range []string{
		"hub.yaml:6: field routing.receivers.0.scaip.to:",
		"hub.yaml:10: field routing.receivers.0.scaip.resend: 3s: must be between 5s and 20s",
		"hub.yaml:11: field routing.receivers.0.scaip.deadline: 40m0s: must be between 3m and 30m",
		"hub.yaml:14: field routing.receivers.1.scaip.to:",
		"field routing.receivers.1.scaip.username: missing",
		"field routing.receivers.1.scaip.password_file: missing",
		"hub.yaml:15: field routing.receivers.1.scaip.cid:",
		"hub.yaml:16: field routing.receivers.1.scaip.transport: \"sctp\": use udp, tcp or tls",
		"hub.yaml:20: field routing.receivers.2.scaip.transport: a sips: URI needs transport tls",
		"hub.yaml:22: field routing.receivers.2.scaip.password_file: cannot read",
		"hub.yaml:24: field routing.receivers.2.scaip.heartbeat:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// The <mrq> built from each kind of alarm passes the strict parser and
// carries the Vaka → SCAIP mapping of docs/scaip.md.
func TestRequestFromAlarm(t *testing.T) {
	c := &notify.SCAIP{CID: "4711"}
	last := time.Date(2026, 1, 15, 1, 2, 3, 0, time.UTC)
	for _, tc := range []struct {
		a    alarm.Alarm
		want string
	}{
		{with(alarm.Alarm{Kind: alarm.KindCall, Priority: 1, Device: "knapp-12"}, func(a *alarm.Alarm) { a.SetCallerID("gsm:+46701234567") }),
			"<mrq><ref>R1</ref><cid>4711</cid><dty>0003</dty><did>knapp-12</did><crd>gsm:+46701234567</crd><stc>0010</stc><pri>9</pri></mrq>"},
		{alarm.Alarm{Kind: alarm.KindFall, Priority: 1, DeviceType: event.FallDetector},
			"<mrq><ref>R1</ref><cid>4711</cid><dty>0005</dty><stc>0009</stc><pri>9</pri></mrq>"},
		{alarm.Alarm{Kind: alarm.KindWander, Priority: 1, Location: event.LocFrontDoor, Device: "a-device-id-longer-than-16"},
			"<mrq><ref>R1</ref><cid>4711</cid><dty>0014</dty><pri>9</pri><lco>039</lco></mrq>"},
		{with(alarm.Alarm{Kind: alarm.KindWander, Priority: 2, Location: event.LocGeofence}, func(a *alarm.Alarm) {
			a.SetTrack([]event.Position{{Lat: 59.3, Lon: 18.1, LastKnown: &last}})
			a.SetPosition(&event.Position{Lat: 60, Lon: 17})
		}),
			"<mrq><ref>R1</ref><cid>4711</cid><dty>0051</dty><pri>6</pri><lco>019</lco><lge><geo>59.300000,18.100000</geo><tim>2026-01-15T01:02:03Z</tim></lge></mrq>"},
		{alarm.Alarm{Kind: alarm.KindHazard, Priority: 1, DeviceType: event.SmokeDetector},
			"<mrq><ref>R1</ref><cid>4711</cid><dty>0004</dty><stc>0009</stc><pri>9</pri></mrq>"},
		{alarm.Alarm{Kind: alarm.KindTechnical, Priority: 2, DeviceType: event.PersonalTrigger, Status: event.RadioTestMissing},
			"<mrq><ref>R1</ref><cid>4711</cid><dty>0003</dty><stc>0123</stc><pri>6</pri></mrq>"},
		{alarm.Alarm{Kind: alarm.KindTechnical, Priority: 3},
			"<mrq><ref>R1</ref><cid>4711</cid><dty>0032</dty><stc>0023</stc><pri>3</pri></mrq>"},
	} {
		r := notify.Request(&tc.a, c, "R1", scaip.Message)
		b := r.Marshal()
		if string(b) != tc.want {
			t.Errorf("%s/%s:\n got %s\nwant %s", tc.a.Kind, tc.a.DeviceType, b, tc.want)
		}
		if _, err := scaip.Parse(b); err != nil {
			t.Errorf("%s: strict parser refuses what Vaka sends: %v", b, err)
		}
	}
	// IN carries the latest position.
	a := alarm.Alarm{Kind: alarm.KindWander, Location: event.LocGeofence}
	a.SetTrack([]event.Position{{Lat: 1, Lon: 2}})
	a.SetPosition(&event.Position{Lat: 3, Lon: 4})
	if in := notify.Request(&a, c, "R1", scaip.Info); in.Lge == nil || in.Lge.Geo != "3.000000,4.000000" || in.Mty != scaip.Info {
		t.Errorf("IN %+v", in)
	}
}

// Whatever an alarm holds (device ids, caller ids, codes and positions
// come from outside: gateways, trackers, SCAIP units), the <mrq> Vaka
// sends a centre passes the strict parser: strict in what we send.
func FuzzRequestFromAlarm(f *testing.F) {
	f.Add("knapp-12", "gsm:+46701234567", "0003", "0010", "039", 59.3, 18.1, "A000001")
	f.Add("å<&>\"'", "sip:x@y", "V001", "abc", "19", -91.0, 181.0, "")
	f.Fuzz(func(t *testing.T, device, crd, dty, stc, lco string, lat, lon float64, id string) {
		a := alarm.Alarm{ID: id, Kind: alarm.KindCall, Priority: 1, Device: device,
			DeviceType: event.DeviceType(dty), Status: event.StatusCode(stc), Location: event.LocationCode(lco)}
		a.SetCallerID(crd)
		a.SetPosition(&event.Position{Lat: lat, Lon: lon})
		for _, k := range []alarm.Kind{alarm.KindCall, alarm.KindFall, alarm.KindWander, alarm.KindTechnical, alarm.KindHazard} {
			a.Kind = k
			for _, mty := range []scaip.MessageType{scaip.Message, scaip.Info, scaip.Reset} {
				r := notify.Request(&a, &notify.SCAIP{CID: "4711"}, notify.HandoverRef(id, 0, "larm"), mty)
				b := r.Marshal()
				if _, err := scaip.Parse(b); err != nil {
					t.Fatalf("Vaka sends what the standard refuses: %v\n%s", err, b)
				}
			}
		}
	})
}

// vaka routes test: a centre's tier is left at its deadline at the latest.
func TestSCAIPSchedule(t *testing.T) {
	tr := tree(t, centreYAML(t, "sip:larm@127.0.0.2", "udp", "        deadline: 5m"))
	ps := tr.Match(map[string]string{"site": "solrosen", "kind": "call"}, at("2026-01-15 23:00"))
	s := ps[0].Schedule()
	if len(s) != 2 || s[0].SCAIP != "sip:larm@127.0.0.2" || s[1].After != 5*time.Minute || !strings.Contains(s[1].Reason, "snu 0") {
		t.Fatalf("schedule %+v", s)
	}
}

// Down past the deadline: at start the hand-over is given up at once (RE
// with the same ref) and the next tier alerted; no ME is sent again.
func TestSCAIPRestartPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCentre{answer: func(*scaip.Request, int) (scaip.SNU, bool) { return scaip.Hold, true }}
		y := centreYAML(t, "sip:larm@127.0.0.2", "udp", "")
		h, d := startCentre(t, y, c)
		time.Sleep(15 * time.Second)
		synctest.Wait()
		d.Close()
		time.Sleep(5 * time.Minute)
		d2 := notify.New(notify.Options{Tree: tree(t, y), SCAIP: c})
		h.mu.Lock()
		h.d = d2
		open := h.a.Clone()
		h.mu.Unlock()
		d2.Start(h, []*alarm.Alarm{open})
		defer d2.Close()
		synctest.Wait()
		if got := afters(c.sent(scaip.Message)); got != "0s 10s" {
			t.Errorf("ME at %s", got)
		}
		if re := c.sent(scaip.Reset); len(re) != 1 || re[0].after != 5*time.Minute+15*time.Second || re[0].req.Ref != notify.HandoverRef("A000001", 0, "larm") {
			t.Errorf("RE %+v", re)
		}
		if got, want := firstSteps(h, 2), "notify:0:scaip:larm@0s escalate:1:lead@5m15s"; got != want {
			t.Errorf("steps %s, want %s", got, want)
		}
	})
}

// A centre's hbi sets the heartbeat interval: PI every 1 m (configured)
// until the first answer asks for 5 min; an hbi outside SS 91100's 1–1440
// minutes (the third answer asks 2000) is ignored; the fifth asks 2 min.
// With ignore_hbi the PI says hbo 0 and the configured minute stays.
func TestSCAIPHeartbeatCentreInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		asks := map[int]int{0: 5, 2: 2000, 4: 2}
		c := &fakeCentre{answer: func(*scaip.Request, int) (scaip.SNU, bool) { return scaip.OK, true },
			hbi: func(n int) int { return asks[n] }}
		tr := tree(t, centreYAML(t, "sip:larm@127.0.0.2", "udp", "        heartbeat: 1m"))
		c.start = time.Now()
		d := notify.New(notify.Options{Tree: tr, SCAIP: c})
		d.Start(&fakeHub{d: d}, nil)
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		d.Close()
		pi := c.sent(scaip.Heartbeat)
		// 1m (asks 5) → 6m → 11m (asks 2000: ignored) → 16m → 21m (asks 2) → 23m, 25m, 27m, 29m
		if got, want := afters(pi), "1m0s 6m0s 11m0s 16m0s 21m0s 23m0s 25m0s 27m0s 29m0s"; got != want {
			t.Errorf("PI at %s, want %s", got, want)
		}
		if pi[0].req.Hbo != "1" {
			t.Errorf("PI hbo %q, want 1 (Vaka accepts the centre's interval)", pi[0].req.Hbo)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCentre{answer: func(*scaip.Request, int) (scaip.SNU, bool) { return scaip.OK, true },
			hbi: func(int) int { return 5 }}
		tr := tree(t, centreYAML(t, "sip:larm@127.0.0.2", "udp", "        heartbeat: 1m\n        ignore_hbi: true"))
		c.start = time.Now()
		d := notify.New(notify.Options{Tree: tr, SCAIP: c})
		d.Start(&fakeHub{d: d}, nil)
		time.Sleep(5*time.Minute + 30*time.Second)
		synctest.Wait()
		d.Close()
		pi := c.sent(scaip.Heartbeat)
		if got, want := afters(pi), "1m0s 2m0s 3m0s 4m0s 5m0s"; got != want || pi[0].req.Hbo != "0" {
			t.Errorf("ignore_hbi: PI at %s hbo %q, want %s hbo 0", got, pi[0].req.Hbo, want)
		}
	})
}

// Under synctest: a reload that removes a centre stops its heartbeats (no
// PI to a centre no longer configured, no alarm about it), and a reload
// that adds it back starts them again; a reload that keeps it changes
// nothing (PI stay one a minute, not restarted).
func TestSCAIPHeartbeatsFollowReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCentre{answer: func(*scaip.Request, int) (scaip.SNU, bool) { return scaip.OK, true }}
		y := centreYAML(t, "sip:larm@127.0.0.2", "udp", "        heartbeat: 1m")
		i, j := strings.Index(y, "    - name: larm"), strings.Index(y, "    - name: lead")
		without := strings.Replace(y[:i]+y[j:], "receiver: larm", "receiver: lead", 1)
		c.start = time.Now()
		d := notify.New(notify.Options{Tree: tree(t, y), SCAIP: c})
		d.Start(&fakeHub{d: d}, nil)
		defer d.Close()
		count := func() int { synctest.Wait(); return len(c.sent(scaip.Heartbeat)) }
		time.Sleep(2*time.Minute + 30*time.Second)
		d.SetTree(tree(t, y)) // the same centre: its loop runs on
		time.Sleep(time.Minute)
		if n := count(); n != 3 {
			t.Fatalf("%d PI by 3m30s with a reload keeping the centre, want 3", n)
		}
		d.SetTree(tree(t, without))
		time.Sleep(5 * time.Minute)
		if n := count(); n != 3 {
			t.Fatalf("%d PI after the centre was removed, want still 3", n)
		}
		d.SetTree(tree(t, y))
		time.Sleep(2*time.Minute + 30*time.Second)
		if n := count(); n != 5 {
			t.Fatalf("%d PI after the centre came back, want 5", n)
		}
	})
}

// with returns a after f set its seldom used fields (alarm.Alarm's
// extra: set through methods, not in a literal).
func with(a alarm.Alarm, f func(*alarm.Alarm)) alarm.Alarm {
	f(&a)
	return a
}
