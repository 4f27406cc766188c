package hub

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/feed"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/store"
)

// stormYAML is one gateway with a call button and n door sensors
// supervised at 60 s (the call button is not supervised here), and one
// staff member, so the default route alerts her.
func stormYAML(n int) string {
	var b strings.Builder
	b.WriteString(`demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
users:
  - {username: natt1, role: staff, password_hash: "$2a$04$abcdefghijklmnopqrstuuS5vjrGtYvbIRpQJ1rEv7Ib5I3H0UeKO"}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    supervision: {personal_trigger: 0s, fall_detector: 0s, door_sensor: 60s}
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
`)
	for i := range n {
		fmt.Fprintf(&b, "          - {id: door-%04d, type: door_sensor, unit: u, room: r%d}\n", i, i)
	}
	return b.String()
}

// pushLog is a Pusher that records what each phone would be told, and when.
type pushLog struct {
	mu   sync.Mutex
	msgs []pushed
}

type pushed struct {
	at time.Time
	m  notify.Message
}

func (p *pushLog) Push(_ context.Context, _ string, m notify.Message) (int, error) {
	p.mu.Lock()
	p.msgs = append(p.msgs, pushed{time.Now(), m})
	p.mu.Unlock()
	return 1, nil
}

func (p *pushLog) to(id string) []pushed {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []pushed
	for _, x := range p.msgs {
		if x.m.Alarm == id {
			out = append(out, x)
		}
	}
	return out
}

