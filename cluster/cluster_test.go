package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
)

// freePorts reserves n loopback ports (listen on :0, close).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// startNATS starts a 3-node JetStream cluster on loopback, each node with
// its own store directory, and returns the nodes and their client URLs.
func startNATS(t testing.TB) ([]*Embedded, []string) {
	nodes, urls, _ := startNATSOpts(t)
	return nodes, urls
}

// startNATSOpts is startNATS that also returns each node's options, to
// start a stopped node again on its ports and data.
func startNATSOpts(t testing.TB) ([]*Embedded, []string, []EmbeddedOptions) {
	t.Helper()
	ports := freePorts(t, 6)
	dir := t.TempDir()
	var nodes []*Embedded
	var urls []string
	var opts []EmbeddedOptions
	for i := range 3 {
		var routes []string
		for k := range 3 {
			if k != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+k]))
			}
		}
		o := EmbeddedOptions{Name: fmt.Sprintf("n%d", i),
			Listen: fmt.Sprintf("127.0.0.1:%d", ports[i]), ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[3+i]),
			Routes: routes, ClusterName: "vaka-test", StoreDir: filepath.Join(dir, fmt.Sprint(i))}
		e, err := StartEmbedded(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		nodes = append(nodes, e)
		urls = append(urls, e.ClientURL())
		opts = append(opts, o)
	}
	return nodes, urls, opts
}

// TestIntegrationNoQuorumNoAck: with two of three NATS nodes gone no
// append is acknowledged (it fails within the append timeout, and is not
// taken for fencing); once they are back, appends are acknowledged again
// and everything acknowledged is in the stream, once.
func TestIntegrationNoQuorumNoAck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	nodes, urls, opts := startNATSOpts(t)
	// A renewal that timed out without quorum may still be committed
	// when the quorum returns, and the lease is then given up (safe, if
	// needless): a short TTL lets hub-b take it in time.
	a := connect(t, urls, "hub-a", 3*time.Second)
	la := acquire(t, a, 30*time.Second)
	defer la.Release()
	ja, _ := open(t, a, la)
	at := time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC)
	if err := ja.Append(raise("A000001", at)); err != nil {
		t.Fatal(err)
	}
	nodes[1].Close()
	nodes[2].Close()
	t0 := time.Now()
	err := ja.Append(raise("A000002", at))
	if err == nil {
		t.Fatal("append acknowledged with one NATS node of three")
	}
	if errors.Is(err, ErrDeposed) {
		t.Fatalf("no quorum taken for another hub: %v", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("a failed append took %s", d)
	}
	t.Logf("append without quorum failed after %s: %v", time.Since(t0).Round(time.Millisecond), err)
	for _, i := range []int{1, 2} {
		e, err := StartEmbedded(opts[i])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
	}
	var ok bool
	var last error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		tr := raise("A000002", at)
		if last = ja.Append(tr); last == nil {
			ok = true
			break
		}
		if errors.Is(last, ErrDeposed) {
			t.Fatalf("after the quorum came back: %v", last)
		}
	}
	if !ok {
		t.Fatalf("no append acknowledged within 60 s of the quorum's return: %v", last)
	}
	// The stream holds the term record and each acknowledged raise once:
	// a second hub's replay sees exactly A000001 and A000002.
	la.Release()
	b := connect(t, urls, "hub-b", 3*time.Second)
	lb := acquire(t, b, 30*time.Second)
	defer lb.Release()
	_, replayed := open(t, b, lb)
	var ids []string
	for _, tr := range replayed {
		ids = append(ids, tr.Alarm)
	}
	if fmt.Sprint(ids) != "[A000001 A000002]" {
		t.Fatalf("replayed %v, want [A000001 A000002]", ids)
	}
}

