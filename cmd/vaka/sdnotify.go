package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells systemd (Type=notify, WatchdogSec=) how the service is.
// Outside systemd (no $NOTIFY_SOCKET) every call does nothing, so the demo
// and tests run unchanged.
type notifier struct {
	log *slog.Logger
	// send is daemon.SdNotify; a test swaps it for a recorder.
	send func(unsetEnv bool, state string) (bool, error)
	// interval is how often WATCHDOG=1 goes out: half of WatchdogSec, as
	// sd_watchdog_enabled(3) advises; 0 when systemd set no watchdog.
	interval time.Duration
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log, send: daemon.SdNotify}
	if d, err := daemon.SdWatchdogEnabled(false); err != nil {
		log.Warn("systemd watchdog settings unreadable; not feeding it", "err", err)
	} else if d > 0 {
		n.interval = d / 2
	}
	return n
}

// ready says READY=1: call it once the service listens.
func (n *notifier) ready() { n.notify(daemon.SdNotifyReady) }

// stopping says STOPPING=1, so systemd does not count the stop as a hang.
func (n *notifier) stopping() { n.notify(daemon.SdNotifyStopping) }

func (n *notifier) notify(state string) {
	if _, err := n.send(false, state); err != nil {
		n.log.Warn("systemd notify failed", "state", state, "err", err)
	}
}

// watchdog sends WATCHDOG=1 every interval while alive answers within the
// interval. alive must take the lock that the main loop holds (the hub's
// state lock, the gateway's queue lock): a deadlocked or wedged loop never
// answers, the pings stop, and systemd kills and restarts the service after
// WatchdogSec. A probe still running when the next tick comes is not
// started twice. Returns when ctx ends.
func (n *notifier) watchdog(ctx context.Context, alive func()) {
	if n.interval <= 0 {
		return
	}
	t := time.NewTicker(n.interval)
	defer t.Stop()
	var pending chan struct{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if pending == nil {
			pending = make(chan struct{})
			go func(done chan struct{}) { alive(); close(done) }(pending)
		}
		select {
		case <-pending:
			pending = nil
			n.notify(daemon.SdNotifyWatchdog)
		case <-time.After(n.interval / 2):
			n.log.Error("main loop did not answer the watchdog probe; not feeding systemd's watchdog", "waited", n.interval/2)
		case <-ctx.Done():
			return
		}
	}
}