// A storm: 1,000 door sensors behind one gateway go silent together, 300
// more a minute later. Staff get one group alarm (one card) listing them,
// notified group_wait after its first member and then at most once per
// group_interval; every member is still an alarm of its own, journaled and
// readable. A call-button press in the middle of the storm gets its own
// alarm, journaled with its notify step in one frame, and its own push at
// once.
func TestStormGroupsTechnicalAlarmsButNeverACall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const first, later = 1000, 300
		dir := t.TempDir()
		j, replay, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := loadConfig(t, stormYAML(first+later))
		h, d, pl := pushingHub(t, cfg, j, replay)
		closeAll := sync.OnceFunc(func() { d.Close(); j.Close() })
		defer closeAll()
		q, cancel := h.Feed()
		defer cancel()
		start := time.Now()
		seq := 0
		beat := func() { h.HandleHeartbeat("s", "gw", nil) }
		// The later 300 report at 30 s, so they go silent at 90 s.
		step := func(sec int) {
			time.Sleep(time.Second)
			if sec%10 == 0 {
				beat()
			}
			if sec == 30 {
				for i := first; i < first+later; i++ {
					seq++
					h.HandleEvent("s", "gw", evPayload(fmt.Sprintf("d%d", seq), fmt.Sprintf("door-%04d", i), "0014", "closed", "", time.Now()))
				}
			}
			h.Tick()
			synctest.Wait()
		}
		sec := 0
		for ; sec < 62; sec++ { // the first 1,000 go silent at 60–61 s
			step(sec)
		}
		list := h.Alarms()
		if len(list) != 1 || list[0].Group() == nil {
			t.Fatalf("after the first wave: %d cards, want one group alarm: %+v", len(list), list)
		}
		g := list[0]
		if g.Group().Count != first || len(g.Group().Members) != alarm.MaxGroupMembers || g.Kind != alarm.KindTechnical || g.Rule != alarm.RuleGroup {
			t.Fatalf("group: count %d, %d members listed, kind %s rule %s", g.Group().Count, len(g.Group().Members), g.Kind, g.Rule)
		}
		if m := g.Group().Members[0]; !strings.HasPrefix(m.Device, "door-") || m.Gateway != "gw" || m.Since.IsZero() {
			t.Errorf("first member %+v", m)
		}
		if by := g.Group().By; by["site"] != "s" || by["gateway"] != "gw" {
			t.Errorf("group by %v, want site s gateway gw (the default)", by)
		}
		// The screen got the group (its latest state), not 1,000 members.
		frames, cut := q.Next(nil, 10000)
		if cut {
			t.Fatal("stream cut")
		}
		for _, f := range frames {
			if f.Alarm == nil || f.Alarm.GroupID() != "" {
				t.Fatalf("a member or summary reached the screen: %+v", f)
			}
		}
		if len(frames) != 1 || frames[0].Alarm.ID != g.ID {
			t.Fatalf("%d frames after the wave, want 1 (the group, coalesced)", len(frames))
		}

		// A call button is pressed in the storm: its own alarm, journaled
		// with who was alerted, in one frame, and pushed at once.
		seq++
		if r := h.HandleEvent("s", "gw", press(fmt.Sprintf("p%d", seq), time.Now())); r.Code != 0 {
			t.Fatalf("press: %+v", r)
		}
		frames, _ = q.Next(nil, 100)
		if len(frames) != 1 || frames[0].Alarm.Kind != alarm.KindCall {
			t.Fatalf("press: %d frames, want 1 call frame: %+v", len(frames), frames)
		}
		call := frames[0].Alarm
		if hs := call.Clone().History(); len(hs) != 2 || hs[0].Action != alarm.ActRaise || hs[1].Action != alarm.ActNotify || hs[1].To[0] != "natt1" {
			t.Fatalf("call frame history %+v, want raise then notify natt1 in the one frame", hs)
		}
		synctest.Wait() // the dispatcher's loop runs; no fake time passes
		if p := pl.to(call.ID); len(p) != 1 || !p[0].at.Equal(time.Now()) || p[0].m.Kind != alarm.KindCall {
			t.Fatalf("call pushes %+v, want one, now", p)
		}
		if fr, _ := q.Next(nil, 100); len(fr) != 0 {
			t.Errorf("%d more frames after the call's one frame", len(fr))
		}

		for ; sec < 15*60; sec++ {
			step(sec)
		}
		list = h.Alarms()
		if len(list) != 2 {
			t.Fatalf("%d cards, want the group and the call", len(list))
		}
		g, _ = h.Alarm(g.ID)
		if g.Group().Count != first+later {
			t.Errorf("group count %d, want %d", g.Group().Count, first+later)
		}
		members, ok := h.GroupMembers(g.ID)
		if !ok || len(members) != first+later {
			t.Fatalf("GroupMembers: %d, want %d", len(members), first+later)
		}
		// The last member is one of the later wave.
		if a, ok := h.Alarm(members[first+later-1].ID); !ok || a.GroupID() != g.ID || a.Device < fmt.Sprintf("door-%04d", first) {
			t.Errorf("last member: %+v", a)
		}
		// Notifications on the group: the first group_wait after its
		// first member, then at most one per group_interval.
		gp := pl.to(g.ID)
		if len(gp) == 0 {
			t.Fatal("group never notified")
		}
		if want := g.RaisedAt.Add(notify.DefaultGroupWait); !gp[0].at.Equal(want) || gp[0].m.Step != alarm.ActNotify {
			t.Errorf("first group notification %v %s, want notify at %v", gp[0].at.Sub(start), gp[0].m.Step, want.Sub(start))
		}
		for i := 1; i < len(gp); i++ {
			if gap := gp[i].at.Sub(gp[i-1].at); gap < notify.DefaultGroupInterval {
				t.Errorf("group notifications %d and %d only %v apart", i-1, i, gap)
			}
		}
		if max := 1 + int(time.Since(gp[0].at)/notify.DefaultGroupInterval); len(gp) > max || len(gp) < 2 {
			t.Errorf("%d group notifications in %v, want 2..%d (it grew at 90 s)", len(gp), time.Since(gp[0].at), max)
		}
		for _, p := range pl.msgs {
			if p.m.Alarm != g.ID && p.m.Alarm != call.ID {
				t.Fatalf("a member was notified on its own: %+v", p.m)
			}
		}

		// Resolving the group resolves its members, each step journaled.
		if _, err := h.Act(g.ID, alarm.ActAccept, "natt1", "", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Act(g.ID, alarm.ActResolve, "natt1", alarm.OutcomeTechnical, "mobilnätet nere"); err != nil {
			t.Fatal(err)
		}
		h.gs.pending.Wait()
		members, _ = h.GroupMembers(g.ID)
		for _, m := range members {
			if m.State != alarm.Resolved || m.ResolvedBy() != "natt1" || m.Outcome() != alarm.OutcomeTechnical {
				t.Fatalf("member %s after the group was resolved: %s by %q", m.ID, m.State, m.ResolvedBy())
			}
		}
		closeAll()
		// Everything is in the journal: a new hub rebuilds the group.
		j2, replay2, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j2.Close()
		raisedInGroup := 0
		for _, tr := range replay2 {
			if tr.Action == alarm.ActRaise && tr.Raise.GroupID() == g.ID {
				raisedInGroup++
			}
		}
		if raisedInGroup != first+later {
			t.Errorf("%d member raises journaled, want %d", raisedInGroup, first+later)
		}
		h2, err := New(Options{Config: cfg, Journal: j2, Replay: replay2})
		if err != nil {
			t.Fatal(err)
		}
		if g2, _ := h2.Alarm(g.ID); g2.Group() == nil || g2.Group().Count != first+later || len(g2.Group().Members) != alarm.MaxGroupMembers {
			t.Errorf("rebuilt group: %+v", g2.Group())
		}
		_ = feed.Frame{}
	})
}