func connect(t testing.TB, urls []string, node string, ttl time.Duration) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Connect(ctx, Options{Node: node, URLs: urls, Replicas: 3, LeaseTTL: ttl, Stream: "VAKA_TEST"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func acquire(t testing.TB, n *Node, within time.Duration) *Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	l, err := n.Acquire(ctx)
	if err != nil {
		t.Fatalf("%s: lease not taken within %s: %v", n.opts.Node, within, err)
	}
	return l
}

func open(t testing.TB, n *Node, l *Lease) (*Journal, []alarm.Transition) {
	t.Helper()
	var ts []alarm.Transition
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := n.OpenJournal(ctx, l, func(t alarm.Transition) { ts = append(ts, t) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return j, ts
}

func raise(id string, at time.Time) *alarm.Transition {
	a := alarm.New(id, at)
	a.Kind, a.Rule, a.Site = alarm.KindCall, "call", "s1"
	return &alarm.Transition{Alarm: id, Action: alarm.ActRaise, At: at, By: "rule:call", Raise: a}
}

// TestIntegrationJournalFailover runs a real 3-node JetStream cluster on
// loopback: the active hub's appends survive one NATS node's loss, a
// standby cannot take the lease while it is renewed, takes it at once
// when released, replays exactly what was acknowledged (transitions and
// supervision records, not the term records), and the former active hub's
// next append is refused (fencing) instead of being written after the new
// hub's term.
func TestIntegrationJournalFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	nodes, urls := startNATS(t)
	a := connect(t, urls, "hub-a", 2*time.Second)
	la := acquire(t, a, 30*time.Second)
	ja, replayed := open(t, a, la)
	if len(replayed) != 0 {
		t.Fatalf("a fresh stream replayed %d transitions", len(replayed))
	}
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	var acked []uint64
	for i := range 20 {
		tr := raise(fmt.Sprintf("A%06d", i+1), at)
		if err := ja.Append(tr); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if tr.Rec != int64(tr.Seq) || tr.Seq == 0 {
			t.Fatalf("append %d: seq %d rec %d", i, tr.Seq, tr.Rec)
		}
		acked = append(acked, tr.Seq)
		if i == 9 {
			// One of three NATS nodes gone: a quorum of two still acks.
			nodes[2].Close()
		}
	}
	// A night's look-ins: sent in chunks, every one kept, in order.
	const looks = 600
	items := make([]store.RecordItem, looks)
	for i := range items {
		items[i] = store.RecordItem{At: at.Add(time.Duration(i) * time.Second), Body: map[string]int{"i": i}}
	}
	if err := ja.AppendRecords("tillsyn", items); err != nil {
		t.Fatal(err)
	}
	// An alarm after them follows them in the stream.
	tr := raise("A000099", at)
	if err := ja.Append(tr); err != nil {
		t.Fatal(err)
	}
	if last, _ := unpos(acked[len(acked)-1]); tr.Seq != pos(last+3, 0) {
		want := pos(last+3, 0)
		// 600 records are two messages (512 a message), then this one.
		t.Fatalf("transition after %d records at seq %d, want %d", looks, tr.Seq, want)
	}
	acked = append(acked, tr.Seq)
	if err := ja.SaveState("silences.json", []byte(`[{"id":"S1"}]`)); err != nil {
		t.Fatal(err)
	}
	got, err := ja.Read([]int64{int64(acked[3])})
	if err != nil || len(got) != 1 || got[0].Alarm != "A000004" {
		t.Fatalf("read back: %v %+v", err, got)
	}

	b := connect(t, urls[:2], "hub-b", 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if _, err := b.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("standby took a lease being renewed: %v", err)
	}
	cancel()
	select {
	case <-la.Lost():
		t.Fatal("active hub's lease lost while it renewed it")
	default:
	}
	la.Release()
	t0 := time.Now()
	lb := acquire(t, b, 5*time.Second)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("a released lease took %s to take", d)
	}
	if lb.Term <= la.Term {
		t.Fatalf("new term %d not above old %d", lb.Term, la.Term)
	}
	jb, replayed := open(t, b, lb)
	if len(replayed) != len(acked) {
		t.Fatalf("standby replayed %d transitions, %d were acknowledged", len(replayed), len(acked))
	}
	for i, tr := range replayed {
		want := fmt.Sprintf("A%06d", i+1)
		if i == len(acked)-1 {
			want = "A000099"
		}
		if tr.Seq != acked[i] || tr.Alarm != want || tr.Raise == nil {
			t.Fatalf("replayed %d: %+v", i, tr)
		}
	}
	recs := jb.Records()
	if len(recs) != looks {
		t.Fatalf("%d records replayed, %d written", len(recs), looks)
	}
	for i, r := range recs {
		if r.Type != "tillsyn" || string(r.Body) != fmt.Sprintf(`{"i":%d}`, i) || (i > 0 && r.Seq < recs[i-1].Seq) {
			t.Fatalf("record %d replayed as %+v", i, r)
		}
	}
	if st, ok := jb.State("silences.json"); !ok || string(st) != `[{"id":"S1"}]` {
		t.Fatalf("silences replayed: %q %v", st, ok)
	}
	// The former active hub is fenced: its records and its append are
	// refused by the stream, not written after the new term.
	if err := ja.AppendRecords("tillsyn", items[:3]); !errors.Is(err, ErrDeposed) {
		t.Fatalf("deposed hub's records: %v", err)
	}
	if err := ja.Append(raise("A999999", at)); !errors.Is(err, ErrDeposed) {
		t.Fatalf("deposed hub's append: %v", err)
	}
	select {
	case <-ja.Deposed():
	default:
		t.Fatal("Deposed not closed")
	}
	if err := jb.Append(raise("A000021", at)); err != nil {
		t.Fatalf("new active hub's append: %v", err)
	}
	lb.Release()
}

// TestIntegrationLeaseExpiry: an active hub that stops renewing (frozen,
// its machine gone) loses the lease to a standby after the TTL, and its
// own renewal then reports the lease lost.
func TestIntegrationLeaseExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	a := connect(t, urls, "hub-a", time.Second)
	la := acquire(t, a, 30*time.Second)
	ja, _ := open(t, a, la)
	// Freeze a's renewal (as SIGSTOP would) without releasing the lease.
	close(la.stop)
	<-la.done
	b := connect(t, urls, "hub-b", time.Second)
	t0 := time.Now()
	lb := acquire(t, b, 10*time.Second)
	d := time.Since(t0)
	if d < 900*time.Millisecond {
		t.Fatalf("lease taken after %s, before its TTL", d)
	}
	t.Logf("lease taken over %s after the active hub stopped renewing (TTL 1s)", d)
	jb, _ := open(t, b, lb)
	if err := ja.Append(raise("A000001", time.Now())); !errors.Is(err, ErrDeposed) {
		t.Fatalf("frozen hub's append after takeover: %v", err)
	}
	if err := jb.Append(raise("A000001", time.Now())); err != nil {
		t.Fatal(err)
	}
	lb.Release()
}

