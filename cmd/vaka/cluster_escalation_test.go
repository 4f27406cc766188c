//go:build !nocluster

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/notify"
)

// webhookCount is a webhook receiver on loopback (an alarm centre's, a
// staff pager gateway's) that counts what it is sent, by alarm and tier.
type webhookCount struct {
	mu  sync.Mutex
	got map[string]int // "A000001/1" → posts
	all int
}

func (w *webhookCount) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var b notify.WebhookBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		http.Error(rw, err.Error(), 400)
		return
	}
	w.mu.Lock()
	w.got[fmt.Sprintf("%s/%d", b.Message.Alarm, b.Message.Tier)]++
	w.all++
	w.mu.Unlock()
	rw.WriteHeader(http.StatusNoContent)
}

func (w *webhookCount) snapshot() (map[string]int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.got))
	for k, v := range w.got {
		out[k] = v
	}
	return out, w.all
}

// TestIntegrationClusterEscalationOnce: no escalation step sent twice
// across a failover. Three `vaka hub` processes on a 3-node NATS cluster
// route every alarm to a webhook tier, escalating to a second and a third
// after 5 s each without acceptance. While those escalations are in
// flight the active hub is SIGKILLed, then frozen with SIGSTOP (and woken
// after another took over: its timers fire at once, and its appends are
// refused), then SIGKILLed again. Asserted at the receiver: no (alarm,
// tier) posted twice, nothing posted that the replicated journal does not
// hold as a step, each tier reached, and in the journal each step at most
// once per alarm and every alarm escalated to its last tier.
func TestIntegrationClusterEscalationOnce(t *testing.T) {
	bin := buildVaka(t)
	_, urls := clusterNATS(t)
	recv := &webhookCount{got: map[string]int{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	const presses = 12
	var hubs []*clusterHub
	for _, name := range []string{"hub-a", "hub-b", "hub-c"} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o750)
		h := &clusterHub{name: name, http: testenv.FreeAddr(t), mqtt: testenv.FreeAddr(t)}
		h.cfg = writeManyButtonsConfig(t, dir, filepath.Join(dir, "data"), h.http, h.mqtt, presses)
		f, err := os.OpenFile(h.cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, `routing:
  receivers:
    - {name: t0, webhook: {url: "%[1]s/t0", timeout: 2s, max_retries: 1}}
    - {name: t1, webhook: {url: "%[1]s/t1", timeout: 2s, max_retries: 1}}
    - {name: t2, webhook: {url: "%[1]s/t2", timeout: 2s, max_retries: 1}}
  route: {receiver: t0, escalate: [t1, t2], accept_timeout: 5s, remind_every: 0s}
cluster:
  node: %[2]s
  lease_ttl: 2s
  nats:
    urls: [%[3]s]
`, srv.URL, name, strings.Join(urls, ", "))
		f.Close()
		h.start(t, bin)
		hubs = append(hubs, h)
	}
	activeHub(t, hubs, 60*time.Second)
	p := &failoverPublisher{t: t, addrs: []string{hubs[0].mqtt, hubs[1].mqtt, hubs[2].mqtt}}
	t0 := time.Now()
	disrupt := map[int]string{4: "SIGKILL", 8: "SIGSTOP", 11: "SIGKILL"}
	var frozen *clusterHub
	for i := range presses {
		if sig, ok := disrupt[i]; ok {
			victim := activeHub(t, hubs, 30*time.Second)
			at := time.Now()
			if sig == "SIGKILL" {
				victim.cmd.Process.Signal(syscall.SIGKILL)
				victim.cmd.Wait()
			} else {
				victim.cmd.Process.Signal(syscall.SIGSTOP)
				frozen = victim
			}
			var rest []*clusterHub
			for _, h := range hubs {
				if h != victim {
					rest = append(rest, h)
				}
			}
			next := activeHub(t, rest, 30*time.Second)
			t.Logf("%.1fs: %s %s; %s active after %s", at.Sub(t0).Seconds(), victim.name, sig, next.name, time.Since(at).Round(time.Millisecond))
			if sig == "SIGSTOP" {
				// Woken while its escalation timers are overdue: it must
				// alert nobody (its appends are refused) and exit.
				victim.cmd.Process.Signal(syscall.SIGCONT)
				done := make(chan error, 1)
				go func() { done <- victim.cmd.Wait() }()
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					t.Fatalf("woken %s still runs 20 s after another took over; log:\n%s", victim.name, victim.log.String())
				}
				frozen = nil
			}
			victim.start(t, bin) // back, as a standby
		}
		if _, ok := p.send(i, 60*time.Second); !ok {
			for _, h := range hubs {
				t.Logf("%s log:\n%s", h.name, h.log.String())
			}
			t.Fatalf("press %d not acknowledged within 60 s", i)
		}
		time.Sleep(time.Duration(400+40*i) * time.Millisecond)
	}
	_ = frozen
	if p.c != nil {
		p.c.Disconnect(50)
	}
	// The last escalation falls due 10 s after the last press.
	active := activeHub(t, hubs, 30*time.Second)
	steps := map[string]int{}
	for end := time.Now().Add(40 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		steps = journalSteps(t, urls)
		done := 0
		for k := range steps {
			if strings.HasSuffix(k, "/2") {
				done++
			}
		}
		if done >= presses {
			break
		}
	}
	time.Sleep(time.Second) // posts of the last steps
	got, all := recv.snapshot()
	t.Logf("%d webhook posts for %d journaled steps, active %s", all, len(steps), active.name)
	perTier := map[string]int{}
	for k, n := range got {
		if n > 1 {
			t.Errorf("%s posted %d times, want at most once", k, n)
		}
		if steps[k] == 0 {
			t.Errorf("%s posted but not journaled as a step", k)
		}
		perTier[k[strings.IndexByte(k, '/'):]]++
	}
	for k, n := range steps {
		if n != 1 {
			t.Errorf("%s journaled %d times, want once", k, n)
		}
		if got[k] == 0 {
			t.Logf("%s journaled, not posted (its hub killed between the two)", k)
		}
	}
	var list struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, "http://"+active.http+"/api/v1/alarms", "natt1", "natt1-secret", &list)
	pressAlarms := 0
	for _, a := range list.Alarms {
		if a.EventID == "" {
			continue
		}
		pressAlarms++
		if steps[a.ID+"/2"] != 1 {
			t.Errorf("alarm %s (%s): last tier journaled %d times, want once", a.ID, a.EventID, steps[a.ID+"/2"])
		}
	}
	if pressAlarms != presses {
		t.Errorf("%d alarms from presses, want %d", pressAlarms, presses)
	}
	for _, tier := range []string{"/0", "/1", "/2"} {
		if perTier[tier] == 0 {
			t.Errorf("no post at all for tier %s", tier)
		}
	}
}

