package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/store"
)

// hubYAML is a small unit: one gateway (heartbeat 10 s, 3 missed), a call
// button, a fall detector and an exit door. Device supervision is off so
// the tests see only what they provoke.
const hubYAML = `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    supervision: {personal_trigger: 0s, fall_detector: 0s, door_sensor: 0s}
    units:
      - {id: u}
    residents:
      - {id: r-a, unit: u}
    gateways:
      - id: gw
        heartbeat: 10s
        missed: 3
        devices:
          - {id: btn-a, type: personal_trigger, resident: r-a, unit: u, room: "12"}
          - {id: fall-a, type: fall_detector, resident: r-a, unit: u, room: "12"}
          - {id: exit, type: door_sensor, unit: u, room: entre, exit: true}
`

// clock is an injected hub clock that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var stockholm = func() *time.Location {
	l, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		panic(err)
	}
	return l
}()

// dayTime is a weekday afternoon: no night rules.
var dayTime = time.Date(2026, 11, 23, 14, 0, 0, 0, stockholm)

func loadConfig(t testing.TB, yaml string) *Config {
	t.Helper()
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(yaml), &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	return &cfg
}

// openHub opens the journal in dir and builds a hub from its replay.
func openHub(t testing.TB, dir string, c *clock) (*Hub, *store.Journal) {
	t.Helper()
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	h, err := New(Options{Config: loadConfig(t, hubYAML), Journal: j, Replay: replay, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return h, j
}

func evPayload(id, device, dty, state, stc string, at time.Time) []byte {
	m := map[string]any{"v": 1, "id": id, "device": device, "dty": dty, "ts": at.UTC().Format(time.RFC3339Nano)}
	if state != "" {
		m["state"] = state
	}
	if stc != "" {
		m["stc"] = stc
	}
	b, _ := json.Marshal(m)
	return b
}

func press(id string, at time.Time) []byte { return evPayload(id, "btn-a", "0003", "pressed", "", at) }

// drain returns what is waiting on ch without blocking.
func drain(ch <-chan *alarm.Alarm) []*alarm.Alarm {
	var out []*alarm.Alarm
	for {
		select {
		case a, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, a)
		default:
			return out
		}
	}
}

func wantOK(t *testing.T, r event.Reply, id string) {
	t.Helper()
	if r.Code != event.ReplyOK || r.ID != id || r.Evaluated || r.Reason != "" {
		t.Fatalf("reply %+v, want OK for %s", r, id)
	}
}

func TestCallButtonRaisesOnceDuplicatesAndRepeats(t *testing.T) {
	c := newClock(dayTime)
	h, _ := openHub(t, t.TempDir(), c)
	ch, cancel := h.Subscribe()
	defer cancel()
	src := dayTime.Add(-2 * time.Second)

	wantOK(t, h.HandleEvent("s", "gw", press("e1", src)), "e1")
	list := h.Alarms()
	if len(list) != 1 {
		t.Fatalf("%d alarms, want 1", len(list))
	}
	a := list[0]
	if a.ID != "A000001" || a.Kind != alarm.KindCall || a.Rule != rules.RuleCallButton || a.Priority != 1 ||
		a.State != alarm.Raised || a.Site != "s" || a.Gateway != "gw" || a.Device != "btn-a" ||
		a.DeviceType != event.PersonalTrigger || a.Status != event.ManualAlarm ||
		a.Resident != "r-a" || a.Unit != "u" || a.Room != "12" || a.EventID != "s/gw/e1" || a.Repeats() != 0 {
		t.Errorf("alarm %+v", a)
	}
	if !a.SourceTime.Equal(src) || !a.RaisedAt.Equal(dayTime) {
		t.Errorf("source time %v raised %v; want %v and %v", a.SourceTime, a.RaisedAt, src, dayTime)
	}
	if len(a.History()) != 1 || a.History()[0].Action != alarm.ActRaise || a.History()[0].Seq != 1 || a.History()[0].Raise != nil {
		t.Errorf("history %+v", a.History())
	}
	got := drain(ch)
	if len(got) != 1 || got[0].ID != a.ID || got[0].State != alarm.Raised {
		t.Fatalf("subscriber got %+v, want the raise", got)
	}

	// Redelivery of the same event: answered, nothing raised, nothing sent.
	c.Add(time.Second)
	wantOK(t, h.HandleEvent("s", "gw", press("e1", src)), "e1")
	if list := h.Alarms(); len(list) != 1 || list[0].Repeats() != 0 || len(list[0].History()) != 1 {
		t.Fatalf("duplicate changed the alarms: %+v", list)
	}
	if got := drain(ch); len(got) != 0 {
		t.Fatalf("duplicate was broadcast: %+v", got)
	}

	// A new press on the same button: the open alarm repeats.
	c.Add(time.Second)
	wantOK(t, h.HandleEvent("s", "gw", press("e2", dayTime)), "e2")
	list = h.Alarms()
	if len(list) != 1 || list[0].ID != "A000001" || list[0].Repeats() != 1 {
		t.Fatalf("second press: %+v, want A000001 with 1 repeat", list)
	}
	if hist := list[0].History(); len(hist) != 2 || hist[1].Action != alarm.ActRepeat || hist[1].EventID != "s/gw/e2" {
		t.Errorf("history %+v", hist)
	}
	if got := drain(ch); len(got) != 1 || got[0].Repeats() != 1 {
		t.Fatalf("subscriber got %+v, want the repeat", got)
	}
	// A fall from the same resident is its own alarm.
	wantOK(t, h.HandleEvent("s", "gw", evPayload("e3", "fall-a", "0005", "", "0009", dayTime)), "e3")
	list = h.Alarms()
	if len(list) != 2 || list[1].Rule != rules.RuleFall || list[1].Kind != alarm.KindFall || list[1].ID != "A000002" {
		t.Fatalf("fall: %+v", list)
	}
}

func TestMalformedPayloadRepliesAndRaisesNothing(t *testing.T) {
	const secret = "Sven Secretsson 19270101-9999"
	for _, tc := range []struct {
		name    string
		payload []byte
		code    event.ReplyCode
		id      string
	}{
		{"not json", []byte("hello"), event.ReplyInvalidFormat, ""},
		{"empty", nil, event.ReplyInvalidFormat, ""},
		{"missing ts", []byte(`{"v":1,"id":"e9","device":"btn-a","dty":"0003","state":"pressed"}`), event.ReplyMandatoryMissed, "e9"},
		{"missing device", []byte(`{"v":1,"id":"e9","dty":"0003","state":"pressed","ts":"2026-11-23T13:00:00Z"}`), event.ReplyMandatoryMissed, "e9"},
		{"wrong type", []byte(`{"v":1,"id":"e9","device":"btn-a","dty":3,"state":"pressed","ts":"2026-11-23T13:00:00Z"}`), event.ReplyWrongData, "e9"},
		{"other site in payload", []byte(`{"v":1,"id":"e9","site":"x","device":"btn-a","dty":"0003","state":"pressed","ts":"2026-11-23T13:00:00Z"}`), event.ReplyWrongData, "e9"},
		{"secret in a name field", []byte(`{"v":1,"id":"e9","device":"btn-a","dty":"0003","state":"pressed","ts":"2026-11-23T13:00:00Z","resident":"` + secret + `"}`), event.ReplyWrongData, "e9"},
		{"too long", append(press("e9", dayTime), make([]byte, event.MaxPayload)...), event.ReplyTooLong, ""},
		{"id too long is not echoed", []byte(`{"v":1,"id":"` + strings.Repeat("x", 65) + `"}`), event.ReplyWrongData, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := openHub(t, t.TempDir(), newClock(dayTime))
			ch, cancel := h.Subscribe()
			defer cancel()
			r := h.HandleEvent("s", "gw", tc.payload)
			if r.Code != tc.code || r.ID != tc.id || r.Evaluated || r.Reason == "" {
				t.Errorf("reply %+v, want code %d id %q with a reason", r, tc.code, tc.id)
			}
			if strings.Contains(r.Reason, "Sven") || strings.Contains(r.Reason, "19270101") {
				t.Errorf("reply reason leaks the payload: %q", r.Reason)
			}
			if n := len(h.Alarms()); n != 0 {
				t.Errorf("%d alarms from a refused payload", n)
			}
			if got := drain(ch); len(got) != 0 {
				t.Errorf("refused payload broadcast %+v", got)
			}
			// A refused payload does not poison the id: fixed, it is evaluated.
			wantOK(t, h.HandleEvent("s", "gw", press("e9", dayTime)), "e9")
			if n := len(h.Alarms()); n != 1 {
				t.Errorf("the corrected event raised %d alarms, want 1", n)
			}
		})
	}
}

