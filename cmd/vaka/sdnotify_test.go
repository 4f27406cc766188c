package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/internal/testenv"
)

// notifySocket listens where a service would find $NOTIFY_SOCKET and
// delivers each datagram on the channel.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			select {
			case ch <- string(buf[:n]):
			default:
			}
		}
	}()
	return path, ch
}

func nextNotify(t *testing.T, ch <-chan string, want string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-ch:
			if strings.Contains(m, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s from the service within %v", want, d)
		}
	}
}

// The real hub, run as systemd runs a Type=notify unit with WatchdogSec,
// says READY=1 only once its web server answers, feeds the watchdog, and
// says STOPPING=1 on SIGTERM.
func TestIntegrationHubNotifiesSystemd(t *testing.T) {
	bin := buildVaka(t)
	dir := t.TempDir()
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg := writeHubConfig(t, dir, httpAddr, mqttAddr)
	sock, ch := notifySocket(t)

	cmd := exec.Command(bin, "hub", "--config", cfg)
	// WATCHDOG_USEC=400ms: pings every 200 ms.
	cmd.Env = append(cmd.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	startProcess(t, cmd)
	nextNotify(t, ch, "READY=1", 10*time.Second)
	// READY means listening: the web server answers at once.
	resp, err := http.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatalf("READY=1 sent but the web server does not answer: %v\n%s", err, logs.String())
	}
	resp.Body.Close()
	for i := 0; i < 3; i++ {
		nextNotify(t, ch, "WATCHDOG=1", 2*time.Second)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	nextNotify(t, ch, "STOPPING=1", 10*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("hub exit: %v\n%s", err, logs.String())
	}
}

// A main loop that stops answering stops the watchdog pings, so systemd
// kills and restarts the service; when it answers again the pings resume.
func TestWatchdogStopsWhileMainLoopHangs(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	n := &notifier{log: slog.New(slog.NewTextHandler(io.Discard, nil)), interval: 20 * time.Millisecond,
		send: func(_ bool, state string) (bool, error) {
			mu.Lock()
			sent = append(sent, state)
			mu.Unlock()
			return true, nil
		}}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(sent) }
	var loop sync.Mutex // stands for the hub's state lock
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	//lint:ignore SA2001 taking and releasing the lock is the liveness probe: it blocks while the test holds it
	go func() { n.watchdog(ctx, func() { loop.Lock(); loop.Unlock() }); close(done) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for i := 0; i < 200 && !ok(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if !ok() {
			t.Fatalf("%s within 2 s", what)
		}
	}
	waitFor("3 pings from a healthy loop", func() bool { return count() >= 3 })

	loop.Lock() // the main loop hangs holding its lock
	time.Sleep(60 * time.Millisecond)
	hung := count()
	time.Sleep(200 * time.Millisecond) // ten intervals
	if got := count(); got != hung {
		t.Fatalf("watchdog fed %d times while the main loop hung", got-hung)
	}
	loop.Unlock()
	waitFor("pings again after the loop recovered", func() bool { return count() > hung+1 })
	cancel()
	<-done
	for _, s := range sent {
		if s != "WATCHDOG=1" {
			t.Fatalf("unexpected state %q", s)
		}
	}
}