// journalSteps counts the notify and escalate steps in the replicated
// journal by "alarm/tier".
func journalSteps(t *testing.T, urls []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	forEachJournalTransition(t, urls, func(tr alarm.Transition) {
		if tr.Action == alarm.ActNotify || tr.Action == alarm.ActEscalate {
			out[fmt.Sprintf("%s/%d", tr.Alarm, tr.Tier)]++
		}
	})
	return out
}

// forEachJournalTransition reads the whole journal stream and hands each
// transition in it to each, in order.
func forEachJournalTransition(t *testing.T, urls []string, each func(alarm.Transition)) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "VAKA_JOURNAL")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, "VAKA_JOURNAL", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var read uint64
	for tries := 0; read < info.State.Msgs && tries < 2000; tries++ {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			read++
			for _, tr := range decodeTransitions(m.Data()) {
				each(tr)
			}
		}
	}
	if read < info.State.Msgs { // more may have come meanwhile
		t.Fatalf("read %d of %d journal messages", read, info.State.Msgs)
	}
}

// decodeTransitions reads a journal message: one transition, or (a batch,
// cluster.Journal.AppendAll) a JSON array of them.
func decodeTransitions(b []byte) []alarm.Transition {
	if len(b) > 0 && b[0] == '[' {
		var ts []alarm.Transition
		_ = json.Unmarshal(b, &ts)
		return ts
	}
	var tr alarm.Transition
	if json.Unmarshal(b, &tr) != nil {
		return nil
	}
	return []alarm.Transition{tr}
}