func TestUnknownDevice(t *testing.T) {
	h, _ := openHub(t, t.TempDir(), newClock(dayTime))
	r := h.HandleEvent("s", "gw", evPayload("u1", "btn-new", "0003", "pressed", "", dayTime))
	if r.Code != event.ReplyWrongData || !r.Evaluated || r.ID != "u1" || r.Reason == "" {
		t.Errorf("reply %+v, want code 3, evaluated", r)
	}
	list := h.Alarms()
	if len(list) != 1 || list[0].Rule != rules.RuleCallButton || list[0].Device != "btn-new" || list[0].Note == "" {
		t.Fatalf("unregistered call button: %+v", list)
	}
	// A registered button on the wrong gateway is unknown too, and still heard.
	r = h.HandleEvent("s", "gw-other", press("u2", dayTime))
	if r.Code != event.ReplyWrongData || !r.Evaluated {
		t.Errorf("reply %+v", r)
	}
	if n := len(h.Alarms()); n != 2 {
		t.Errorf("%d alarms, want 2", n)
	}
	// An unregistered door at night raises nothing but is still answered.
	night := time.Date(2026, 11, 23, 3, 0, 0, 0, stockholm)
	r = h.HandleEvent("s", "gw", evPayload("u3", "door-new", "0014", "open", "", night))
	if r.Code != event.ReplyWrongData || !r.Evaluated {
		t.Errorf("reply %+v", r)
	}
	if n := len(h.Alarms()); n != 2 {
		t.Errorf("%d alarms after an unknown door, want 2", n)
	}
}

