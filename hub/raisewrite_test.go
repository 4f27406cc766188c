package hub

import (
	"testing"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/store"
)

// A call-button press with the notifier as router costs one journal
// write(2): the raise and its first notify step together, with
// consecutive sequence numbers, and both survive a restart in order.
func TestRaiseAndNotifyOneJournalWrite(t *testing.T) {
	cfg := loadConfig(t, stormYAML(0))
	tree, err := cfg.RouteTree()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	j, replay, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := notify.New(notify.Options{Tree: tree})
	c := newClock(dayTime)
	h, err := New(Options{Config: cfg, Journal: j, Replay: replay, Now: c.Now, Observers: []Observer{d}})
	if err != nil {
		t.Fatal(err)
	}
	h.SetRouter(d)
	d.Start(h, nil)
	w0, n0 := j.Writes.Load(), j.Appends.Load()
	r := h.HandleEvent("s", "gw", []byte(`{"v":1,"id":"p-1","device":"btn-a","dty":"0003","state":"pressed","ts":"2026-11-23T13:00:00Z"}`))
	if r.Code != event.ReplyOK {
		t.Fatalf("reply %+v", r)
	}
	if w, n := j.Writes.Load()-w0, j.Appends.Load()-n0; w != 1 || n != 2 {
		t.Fatalf("%d writes for %d transitions, want 1 write for the raise and its notify", w, n)
	}
	open := h.Alarms()
	if len(open) != 1 {
		t.Fatalf("%d alarms", len(open))
	}
	hist := open[0].History()
	if len(hist) != 2 || hist[0].Action != alarm.ActRaise || hist[1].Action != alarm.ActNotify || hist[1].Seq != hist[0].Seq+1 ||
		hist[0].EventID != "s/gw/p-1" {
		t.Fatalf("history %+v", hist)
	}
	d.Close()
	j.Close()

	j2, replay2, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	var acts []alarm.Action
	for _, tr := range replay2 {
		if tr.Alarm == open[0].ID {
			acts = append(acts, tr.Action)
		}
	}
	if len(acts) != 2 || acts[0] != alarm.ActRaise || acts[1] != alarm.ActNotify {
		t.Fatalf("journal holds %v for the alarm", acts)
	}
	h2, err := New(Options{Config: cfg, Journal: j2, Replay: replay2, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := h2.Alarm(open[0].ID)
	if !ok || len(a.History()) != 2 || a.History()[1].Receiver == "" || a.EventID != "s/gw/p-1" || a.History()[0].EventID != a.EventID {
		t.Fatalf("rebuilt %+v", a)
	}
}
