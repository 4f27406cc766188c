package hub

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/scaip"
	"github.com/vaka-care/vaka/store"
)

// slowDisk is the local journal with sync_each_write whose fsync does not
// start until the test lets it (a slow disk, the only fake here): the
// records, the offsets and the fsync itself are the real file's.
type slowDisk struct {
	*store.Journal
	gate  chan struct{} // closed: fsyncs may run
	calls atomic.Int64  // SyncTo calls (each may or may not fsync)
	fail  atomic.Bool   // fail the fsync instead
}

func (d *slowDisk) SyncTo(end int64) error {
	d.calls.Add(1)
	<-d.gate
	if d.fail.Load() {
		return errors.New("fsync: input/output error")
	}
	return d.Journal.SyncTo(end)
}

func slowDiskHub(t *testing.T) (*Hub, *prometheus.Registry, *slowDisk) {
	return slowDiskHubYAML(t, scaipYAML)
}

func slowDiskHubYAML(t *testing.T, yaml string) (*Hub, *prometheus.Registry, *slowDisk) {
	t.Helper()
	j, replay, err := store.Open(t.TempDir(), store.Options{SyncEachWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	d := &slowDisk{Journal: j, gate: make(chan struct{})}
	reg := prometheus.NewRegistry()
	h, err := New(Options{Config: loadConfig(t, yaml), Journal: d, Replay: replay, Now: newClock(dayTime).Now, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RegisterSCAIPMetrics(reg); err != nil {
		t.Fatal(err)
	}
	return h, reg, d
}

// answers collects HandleSCAIPAsync's answers.
type answers struct {
	mu  sync.Mutex
	got map[string]scaip.Response
	c   chan struct{}
}

func newAnswers() *answers {
	return &answers{got: map[string]scaip.Response{}, c: make(chan struct{}, 16)}
}

func (a *answers) fn(ref string) func(scaip.Response) {
	return func(r scaip.Response) {
		a.mu.Lock()
		if _, dup := a.got[ref]; dup {
			panic("answered twice: " + ref)
		}
		a.got[ref] = r
		a.mu.Unlock()
		a.c <- struct{}{}
	}
}

func (a *answers) n() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.got)
}

func (a *answers) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for a.n() < n {
		select {
		case <-a.c:
		case <-deadline:
			t.Fatalf("%d of %d answers within 5 s", a.n(), n)
		}
	}
}

// With sync_each_write the receiver's read loop is not held by the fsync:
// HandleSCAIPAsync returns while the fsync of its alarm has not even
// started, a second unit's alarm is taken meanwhile, the alarms are shown
// at once, and snu 0 comes only after the fsync, one fsync for both.
func TestSCAIPSyncEachWriteGroupCommit(t *testing.T) {
	h, _, d := slowDiskHub(t)
	syncs0 := d.Stats().Syncs
	as := newAnswers()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.HandleSCAIPAsync("unit678", mrq(`<ref>A1</ref><cid>678</cid><dty>0003</dty>`), as.fn("A1"))
		h.HandleSCAIPAsync("other", mrq(`<ref>B1</ref><cid>999</cid><dty>0003</dty>`), as.fn("B1"))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("HandleSCAIPAsync waited for the fsync: the read loop would take no message meanwhile")
	}
	if as.n() != 0 {
		t.Fatalf("answered before the fsync: %+v", as.got)
	}
	if openCall(h, "scaip-678") == nil || openCall(h, "scaip-999") == nil {
		t.Fatal("the alarms are not shown before their fsync")
	}
	if n := d.Stats().Syncs - syncs0; n != 0 {
		t.Fatalf("%d fsyncs before the disk was let go", n)
	}
	close(d.gate)
	as.wait(t, 2)
	wantSNU(t, as.got["A1"], "A1", scaip.OK)
	wantSNU(t, as.got["B1"], "B1", scaip.OK)
	// Both were written before the first fsync ran: it covered both.
	if n := d.Stats().Syncs - syncs0; n != 1 {
		t.Fatalf("%d fsyncs for two alarms in flight at once, want 1 (shared)", n)
	}
	// The synchronous entry point waits for its own fsync.
	wantSNU(t, h.HandleSCAIP("unit678", mrq(`<ref>A2</ref><cid>678</cid><did>2</did><dty>0005</dty>`)), "A2", scaip.OK)
	if n := d.Stats().Syncs - syncs0; n != 2 {
		t.Fatalf("HandleSCAIP returned snu 0 with %d fsyncs, want 2", n)
	}
}