func TestActFlowAndConflicts(t *testing.T) {
	c := newClock(dayTime)
	h, _ := openHub(t, t.TempDir(), c)
	h.HandleEvent("s", "gw", press("e1", dayTime))
	id := h.Alarms()[0].ID
	ch, cancel := h.Subscribe()
	defer cancel()

	step := func(action alarm.Action, by string, outcome alarm.Outcome, wantErr error) *alarm.Alarm {
		t.Helper()
		c.Add(time.Minute)
		a, err := h.Act(id, action, by, outcome, "")
		if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Fatalf("%s by %s: %v, want %v", action, by, err, wantErr)
		}
		sent := drain(ch)
		if err != nil {
			if len(sent) != 0 {
				t.Fatalf("refused %s was broadcast", action)
			}
			return nil
		}
		if len(sent) != 1 || sent[0].State != a.State {
			t.Fatalf("%s: broadcast %+v", action, sent)
		}
		return a
	}
	step(alarm.ActPresence, "anna", "", alarm.ErrNotAccepted)
	step(alarm.ActResolve, "anna", alarm.OutcomeRealNeed, alarm.ErrNotAccepted)
	a := step(alarm.ActAccept, "anna", "", nil)
	if a.State != alarm.Accepted || a.AcceptedBy() != "anna" || !a.AcceptedAt().Equal(c.Now()) {
		t.Errorf("accepted %+v", a)
	}
	step(alarm.ActAccept, "anna", "", nil) // double tap
	step(alarm.ActAccept, "bo", "", alarm.ErrAlreadyAccepted)
	step(alarm.ActAccept, "", "", alarm.ErrNoActor)
	a = step(alarm.ActPresence, "anna", "", nil)
	if a.State != alarm.Presence {
		t.Errorf("presence: %s", a.State)
	}
	step(alarm.ActResolve, "anna", "", alarm.ErrBadOutcome)
	step(alarm.ActResolve, "anna", "nonsense", alarm.ErrBadOutcome)
	a = step(alarm.ActResolve, "anna", alarm.OutcomeFalse, nil)
	if a.State != alarm.Resolved || a.Outcome() != alarm.OutcomeFalse || a.ResolvedBy() != "anna" {
		t.Errorf("resolved %+v", a)
	}
	for _, act := range []alarm.Action{alarm.ActAccept, alarm.ActPresence, alarm.ActResolve} {
		step(act, "anna", alarm.OutcomeTest, alarm.ErrResolved)
	}
	if _, err := h.Act("A999999", alarm.ActAccept, "anna", "", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown alarm: %v", err)
	}
	if _, err := h.Act(id, alarm.ActRaise, "anna", "", ""); !errors.Is(err, alarm.ErrUnknownAction) {
		t.Errorf("staff raise: %v", err)
	}
	if _, err := h.Act(id, alarm.ActRepeat, "anna", "", ""); !errors.Is(err, alarm.ErrUnknownAction) {
		t.Errorf("staff repeat: %v", err)
	}
	if _, err := h.Act(id, alarm.ActAccept, "anna", "", strings.Repeat("x", 2001)); err == nil {
		t.Error("note of 2001 characters accepted")
	}
	got, _ := h.Alarm(id)
	var acts []string
	for _, tr := range got.History() {
		acts = append(acts, string(tr.Action))
	}
	if strings.Join(acts, ",") != "raise,accept,accept,presence,resolve" {
		t.Errorf("history %v", acts)
	}
	// Resolved: the next press is a new alarm, listed before the resolved one.
	h.HandleEvent("s", "gw", press("e2", c.Now()))
	list := h.Alarms()
	if len(list) != 2 || list[0].ID != "A000002" || !list[0].Open() || list[1].ID != id {
		t.Fatalf("after resolve: %+v", list)
	}
	// Resolved alarms leave the list after 24 h, and memory after the recent window.
	c.Add(25 * time.Hour)
	if list := h.Alarms(); len(list) != 1 || list[0].ID != "A000002" {
		t.Errorf("resolved alarm listed after 24 h: %d", len(list))
	}
	if _, ok := h.Alarm(id); !ok {
		t.Error("resolved alarm forgotten before the recent window")
	}
	c.Add(7 * 24 * time.Hour)
	h.Tick()
	if _, ok := h.Alarm(id); ok {
		t.Error("resolved alarm kept after the recent window")
	}
}

