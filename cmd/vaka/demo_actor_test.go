package main

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// The demo's simulated colleague leaves a new alarm alone for a minute,
// then takes it, goes there and closes it, one step at a time; it never
// touches an alarm someone else took. Time is passed in, not waited for.
func TestDemoActorHandlesAlarmsOverTime(t *testing.T) {
	s, _, _ := startAccessHub(t, io.Discard)
	press := func(home, id string) *alarm.Alarm {
		s.Hub.HandleEvent("hemtjanst-norr", home, []byte(fmt.Sprintf(
			`{"v":1,"id":%q,"device":"knapp-%s","dty":"0003","stc":"0010","state":"pressed","ts":%q}`,
			id, home, time.Now().UTC().Format(time.RFC3339Nano))))
		for range 200 {
			for _, a := range s.Hub.Alarms() {
				if a.Device == "knapp-"+home && a.Open() {
					return a
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no alarm for %s", home)
		return nil
	}
	mine := press("hem-1", "e-1")
	theirs := press("hem-2", "e-2")
	if _, err := s.Hub.Act(theirs.ID, alarm.ActAccept, "natt1", "", ""); err != nil {
		t.Fatal(err)
	}
	actor := &demoActor{hub: s.Hub, user: "natt2", log: slog.New(slog.DiscardHandler), take: time.Minute, arrive: 2 * time.Minute, resolve: 3 * time.Minute}
	state := func(a *alarm.Alarm) *alarm.Alarm { got, _ := s.Hub.Alarm(a.ID); return got }
	for _, step := range []struct {
		after time.Duration
		want  alarm.State
	}{{30 * time.Second, alarm.Raised}, {61 * time.Second, alarm.Accepted}, {62 * time.Second, alarm.Accepted},
		{121 * time.Second, alarm.Presence}, {181 * time.Second, alarm.Resolved}} {
		actor.step(mine.RaisedAt.Add(step.after))
		if got := state(mine); got.State != step.want {
			t.Fatalf("after %v: %s, want %s", step.after, got.State, step.want)
		}
	}
	if got := state(mine); got.AcceptedBy() != "natt2" || got.ResolvedBy() != "natt2" || got.Outcome() != alarm.OutcomeRealNeed {
		t.Errorf("handled as %+v", got)
	}
	if got := state(theirs); got.State != alarm.Accepted || got.AcceptedBy() != "natt1" {
		t.Errorf("the actor touched natt1's alarm: %s by %s", got.State, got.AcceptedBy())
	}
}
