package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/notify"
)

var users = []string{"natt1", "natt2", "dag1", "lead", "tekniker"}

type file struct {
	Routing notify.Config `yaml:"routing"`
}

func (f *file) Validate() error { return errors.Join(f.Routing.Validate("routing", users)...) }

const routingYAML = `
routing:
  shifts:
    night: {start: "22:00", end: "07:00"}
    day:   {start: "07:00", end: "22:00"}
  receivers:
    - name: natt-solrosen
      users: [natt1, natt2]
    - name: dag-solrosen
      users: [dag1]
    - name: lead
      users: [lead]
    - name: tekniker
      users: [tekniker]
    - name: larmcentral
      webhook: {url: "http://127.0.0.1:1/arc"}
  route:
    receiver: lead
    delivery_timeout: 20s
    accept_timeout: 60s
    remind_every: 30s
    escalate: [larmcentral]
    routes:
      - match: {kind: technical}
        receiver: tekniker
        escalate: []
      - match: {site: solrosen}
        shift: night
        receiver: natt-solrosen
        escalate: [lead, larmcentral]
      - match: {site: solrosen}
        shift: day
        receiver: dag-solrosen
      - match: {kind: "fall|call"}
        continue: true
        receiver: natt-solrosen
      - match: {priority: "1"}
        receiver: lead
`

func tree(t *testing.T, y string) *notify.Tree {
	t.Helper()
	var f file
	if err := config.Decode("hub.yaml", []byte(y), &f); err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Europe/Stockholm")
	tr, err := f.Routing.Compile(users, loc)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func at(s string) time.Time {
	loc, _ := time.LoadLocation("Europe/Stockholm")
	t, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

func receivers(ps []notify.Plan) string {
	var out []string
	for _, p := range ps {
		var names []string
		for _, r := range p.Tiers {
			names = append(names, r.Name)
		}
		out = append(out, strings.Join(names, ">"))
	}
	return strings.Join(out, ",")
}

func TestRouteTree(t *testing.T) {
	tr := tree(t, routingYAML)
	for _, c := range []struct {
		labels map[string]string
		at     string
		want   string
	}{
		{map[string]string{"site": "solrosen", "kind": "call"}, "2026-01-15 23:00", "natt-solrosen>lead>larmcentral"},
		{map[string]string{"site": "solrosen", "kind": "call"}, "2026-01-15 10:00", "dag-solrosen>larmcentral"},
		{map[string]string{"site": "solrosen", "kind": "technical"}, "2026-01-15 23:00", "tekniker"},
		// continue: a fall at home reaches night staff and, priority 1, the lead.
		{map[string]string{"site": "hem-norr", "kind": "fall", "priority": "1"}, "2026-01-15 23:00", "natt-solrosen>larmcentral,lead>larmcentral"},
		{map[string]string{"site": "hem-norr", "kind": "wander", "priority": "2"}, "2026-01-15 23:00", "lead>larmcentral"},
		// Daylight saving: the night window holds on both change nights.
		{map[string]string{"site": "solrosen", "kind": "call"}, "2026-03-29 03:30", "natt-solrosen>lead>larmcentral"},
		{map[string]string{"site": "solrosen", "kind": "call"}, "2026-03-29 07:00", "dag-solrosen>larmcentral"},
		{map[string]string{"site": "solrosen", "kind": "call"}, "2026-10-25 02:30", "natt-solrosen>lead>larmcentral"},
		{map[string]string{"site": "solrosen", "kind": "call"}, "2026-10-24 21:59", "dag-solrosen>larmcentral"},
	} {
		got := receivers(tr.Match(c.labels, at(c.at)))
		if got != c.want {
			t.Errorf("%v at %s: %s, want %s", c.labels, c.at, got, c.want)
		}
	}
	// Both clock-change hours exist only once or twice; check by instant too.
	fallBack := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC) // 02:30 CEST, then 02:30 CET an hour later
	for _, ts := range []time.Time{fallBack, fallBack.Add(time.Hour)} {
		if got := receivers(tr.Match(map[string]string{"site": "solrosen"}, ts)); !strings.HasPrefix(got, "natt-solrosen") {
			t.Errorf("%v: %s, want night staff", ts, got)
		}
	}
}

func TestDefaultRoute(t *testing.T) {
	var c notify.Config
	tr, err := c.Compile([]string{"a", "b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := tr.Match(map[string]string{"site": "x"}, time.Now())
	if len(ps) != 1 || ps[0].Tiers[0].Name != notify.DefaultReceiver || !slices.Equal(ps[0].Tiers[0].Users, []string{"a", "b"}) {
		t.Fatalf("default plan %+v", ps)
	}
	if ps[0].RemindEvery != time.Minute || ps[0].AcceptTimeout != 0 {
		t.Errorf("default timers %+v", ps[0])
	}
}

func TestConfigErrorsNameFieldAndLine(t *testing.T) {
	y := `
routing:
  shifts:
    night: {start: "22:00", end: "7"}
  receivers:
    - name: a
      users: [ghost]
    - name: b
      webhook: {url: "ftp://x"}
  route:
    receiver: nobody
    accept_timeout: 1s
    routes:
      - match: {colour: red}
        shift: evening
        escalate: [zz]
`
	var f file
	err := config.Decode("hub.yaml", []byte(y), &f)
	if err == nil {
		t.Fatal("bad routing accepted")
	}
	for _, want := range []string{
		"hub.yaml:4: field routing.shifts.night: end:",
		"hub.yaml:7: field routing.receivers.0.users.0: no user \"ghost\"",
		"field routing.receivers.1.webhook.url",
		"field routing.route.receiver: no receiver \"nobody\"",
		"field routing.route.accept_timeout: must be 0 (off) or between 5s and 24h",
		"field routing.route.routes.0.match.colour: not a label",
		"field routing.route.routes.0.shift: no shift \"evening\"",
		"field routing.route.routes.0.escalate.0: no receiver \"zz\"",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestScheduleForOperators(t *testing.T) {
	tr := tree(t, routingYAML)
	ps := tr.Match(map[string]string{"site": "solrosen", "kind": "call"}, at("2026-01-15 23:00"))
	s := ps[0].Schedule()
	if len(s) != 3 || s[1].After != 60*time.Second || s[2].After != 120*time.Second || s[2].Webhook == "" {
		t.Fatalf("schedule %+v", s)
	}
}

// fakeHub applies recorded steps like the hub does, and feeds them back
// to the dispatcher as committed transitions.
type fakeHub struct {
	mu sync.Mutex
	a  *alarm.Alarm
	d  *notify.Dispatcher
}

func (h *fakeHub) Record(t alarm.Transition) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := alarm.Apply(h.a, t); err != nil {
		return err
	}
	h.d.ObserveTransition(h.a, t)
	return nil
}

func (h *fakeHub) act(t alarm.Transition) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := alarm.Apply(h.a, t); err != nil {
		panic(err)
	}
	h.d.ObserveTransition(h.a, t)
}

func (h *fakeHub) steps() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, t := range h.a.History() {
		switch t.Action {
		case alarm.ActNotify, alarm.ActEscalate, alarm.ActReminder:
			out = append(out, fmt.Sprintf("%s:%d:%s@%v", t.Action, t.Tier, strings.Join(t.To, "+"), t.At.Sub(h.a.RaisedAt)))
		}
	}
	return out
}

type pushLog struct {
	mu   sync.Mutex
	msgs []string
}

func (p *pushLog) Push(_ context.Context, user string, m notify.Message) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, fmt.Sprintf("%s:%s:%s", user, m.Step, m.Alarm))
	return 1, nil
}