// Everything the hub knows about alarms is rebuilt from the journal.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c := newClock(dayTime)
	h, j := openHub(t, dir, c)
	h.HandleEvent("s", "gw", press("e1", dayTime)) // A000001: accepted, repeated
	c.Add(time.Second)
	h.HandleEvent("s", "gw", press("e2", c.Now()))
	h.HandleEvent("s", "gw", evPayload("e3", "fall-a", "0005", "", "0009", c.Now())) // A000002: resolved
	c.Add(time.Minute)
	mustAct(t, h, "A000001", alarm.ActAccept, "anna", "")
	mustAct(t, h, "A000002", alarm.ActAccept, "bo", "")
	mustAct(t, h, "A000002", alarm.ActPresence, "bo", "")
	mustAct(t, h, "A000002", alarm.ActResolve, "bo", alarm.OutcomeRealNeed)
	h.HandleStatus("s", "gw", []byte(`{"state":"offline"}`)) // A000003: gateway offline, open
	before := mustJSON(t, h.Alarms())
	if n := len(h.Alarms()); n != 3 {
		t.Fatalf("%d alarms before restart, want 3", n)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	c.Add(time.Minute)
	h2, _ := openHub(t, dir, c)
	if after := mustJSON(t, h2.Alarms()); after != before {
		t.Fatalf("state after restart differs:\nbefore %s\nafter  %s", before, after)
	}
	ch, cancel := h2.Subscribe()
	defer cancel()
	// Redelivery after the restart (a gateway replaying its spool): nothing.
	for _, p := range [][]byte{press("e1", dayTime), press("e2", dayTime), evPayload("e3", "fall-a", "0005", "", "0009", dayTime)} {
		h2.HandleEvent("s", "gw", p)
	}
	// The gateway's Will again: already known offline, nothing new.
	h2.HandleStatus("s", "gw", []byte(`{"state":"offline"}`))
	if got := drain(ch); len(got) != 0 {
		t.Fatalf("redelivered events changed alarms after restart: %+v", got)
	}
	if after := mustJSON(t, h2.Alarms()); after != before {
		t.Fatalf("redelivery changed the state:\nbefore %s\nafter  %s", before, after)
	}
	// The open call alarm is still open for repeats; a new alarm gets a new id.
	h2.HandleEvent("s", "gw", press("e4", c.Now()))
	a, _ := h2.Alarm("A000001")
	if a.Repeats() != 2 || a.State != alarm.Accepted || a.AcceptedBy() != "anna" {
		t.Errorf("open alarm after restart: repeats %d state %s", a.Repeats(), a.State)
	}
	h2.HandleEvent("s", "gw", evPayload("e5", "fall-a", "0005", "", "0009", c.Now()))
	if a, ok := h2.Alarm("A000004"); !ok || a.Rule != rules.RuleFall {
		t.Errorf("new alarm after restart: %+v %v", a, ok)
	}
	// Staff actions continue against the rebuilt state.
	if _, err := h2.Act("A000001", alarm.ActAccept, "bo", "", ""); !errors.Is(err, alarm.ErrAlreadyAccepted) {
		t.Errorf("accept by another after restart: %v", err)
	}
	// The gateway's restore still finds its open alarm.
	h2.HandleStatus("s", "gw", []byte(`{"state":"online"}`))
	if a, _ := h2.Alarm("A000003"); a.RestoredAt() == nil {
		t.Error("gateway restore after restart not recorded")
	}
}

