package hub

import (
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/store"
)

// A silent alarm receiving centre is one technical alarm per centre,
// restored when it answers again; the hand-over steps the notifier
// records on alarms are accepted, journaled and read back after a restart.
func TestCentreUnreachableAndHandoverJournaled(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	open := func() (*Hub, *store.Journal) {
		var cfg Config
		if err := config.Decode("hub.yaml", []byte(silenceYAML), &cfg); err != nil {
			t.Fatal(err)
		}
		cfg.DataDir = dir
		j, replay, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h, err := New(Options{Config: &cfg, Journal: j, Replay: replay, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return h, j
	}
	h, j := open()
	h.CentreUnreachable("larm", true, "larmcentralen svarar inte / the alarm centre does not answer: larm")
	h.CentreUnreachable("larm", true, "again")
	var a *alarm.Alarm
	for _, x := range h.Alarms() {
		if x.Rule == notify.RuleCentreUnreachable {
			if a != nil {
				t.Fatal("a second alarm for the same centre")
			}
			a = x
		}
	}
	if a == nil || a.Kind != alarm.KindTechnical || a.Device != "scaip:larm" || a.Site != "hub" || a.Repeats() != 1 {
		t.Fatalf("centre alarm %+v", a)
	}
	now = now.Add(time.Minute)
	if err := h.Record(alarm.Transition{Alarm: a.ID, Action: alarm.ActHandover, Receiver: "larm", Channel: alarm.ChannelSCAIP,
		To: []string{"scaip:larm"}, Note: "snu 4"}); err != nil {
		t.Fatalf("handover step refused: %v", err)
	}
	h.CentreUnreachable("larm", false, "larmcentralen svarar igen / the alarm centre answers again: larm")
	if got := mustAlarm(t, h, a.ID); got.RestoredAt() == nil {
		t.Error("not restored")
	}
	j.Close()
	h2, j2 := open()
	defer j2.Close()
	got := mustAlarm(t, h2, a.ID)
	var seen bool
	for _, s := range got.History() {
		if s.Action == alarm.ActHandover && s.Note == "snu 4" && s.Channel == alarm.ChannelSCAIP && s.Receiver == "larm" {
			seen = true
		}
	}
	if !seen || got.RestoredAt() == nil {
		t.Errorf("after restart: handover step %v, restored %v", seen, got.RestoredAt())
	}
}
