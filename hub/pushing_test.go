package hub

import (
	"testing"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/notify"
)

// pushingHub builds a hub on cfg and journal j (replay: what j held at
// open) with a started notifier that routes by cfg's route tree and pushes
// to a pushLog, as the hub runs in production. The caller closes the
// notifier (before the journal).
func pushingHub(t testing.TB, cfg *Config, j Journal, replay []alarm.Transition) (*Hub, *notify.Dispatcher, *pushLog) {
	t.Helper()
	tree, err := cfg.RouteTree()
	if err != nil {
		t.Fatal(err)
	}
	pl := &pushLog{}
	d := notify.New(notify.Options{Tree: tree, Pusher: pl})
	h, err := New(Options{Config: cfg, Journal: j, Replay: replay, Observers: []Observer{d}})
	if err != nil {
		t.Fatal(err)
	}
	h.SetRouter(d)
	d.Start(h, nil)
	return h, d, pl
}