// A failed fsync turns snu 0 into 6 (busy: the unit sends again), counted.
func TestSCAIPSyncEachWriteFsyncFails(t *testing.T) {
	h, reg, d := slowDiskHub(t)
	d.fail.Store(true)
	close(d.gate)
	as := newAnswers()
	h.HandleSCAIPAsync("unit678", mrq(`<ref>F1</ref><cid>678</cid><dty>0003</dty>`), as.fn("F1"))
	as.wait(t, 1)
	wantSNU(t, as.got["F1"], "F1", scaip.Busy)
	if as.got["F1"].Ste == "" {
		t.Fatal("busy without a reason")
	}
	if n := counter(t, reg, "vaka_scaip_messages_total", "result", "fsync_failed"); n != 1 {
		t.Fatalf("fsync_failed counted %v times", n)
	}
	// The unit resends it: not evaluated again, but not answered 0 until
	// an fsync has worked (busy while the disk still fails).
	h.HandleSCAIPAsync("unit678", mrq(`<ref>F1</ref><cid>678</cid><dty>0003</dty>`), as.fn("F1 again"))
	as.wait(t, 2)
	wantSNU(t, as.got["F1 again"], "F1", scaip.Busy)
	d.fail.Store(false)
	syncs := d.Stats().Syncs
	h.HandleSCAIPAsync("unit678", mrq(`<ref>F1</ref><cid>678</cid><dty>0003</dty>`), as.fn("F1 third"))
	as.wait(t, 3)
	wantSNU(t, as.got["F1 third"], "F1", scaip.OK)
	if d.Stats().Syncs == syncs {
		t.Fatal("the resend was answered 0 without an fsync after the failed one")
	}
	if n := len(h.Alarms()); n != 1 {
		t.Fatalf("%d alarms: the resends were evaluated again", n)
	}
	// A message that journals nothing (a test transmission) needs no fsync.
	calls := d.calls.Load()
	h.HandleSCAIPAsync("unit678", mrq(`<ref>T1</ref><cid>678</cid><dty>0003</dty><stc>0102</stc>`), as.fn("T1"))
	as.wait(t, 4)
	wantSNU(t, as.got["T1"], "T1", scaip.OK)
	if d.calls.Load() != calls {
		t.Fatal("a message that wrote nothing waited for an fsync")
	}
}

// Without sync_each_write nothing waits: the answer comes before
// HandleSCAIPAsync returns, from the caller's own goroutine.
func TestSCAIPAsyncWithoutSyncEachWrite(t *testing.T) {
	h, _, _ := scaipHub(t, t.TempDir(), newClock(dayTime))
	var got *scaip.Response
	h.HandleSCAIPAsync("unit678", mrq(`<ref>N1</ref><cid>678</cid><dty>0003</dty>`), func(r scaip.Response) { got = &r })
	if got == nil {
		t.Fatal("not answered at once")
	}
	wantSNU(t, *got, "N1", scaip.OK)
}

// The MQTT path: an event's PUBACK (HandleEvent returning OK) waits for
// the fsync, but outside the hub's lock, so a second gateway's event is
// evaluated and shown meanwhile, and the two share one fsync.
func TestMQTTSyncEachWriteWaitsOutsideLock(t *testing.T) {
	h, _, d := slowDiskHubYAML(t, hubYAML)
	syncs0 := d.Stats().Syncs
	now := dayTime
	replies := make(chan event.Reply, 2)
	shown := func(device string) bool {
		for _, a := range h.Alarms() {
			if a.Device == device && a.Open() {
				return true
			}
		}
		return false
	}
	waitShown := func(device string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !shown(device); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s's alarm not shown within 5 s", device)
			}
		}
	}
	go func() { replies <- h.HandleEvent("s", "gw", press("m1", now)) }()
	waitShown("btn-a")
	go func() { replies <- h.HandleEvent("s", "gw", evPayload("m2", "fall-a", "0005", "", "0009", now)) }()
	waitShown("fall-a") // taken while the first event waits for its fsync: the lock is free
	select {
	case r := <-replies:
		t.Fatalf("acknowledged before the fsync: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	close(d.gate)
	for range 2 {
		select {
		case r := <-replies:
			if r.Code != event.ReplyOK {
				t.Fatalf("reply %+v", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no reply within 5 s of the fsync")
		}
	}
	if n := d.Stats().Syncs - syncs0; n != 1 {
		t.Fatalf("%d fsyncs for two events waiting at once, want 1", n)
	}
}