func mustAct(t *testing.T, h *Hub, id string, act alarm.Action, by string, o alarm.Outcome) {
	t.Helper()
	if _, err := h.Act(id, act, by, o, ""); err != nil {
		t.Fatalf("%s %s by %s: %v", act, id, by, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSlowSubscriberIsCutOffOthersKeepGoing(t *testing.T) {
	c := newClock(dayTime)
	h, _ := openHub(t, t.TempDir(), c)
	slow, cancelSlow := h.Subscribe()
	defer cancelSlow()
	fast, cancelFast := h.Subscribe()
	defer cancelFast()
	buffer := cap(slow)
	if buffer < 256 {
		t.Fatalf("subscriber buffer %d, want at least 256", buffer)
	}
	changes := buffer + 10
	fastGot := 0
	for i := 0; i < changes; i++ {
		r := h.HandleEvent("s", "gw", press(fmt.Sprintf("e%d", i), c.Now()))
		if r.Code != event.ReplyOK {
			t.Fatalf("press %d: %+v", i, r)
		}
		fastGot += len(drain(fast))
	}
	if fastGot != changes {
		t.Errorf("fast subscriber got %d changes, want %d", fastGot, changes)
	}
	// The slow one has its buffer and then a closed channel.
	n, closed := 0, false
	for i := 0; i <= buffer; i++ {
		_, ok := <-slow
		if !ok {
			closed = true
			break
		}
		n++
	}
	if !closed || n != buffer {
		t.Fatalf("slow subscriber: %d changes, closed %v; want %d then closed", n, closed, buffer)
	}
	// The alarm path went on: one alarm with every press counted.
	list := h.Alarms()
	if len(list) != 1 || list[0].Repeats() != changes-1 {
		t.Fatalf("alarms %d, repeats %d; want 1 with %d", len(list), list[0].Repeats(), changes-1)
	}
	h.HandleEvent("s", "gw", evPayload("f", "fall-a", "0005", "", "0009", c.Now()))
	if got := drain(fast); len(got) != 1 || got[0].Rule != rules.RuleFall {
		t.Errorf("fast subscriber after the cut: %+v", got)
	}
	cancelSlow() // cancelling a cut-off subscriber is harmless
	cancelSlow()
	// A new subscriber works.
	again, cancelAgain := h.Subscribe()
	defer cancelAgain()
	h.HandleEvent("s", "gw", press("last", c.Now()))
	if got := drain(again); len(got) != 1 {
		t.Errorf("resubscribed: %d changes, want 1", len(got))
	}
	cancelAgain()
	if _, ok := <-again; ok {
		t.Error("cancelled subscription still open")
	}
}

func TestGatewayLastWillAndOnline(t *testing.T) {
	c := newClock(dayTime)
	h, _ := openHub(t, t.TempDir(), c)
	ch, cancel := h.Subscribe()
	defer cancel()
	h.HandleStatus("s", "gw", []byte(`{"state":"online"}`))
	if got := drain(ch); len(got) != 0 {
		t.Fatalf("online raised %+v", got)
	}
	c.Add(time.Second)
	h.HandleStatus("s", "gw", []byte(`{"state":"offline"}`))
	list := h.Alarms()
	if len(list) != 1 {
		t.Fatalf("%d alarms after the Will, want 1", len(list))
	}
	a := list[0]
	if a.Rule != rules.RuleGatewayOffline || a.Kind != alarm.KindTechnical || a.Status != event.Offline ||
		a.Gateway != "gw" || a.Site != "s" || a.DeviceType != event.CommLink || a.RestoredAt() != nil {
		t.Errorf("offline alarm %+v", a)
	}
	h.HandleStatus("s", "gw", []byte(`{"state":"offline"}`))
	h.HandleStatus("s", "gw", []byte(`offline`))
	if got := drain(ch); len(got) != 1 {
		t.Fatalf("repeated Will: %d changes, want just the raise", len(got))
	}
	// Payloads that are not a status change nothing.
	for _, p := range []string{`{"state":"gone"}`, `{}`, `ONLINE`, ``, `{"state":1}`} {
		h.HandleStatus("s", "gw", []byte(p))
	}
	if got := drain(ch); len(got) != 0 {
		t.Fatalf("bad status payloads changed alarms: %+v", got)
	}
	c.Add(time.Minute)
	h.HandleStatus("s", "gw", []byte(`{"state":"online"}`))
	a, _ = h.Alarm(a.ID)
	if a.RestoredAt() == nil || !a.RestoredAt().Equal(c.Now()) || !a.Open() {
		t.Errorf("online: restored %v open %v; want restored now, still open for staff", a.RestoredAt(), a.Open())
	}
	// Plain words work too (zigbee2mqtt style): a second outage repeats the open alarm.
	h.HandleStatus("s", "gw", []byte(`offline`))
	if a, _ = h.Alarm(a.ID); a.Repeats() != 1 || len(h.Alarms()) != 1 {
		t.Errorf("second outage: repeats %d, %d alarms", a.Repeats(), len(h.Alarms()))
	}
}

func TestTickRaisesMissedHeartbeats(t *testing.T) {
	c := newClock(dayTime)
	h, _ := openHub(t, t.TempDir(), c) // start: the gateway is expected from now
	c.Add(30 * time.Second)            // 3 × 10 s
	h.Tick()
	if n := len(h.Alarms()); n != 0 {
		t.Fatalf("offline after exactly 3 missed heartbeats: %d alarms", n)
	}
	c.Add(time.Second)
	h.Tick()
	list := h.Alarms()
	if len(list) != 1 || list[0].Rule != rules.RuleGatewayOffline || list[0].Gateway != "gw" {
		t.Fatalf("after 31 s without heartbeats: %+v", list)
	}
	c.Add(time.Minute)
	h.Tick()
	if a := h.Alarms()[0]; a.Repeats() != 0 || len(h.Alarms()) != 1 {
		t.Errorf("offline raised again: %+v", a)
	}
	h.HandleHeartbeat("s", "gw", nil)
	if a := h.Alarms()[0]; a.RestoredAt() == nil {
		t.Error("heartbeat did not restore")
	}
	// Heartbeats keep it online.
	for i := 0; i < 10; i++ {
		c.Add(10 * time.Second)
		h.HandleHeartbeat("s", "gw", nil)
		h.Tick()
	}
	if a := h.Alarms()[0]; a.Repeats() != 0 {
		t.Errorf("beating gateway raised again: %+v", a)
	}
}

func TestDropSourceRaisesIntegrityAlarm(t *testing.T) {
	c := newClock(dayTime)
	h, _ := openHub(t, t.TempDir(), c)
	var mu sync.Mutex
	var dropped int64
	set := func(n int64) { mu.Lock(); dropped = n; mu.Unlock() }
	h.AddDropSource(func() int64 { mu.Lock(); defer mu.Unlock(); return dropped })
	h.AddDropSource(func() int64 { return 0 })
	h.Tick()
	if n := len(h.Alarms()); n != 0 {
		t.Fatalf("no drops, %d alarms", n)
	}
	set(3)
	h.Tick()
	list := h.Alarms()
	if len(list) != 1 || list[0].Rule != rules.RuleHubIntegrity || list[0].Kind != alarm.KindTechnical ||
		list[0].Status != event.IPConnectionFailed || !strings.Contains(list[0].Note, "3") {
		t.Fatalf("after drops: %+v", list)
	}
	h.Tick() // no growth: nothing new
	if a := h.Alarms()[0]; a.Repeats() != 0 {
		t.Errorf("unchanged drop count repeated the alarm")
	}
	set(5)
	h.Tick()
	if a := h.Alarms()[0]; a.Repeats() != 1 || len(h.Alarms()) != 1 {
		t.Errorf("growth: repeats %d, %d alarms; want 1 repeat on the same alarm", a.Repeats(), len(h.Alarms()))
	}
}

// Under synctest the hub's own once-a-second ticker finds the silent
// gateway on the fake clock, neither early nor late.
func TestRunFindsSilentGateway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		j, replay, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		h, err := New(Options{Config: loadConfig(t, hubYAML), Journal: j, Replay: replay})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { h.Run(stop); close(done) }()
		for i := 0; i < 3; i++ { // beats for 30 s
			time.Sleep(10 * time.Second)
			h.HandleHeartbeat("s", "gw", nil)
		}
		time.Sleep(30 * time.Second) // 3 × 10 s since the last beat
		synctest.Wait()
		if n := len(h.Alarms()); n != 0 {
			t.Fatalf("%d alarms at 30 s of silence", n)
		}
		time.Sleep(time.Second) // the next tick
		synctest.Wait()
		if list := h.Alarms(); len(list) != 1 || list[0].Rule != rules.RuleGatewayOffline {
			t.Fatalf("after 31 s of silence: %+v", list)
		}
		close(stop)
		<-done
	})
}