// BenchmarkJournalAppend: one alarm transition appended and acknowledged
// by a quorum of a 3-node JetStream cluster on loopback, as the hub does
// under its lock for each transition (no batching). Reports the time per
// append; the CPU is the benchmark's and all three NATS servers' (one
// process). Run: go test -run '^$' -bench JournalAppend -benchtime 2000x ./cluster/
func BenchmarkJournalAppend(b *testing.B) {
	_, urls := startNATS(b)
	n := connect(b, urls, "hub-a", 5*time.Second)
	l := acquire(b, n, 30*time.Second)
	defer l.Release()
	j, _ := open(b, n, l)
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	tr := raise("A000001", at)
	tr.Raise.Note = "benchmark"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		t := *tr
		t.Alarm = fmt.Sprintf("A%06d", i)
		if err := j.Append(&t); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkJournalReplay: how long a standby taking over spends reading
// the stream back (OpenJournal: fetch, decode, hand each transition on),
// per record, for a journal of VAKA_REPLAY_N transitions (default 5,000)
// on a 3-node cluster on loopback. A takeover is the lease TTL plus this
// times the journal's length plus the hub's own rebuild.
// Run: go test -run '^$' -bench JournalReplay -benchtime 3x ./cluster/
func BenchmarkJournalReplay(b *testing.B) {
	n := 5000
	if s := os.Getenv("VAKA_REPLAY_N"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 {
			n = v
		}
	}
	_, urls := startNATS(b)
	a := connect(b, urls, "hub-a", 30*time.Second)
	la := acquire(b, a, 30*time.Second)
	ja, _ := open(b, a, la)
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	for i := range n {
		if err := ja.Append(raise(fmt.Sprintf("A%06d", i), at)); err != nil {
			b.Fatal(err)
		}
	}
	la.Release()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		node := connect(b, urls, fmt.Sprintf("hub-%d", i), 30*time.Second)
		l := acquire(b, node, 30*time.Second)
		t0 := time.Now()
		got := 0
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if _, err := node.OpenJournal(ctx, l, func(alarm.Transition) { got++ }, nil); err != nil {
			b.Fatal(err)
		}
		cancel()
		d := time.Since(t0)
		l.Release()
		if got != n {
			b.Fatalf("replayed %d of %d", got, n)
		}
		b.ReportMetric(float64(d.Microseconds())/float64(n), "µs/record")
	}
}

// TestIntegrationStandbyFollows: a standby following the stream hands on
// every transition the active hub writes, as it writes them; at takeover
// it reads only the rest, and what it handed on over both is exactly what
// was acknowledged, once each, in order.
func TestIntegrationStandbyFollows(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	a := connect(t, urls, "hub-a", 5*time.Second)
	la := acquire(t, a, 30*time.Second)
	ja, _ := open(t, a, la)
	at := time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)
	var acked []string
	appendN := func(n int) {
		for range n {
			id := fmt.Sprintf("A%06d", len(acked)+1)
			if err := ja.Append(raise(id, at)); err != nil {
				t.Fatal(err)
			}
			acked = append(acked, id)
		}
	}
	appendN(50)
	b := connect(t, urls, "hub-b", 5*time.Second)
	var mu sync.Mutex
	var got []alarm.Transition
	each := func(tr alarm.Transition) {
		mu.Lock()
		got = append(got, tr)
		mu.Unlock()
	}
	f := b.Follow(each)
	appendN(50)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	for deadline := time.Now().Add(10 * time.Second); count() < 100 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := count(); n != 100 {
		t.Fatalf("the standby followed %d of 100 transitions within 10 s", n)
	}
	appendN(3)
	la.Release()
	lb := acquire(t, b, 5*time.Second)
	defer lb.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jb, err := b.OpenJournal(ctx, lb, each, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(acked) {
		t.Fatalf("handed on %d transitions, %d acknowledged", len(got), len(acked))
	}
	for i, tr := range got {
		if tr.Alarm != acked[i] || (i > 0 && tr.Seq <= got[i-1].Seq) {
			t.Fatalf("transition %d: %s seq %d, want %s after seq %d", i, tr.Alarm, tr.Seq, acked[i], got[max(i-1, 0)].Seq)
		}
	}
	if err := ja.Append(raise("A999999", at)); !errors.Is(err, ErrDeposed) {
		t.Fatalf("former hub's append: %v", err)
	}
	if err := jb.Append(raise("A000104", at)); err != nil {
		t.Fatal(err)
	}
}
