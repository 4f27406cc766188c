package hub

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/store"
)

const silenceYAML = `demo: true
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "00:00", end: "00:00"}
    supervision: {personal_trigger: 3m}
    residents:
      - {id: r-a, unit: u, consent: {rules: [bed_exit], recorded_by: ssk, recorded_at: "2026-01-01"}}
    gateways:
      - id: gw
        heartbeat: 24h
        devices:
          - {id: btn-a, type: personal_trigger, resident: r-a, unit: u, room: "1"}
          - {id: bed-a, type: bed_monitor, resident: r-a, unit: u, room: "1"}
          - {id: exit, type: door_sensor, unit: u, room: entre, exit: true}
`

func newTestHub(t *testing.T, dir string, now func() time.Time) *Hub {
	t.Helper()
	var cfg Config
	if err := config.Decode("hub.yaml", []byte(silenceYAML), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	h, err := New(Options{Config: &cfg, Journal: j, Replay: replay, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func payload(id, device, dty, state string, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"v":1,"id":%q,"device":%q,"dty":%q,"state":%q,"ts":%q}`, id, device, dty, state, at.UTC().Format(time.RFC3339Nano)))
}

func TestSilenceHoldsBackButNeverCallButtons(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	h := newTestHub(t, dir, func() time.Time { return now })
	if _, err := h.AddSilence(Silence{Site: "s", Resident: "r-a", End: now.Add(time.Hour), Author: "lead", Reason: "på sjukhus"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddSilence(Silence{Site: "s", End: now.Add(time.Hour), Author: "lead", Reason: "x"}); err == nil {
		t.Error("a silence of a whole site was accepted")
	}
	if _, err := h.AddSilence(Silence{Site: "s", Resident: "r-a", End: now.Add(time.Hour), Reason: "x"}); err == nil {
		t.Error("a silence without an author was accepted")
	}
	// The bed exit for r-a is held back …
	h.HandleEvent("s", "gw", payload("e1", "bed-a", "0012", "empty", now))
	now = now.Add(20 * time.Minute)
	h.Tick()
	// … but the call button is always heard.
	h.HandleEvent("s", "gw", payload("e2", "btn-a", "0003", "pressed", now))
	list := h.Alarms()
	if len(list) != 1 || list[0].Rule != "call_button" {
		t.Fatalf("alarms = %+v, want only the call button", list)
	}
	// Silences survive a restart.
	h3 := &Hub{dataDir: dir}
	if err := h3.loadSilences(); err != nil || len(h3.silences) != 1 {
		t.Fatalf("silences after reload: %v %+v", err, h3.silences)
	}
	// Ending it lets the next bed exit through.
	if err := h.EndSilence(h.Silences()[0].ID, "lead"); err != nil {
		t.Fatal(err)
	}
	h.HandleEvent("s", "gw", payload("e3", "bed-a", "0012", "occupied", now))
	h.HandleEvent("s", "gw", payload("e4", "bed-a", "0012", "empty", now))
	now = now.Add(16 * time.Minute)
	h.Tick()
	found := false
	for _, a := range h.Alarms() {
		found = found || a.Rule == "bed_exit"
	}
	if !found {
		t.Fatal("bed exit not raised after the silence ended")
	}
}

// Under synctest the hub's own ticker drives supervision: a call button
// that stops sending radio tests raises a technical alarm after its
// class's 3 minutes, on the hub's clock, without the test sleeping.
func TestRunSupervisesOnItsOwnClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHub(t, t.TempDir(), time.Now)
		ch, cancel := h.Subscribe()
		defer cancel()
		stop := make(chan struct{})
		go h.Run(stop)
		h.HandleEvent("s", "gw", payload("r1", "btn-a", "0003", "", time.Now()))
		time.Sleep(2*time.Minute + 59*time.Second)
		synctest.Wait()
		if len(h.Alarms()) != 0 {
			t.Fatalf("alarm before 3 minutes: %+v", h.Alarms())
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		select {
		case a := <-ch:
			if a.Rule != "device_silent" || a.Kind != alarm.KindTechnical || a.Status != "0123" {
				t.Errorf("alarm %+v", a)
			}
		default:
			t.Fatal("no supervision alarm after 3 minutes")
		}
		close(stop)
		synctest.Wait()
	})
}

// A resident's silence (in hospital) never holds back smoke, gas or water
// at their home: the danger is to the place, not to one person's plan.
func TestSilenceNeverHoldsBackHazards(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	h := newTestHub(t, t.TempDir(), func() time.Time { return now })
	if _, err := h.AddSilence(Silence{Site: "s", Resident: "r-a", End: now.Add(time.Hour), Author: "lead", Reason: "på sjukhus"}); err != nil {
		t.Fatal(err)
	}
	// The bed sensor's radar also senses smoke in the room (any device
	// type may report a hazard).
	h.HandleEvent("s", "gw", []byte(fmt.Sprintf(`{"v":1,"id":"h1","device":"bed-a","dty":"0012","stc":"0009","state":"smoke","ts":%q}`,
		now.Format(time.RFC3339Nano))))
	list := h.Alarms()
	if len(list) != 1 || list[0].Rule != "smoke" || list[0].Kind != alarm.KindHazard || list[0].Priority != 1 {
		t.Fatalf("alarms %+v, want the smoke alarm despite the silence", list)
	}
}