func raise(h *fakeHub, now time.Time) {
	a := alarm.New("A000001", now)
	a.Site, a.Kind, a.Priority, a.Unit, a.Room = "solrosen", alarm.KindCall, 1, "avd-a", "12"
	h.a = a
	h.d.ObserveTransition(a, alarm.Transition{Alarm: a.ID, Action: alarm.ActRaise, At: now})
}

// Night, nobody's phone confirms: after 20 s the lead is alerted, after
// 40 s more the alarm centre; reminders every 30 s in between.
func TestEscalationNoReceipt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := tree(t, strings.Replace(routingYAML, "receiver: natt-solrosen\n        escalate: [lead, larmcentral]", "receiver: natt-solrosen\n        escalate: [lead]", 1))
		push := &pushLog{}
		start := time.Date(2026, 1, 15, 22, 30, 0, 0, time.UTC) // 23:30 in Stockholm
		time.Sleep(time.Until(start))
		d := notify.New(notify.Options{Tree: tr, Pusher: push})
		h := &fakeHub{d: d}
		d.Start(h, nil)
		defer d.Close()
		raise(h, time.Now())
		synctest.Wait()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		time.Sleep(100 * time.Second)
		synctest.Wait()
		got := strings.Join(h.steps(), " ")
		want := "notify:0:natt1+natt2@0s escalate:1:lead@20s reminder:1:natt1+natt2+lead@50s reminder:1:natt1+natt2+lead@1m20s reminder:1:natt1+natt2+lead@1m50s"
		if got != want {
			t.Errorf("steps\n got %s\nwant %s", got, want)
		}
		// Accepting stops everything.
		h.act(alarm.Transition{Alarm: "A000001", Action: alarm.ActAccept, By: "lead", At: time.Now()})
		synctest.Wait()
		n := len(h.steps())
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if len(h.steps()) != n {
			t.Errorf("steps after accept: %v", h.steps()[n:])
		}
		push.mu.Lock()
		defer push.mu.Unlock()
		if len(push.msgs) != 2+1+3*3 {
			t.Errorf("pushes %d: %v", len(push.msgs), push.msgs)
		}
	})
}