func TestRecordNotificationSteps(t *testing.T) {
	c := newClock(dayTime)
	h, _ := openHub(t, t.TempDir(), c)
	h.HandleEvent("s", "gw", press("e1", dayTime))
	if err := h.Record(alarm.Transition{Alarm: "A000001", Action: alarm.ActEscalate, Tier: 1}); err != nil {
		t.Fatal(err)
	}
	if a, _ := h.Alarm("A000001"); a.Tier() != 1 || !a.History()[1].At.Equal(dayTime) {
		t.Errorf("escalate: tier %d at %v", a.Tier(), a.History()[1].At)
	}
	if err := h.Record(alarm.Transition{Alarm: "A000001", Action: alarm.ActAccept, By: "x"}); !errors.Is(err, alarm.ErrUnknownAction) {
		t.Errorf("Record of a staff action: %v", err)
	}
	if err := h.Record(alarm.Transition{Alarm: "nope", Action: alarm.ActNotify}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Record for an unknown alarm: %v", err)
	}
}

func TestNewNeedsConfigAndJournal(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("hub built without config and journal")
	}
}

func TestConfigValidateErrorsWithLines(t *testing.T) {
	const hash = "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"
	base := `mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
data_dir: /var/lib/vaka
users:
  - {username: anna, role: staff, password_hash: "` + hash + `"}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    gateways:
      - id: gw
        password_hash: "` + hash + `"
        devices:
          - {id: d1, type: door_sensor}
          - {id: d2, type: personal_trigger}
`
	if err := config.Decode("hub.yaml", []byte(base), &Config{}); err != nil {
		t.Fatalf("base config refused: %v", err)
	}
	for _, tc := range []struct {
		name, old, new string
		want           []string
	}{
		{"missing night", `    night: {start: "22:00", end: "06:30"}` + "\n", "",
			[]string{"hub.yaml:7: field sites.0.night: missing"}},
		{"bad night", `end: "06:30"`, `end: "6.30"`,
			[]string{"hub.yaml:8: field sites.0.night: end: "}},
		{"bad device type", "type: door_sensor", "type: dorr",
			[]string{`hub.yaml:13: field sites.0.gateways.0.devices.0.type: unknown device type "dorr"`}},
		{"missing device type", "{id: d2, type: personal_trigger}", "{id: d2}",
			[]string{"hub.yaml:14: field sites.0.gateways.0.devices.1.type: missing"}},
		{"duplicate device", "{id: d2, type: personal_trigger}", "{id: d1, type: personal_trigger}",
			[]string{`hub.yaml:14: field sites.0.gateways.0.devices.1.id: duplicate device "d1"`}},
		{"bad role", "role: staff", "role: boss",
			[]string{"hub.yaml:5: field users.0.role: must be staff, lead, admin or technician"}},
		{"missing role", "role: staff, ", "",
			[]string{"hub.yaml:5: field users.0.role: missing"}},
		{"no bcrypt hash", `password_hash: "` + hash + `"}`, `password_hash: "hunter2"}`,
			[]string{"hub.yaml:5: field users.0.password_hash: missing or not a bcrypt hash"}},
		{"gateway without hash outside demo", `        password_hash: "` + hash + `"` + "\n", "",
			[]string{"hub.yaml:10: field sites.0.gateways.0.password_hash: missing"}},
		{"missing data_dir outside demo", "data_dir: /var/lib/vaka\n", "",
			[]string{"hub.yaml:1: field data_dir: missing"}},
		{"resident name as id", "    gateways:\n", "    residents: [{id: Anna Svensson}]\n    gateways:\n",
			[]string{"hub.yaml:9: field sites.0.residents.0.id: "}},
		{"bad heartbeat", "      - id: gw\n", "      - id: gw\n        heartbeat: 500ms\n",
			[]string{"hub.yaml:11: field sites.0.gateways.0.heartbeat: must be at least 1s"}},
		{"bad timezone", "data_dir: /var/lib/vaka\n", "data_dir: /var/lib/vaka\ntimezone: Mars/Olympus\n",
			[]string{`hub.yaml:4: field timezone: unknown time zone "Mars/Olympus"`}},
		{"wrong type in a device (flow mapping)", "{id: d1, type: door_sensor}", "{id: d1, type: door_sensor, exit: maybe}",
			[]string{"hub.yaml:13: field sites.0.gateways.0.devices.0.exit: wrong type: got text, want true/false"}},
		{"unknown key", "{id: d1, type: door_sensor}", "{id: d1, type: door_sensor, colour: red}",
			[]string{"hub.yaml:13: field sites.0.gateways.0.devices.0.colour: unknown field"}},
		{"bad supervision", "    gateways:\n", "    supervision: {door_sensor: 5s}\n    gateways:\n",
			[]string{"hub.yaml:9: field sites.0.supervision.door_sensor: must be 0s (off) or at least 10s"}},
		{"no listener", "mqtt: {tcp: 127.0.0.1:0}\n", "",
			[]string{"hub.yaml:1: field mqtt: no listener"}},
		{"sync window too short", "data_dir: /var/lib/vaka\n", "data_dir: /var/lib/vaka\nstore: {sync_every: 100us}\n",
			[]string{"hub.yaml:4: field store.sync_every: must be between 1ms and 1s"}},
		{"sync window too long", "data_dir: /var/lib/vaka\n", "data_dir: /var/lib/vaka\nstore: {sync_every: 2s}\n",
			[]string{"hub.yaml:4: field store.sync_every: must be between 1ms and 1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Count(base, tc.old) != 1 {
				t.Fatalf("%q is not in the base config exactly once", tc.old)
			}
			data := strings.Replace(base, tc.old, tc.new, 1)
			err := config.Decode("hub.yaml", []byte(data), &Config{})
			if err == nil {
				t.Fatal("accepted")
			}
			var es config.Errors
			if !errors.As(err, &es) || len(es) != len(tc.want) {
				t.Fatalf("errors (want %d):\n%v", len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(es[i].Error(), w) {
					t.Errorf("error %q, want prefix %q", es[i].Error(), w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Error("error echoes a password")
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := loadConfig(t, hubYAML)
	if cfg.Loc == nil || cfg.Loc.String() != "Europe/Stockholm" || cfg.HTTP.SessionTTL != 12*time.Hour {
		t.Errorf("defaults: loc %v ttl %v", cfg.Loc, cfg.HTTP.SessionTTL)
	}
	cfg = loadConfig(t, strings.Replace(strings.Replace(hubYAML, "        heartbeat: 10s\n", "", 1), "        missed: 3\n", "", 1))
	if g := cfg.Sites[0].Gateways[0]; g.Heartbeat != DefaultHeartbeat || g.Missed != DefaultMissed {
		t.Errorf("gateway defaults %v %d", g.Heartbeat, g.Missed)
	}
	rc := cfg.RuleConfig()
	s := rc.Sites["s"]
	if s == nil || s.Devices["exit"] == nil || !s.Devices["exit"].Exit || s.Devices["btn-a"].Type != event.PersonalTrigger ||
		s.Supervision[event.PersonalTrigger] != 0 || s.Supervision[event.Tracker] != DefaultSupervision[event.Tracker] ||
		s.Gateways["gw"].Heartbeat != DefaultHeartbeat || s.Night != (rules.Window{Start: 22 * 60, End: 6*60 + 30}) {
		t.Errorf("rule config %+v", s)
	}
}

// FuzzConfig: the hub's config loader never panics, its errors are located
// in the file, and a config it accepts builds a rule engine.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(hubYAML))
	f.Add([]byte(silenceYAML))
	f.Add([]byte("demo: true\nmqtt: {tcp: x}\nhttp: {address: y}\nsites: [{id: s, night: {start: '22:00', end: '06:30'}, gateways: [{id: g, devices: [{id: d, type: '0014', exit: true}]}]}]\n"))
	f.Add([]byte("sites:\n  - id: s\n    night: {start: '25:00', end: 'x'}\n    residents: [{id: 'Anna Svensson'}]\n"))
	f.Add([]byte("demo: true\nmqtt: {tcp: x}\nhttp: {address: y}\nsites: [{id: s, night: {start: '00:00', end: '00:00'}, geofences: [{id: g, circle: {lat: 1, lon: 2, radius: 3}}], residents: [{id: r, geofences: [g], consent: {rules: [geofence_exit], recorded_by: x, recorded_at: '2026-01-01'}}]}]\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg Config
		err := config.Decode("hub.yaml", data, &cfg)
		if err != nil {
			var es config.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not config.Errors: %T %v", err, err)
			}
			for _, e := range es {
				if e.File != "hub.yaml" {
					t.Fatalf("error not located in the file: %q", e.Error())
				}
			}
			return
		}
		if cfg.Loc == nil {
			t.Fatal("accepted config without a location")
		}
		e := rules.New(cfg.RuleConfig())
		e.Expect(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC))
		_ = e.Supervise(time.Date(2026, 3, 29, 2, 0, 0, 0, time.UTC))
	})
}

// BenchmarkHandleEvent: a radio test from a call button, the bulk of real
// traffic, which raises nothing (each with a fresh id, so none is a
// duplicate).
func BenchmarkHandleEvent(b *testing.B) {
	c := newClock(dayTime)
	h, _ := openHub(b, b.TempDir(), c)
	const n = 1 << 17 // more than the dedup ring holds, so ids are fresh when reused
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = []byte(fmt.Sprintf(`{"v":1,"id":"rt-%d","device":"btn-a","dty":"0003","battery":80,"ts":"2026-11-23T13:00:00Z"}`, i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if r := h.HandleEvent("s", "gw", payloads[i%n]); r.Code != event.ReplyOK {
			b.Fatalf("reply %+v", r)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "events/s")
	if len(h.Alarms()) != 0 {
		b.Fatalf("background traffic raised %d alarms", len(h.Alarms()))
	}
}
