package gateway

import (
	"os"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/record"
)

// gatedFile is a spool file whose fsync waits for the test, as a slow SD
// card's does.
type gatedFile struct {
	*os.File
	gate    chan struct{}
	entered chan struct{}
}

func (f *gatedFile) Sync() error {
	f.entered <- struct{}{}
	<-f.gate
	return f.File.Sync()
}

// While one event waits for its fsync, the gateway's lock is free: another
// driver's event is queued and the send loop can read the outbox. The
// waiting events then share one fsync, and each enqueue returns only after
// its event is on disk.
func TestSpoolFsyncHoldsUpNoOtherDriver(t *testing.T) {
	gate, entered := make(chan struct{}), make(chan struct{}, 16)
	old := openSpoolFile
	openSpoolFile = func(path string) (record.File, error) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &gatedFile{File: f, gate: gate, entered: entered}, nil
	}
	t.Cleanup(func() { openSpoolFile = old })
	g, err := New(Config{Site: "s1", ID: "gw1", Broker: Broker{URL: "tcp://127.0.0.1:1"}, Spool: &SpoolConfig{Dir: t.TempDir()}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := event.Event{Device: "gw1", Type: event.CommLink, Status: event.IPConnectionFailed}
	done := make(chan error, 3)
	go func() { _, _, err := g.enqueue(ev, nil); done <- err }()
	<-entered // the first event's fsync is under way, and hangs
	go func() { _, _, err := g.enqueue(ev, nil); done <- err }()
	go func() { _, _, err := g.enqueue(ev, nil); done <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for g.queued() != 3 { // g.queued takes g.mu
		if time.Now().After(deadline) {
			t.Fatalf("%d events queued while an fsync hung, want 3: the lock is held across the fsync", g.queued())
		}
		time.Sleep(time.Millisecond)
	}
	if _, ok := g.q.Front(); !ok {
		t.Fatal("outbox unreadable during an fsync")
	}
	select {
	case err := <-done:
		t.Fatalf("an enqueue returned before its fsync: %v", err)
	default:
	}
	gate <- struct{}{} // the first fsync completes
	<-entered          // the other two share the next
	gate <- struct{}{}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(entered); n != 0 {
		t.Errorf("%d extra fsyncs, want the waiters to share one", n)
	}
	close(gate)
	if err := g.q.(*Spool).Close(); err != nil {
		t.Fatal(err)
	}
}