// A receipt from a night phone stops the delivery timer; the accept
// timer still climbs at 60 s.
func TestEscalationReceiptThenNoAccept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := tree(t, routingYAML)
		time.Sleep(time.Until(time.Date(2026, 1, 15, 22, 30, 0, 0, time.UTC)))
		d := notify.New(notify.Options{Tree: tr, Webhook: &notify.WebhookSender{Client: &http.Client{Transport: failing{}}, Backoff: func(int) time.Duration { return time.Second }}})
		h := &fakeHub{d: d}
		d.Start(h, nil)
		defer d.Close()
		raise(h, time.Now())
		synctest.Wait()
		time.Sleep(5 * time.Second)
		if err := h.Record(alarm.Transition{Alarm: "A000001", Action: alarm.ActDelivered, By: "natt2", Phone: "p1", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		time.Sleep(125 * time.Second)
		synctest.Wait()
		got := strings.Join(h.steps(), " ")
		// The lead's phone sends no receipt either: 20 s later the alarm
		// centre; its webhook fails, so reminders go on to the staff.
		want := "notify:0:natt1+natt2@0s reminder:0:natt1+natt2@30s escalate:1:lead@1m0s escalate:2:webhook:larmcentral@1m20s reminder:2:natt1+natt2+lead@1m50s"
		if got != want {
			t.Errorf("steps\n got %s\nwant %s", got, want)
		}
		if len(h.a.Deliveries) != 1 || h.a.Deliveries[0].User != "natt2" {
			t.Errorf("deliveries %+v", h.a.Deliveries)
		}
		h.act(alarm.Transition{Alarm: "A000001", Action: alarm.ActAccept, By: "natt1", At: time.Now()})
		synctest.Wait()
	})
}

// After a restart the escalation resumes from the steps on the alarm.
func TestEscalationResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := tree(t, routingYAML)
		time.Sleep(time.Until(time.Date(2026, 1, 15, 22, 30, 0, 0, time.UTC)))
		wh := &notify.WebhookSender{Client: &http.Client{Transport: failing{}}, Backoff: func(int) time.Duration { return time.Second }}
		d := notify.New(notify.Options{Tree: tr, Webhook: wh})
		h := &fakeHub{d: d}
		d.Start(h, nil)
		raise(h, time.Now())
		synctest.Wait()
		time.Sleep(25 * time.Second)
		synctest.Wait()
		d.Close()
		// Down for 10 s; a new dispatcher picks up at tier 1.
		time.Sleep(10 * time.Second)
		d2 := notify.New(notify.Options{Tree: tr, Webhook: wh})
		h.mu.Lock()
		h.d = d2
		open := h.a.Clone()
		h.mu.Unlock()
		d2.Start(h, []*alarm.Alarm{open})
		defer d2.Close()
		time.Sleep(26 * time.Second)
		synctest.Wait()
		got := strings.Join(h.steps(), " ")
		want := "notify:0:natt1+natt2@0s escalate:1:lead@20s escalate:2:webhook:larmcentral@40s"
		if got != want {
			t.Errorf("steps\n got %s\nwant %s", got, want)
		}
		h.act(alarm.Transition{Alarm: "A000001", Action: alarm.ActAccept, By: "lead", At: time.Now()})
		synctest.Wait()
	})
}

type failing struct{}

func (failing) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("refused") }

func TestWebhookRetry(t *testing.T) {
	var n atomic.Int32
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got.Store(r.Header.Get("Content-Type"))
	}))
	defer srv.Close()
	s := &notify.WebhookSender{Client: srv.Client(), Backoff: func(int) time.Duration { return time.Millisecond }}
	r := &notify.Receiver{Name: "arc", Webhook: &notify.Webhook{URL: srv.URL}}
	if err := s.Send(context.Background(), r, notify.Message{Alarm: "A1"}); err != nil || n.Load() != 3 {
		t.Fatalf("err %v after %d attempts", err, n.Load())
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	defer bad.Close()
	retry, err := s.Notify(context.Background(), &notify.Receiver{Name: "x", Webhook: &notify.Webhook{URL: bad.URL}}, notify.Message{})
	if err == nil || retry {
		t.Errorf("400: retry %v err %v", retry, err)
	}
}

func FuzzRoutingConfig(f *testing.F) {
	f.Add([]byte(routingYAML))
	f.Add([]byte("routing:\n  route:\n    receiver: a\n    routes: [{routes: [{routes: [{}]}]}]\n"))
	f.Add([]byte("routing: {shifts: {n: {start: '25:00', end: x}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fl file
		if err := config.Decode("f.yaml", data, &fl); err != nil {
			return
		}
		tr, err := fl.Routing.Compile(users, time.UTC)
		if err != nil {
			t.Fatalf("valid config does not compile: %v", err)
		}
		for _, p := range tr.Match(map[string]string{"site": "s", "kind": "call"}, time.Unix(0, 0)) {
			_ = p.Schedule()
		}
	})
}
