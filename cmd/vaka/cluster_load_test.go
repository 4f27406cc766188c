//go:build !nocluster

package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/testenv"
)

// ratePublisher is a gateway sending at a fixed rate with many events in
// flight (QoS 1), as a busy gateway does: every event is published when
// due, kept until the hub acknowledges it, and sent again, in order, on
// a new connection to whichever hub accepts when the connection is lost
// or an event waits too long.
type ratePublisher struct {
	t       *testing.T
	addrs   []string
	devices int

	c       paho.Client
	on      string
	flight  map[int]paho.Token // event → its publish in flight
	sentAt  map[int]time.Time  // first sent
	acked   map[int]time.Time
	resends int
	// progress is the last PUBACK or connect: a connection with events in
	// flight and no PUBACK for 10 s is given up (the hub is frozen or gone).
	progress time.Time
}

func (p *ratePublisher) connect() bool {
	for _, a := range p.addrs {
		o := paho.NewClientOptions().AddBroker("tcp://" + a).SetClientID("solrosen-avd-a").
			SetUsername("solrosen/avd-a").SetPassword("gw-secret").SetProtocolVersion(4).
			SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(500 * time.Millisecond).
			SetWriteTimeout(time.Second)
		c := paho.NewClient(o)
		if tok := c.Connect(); tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
			p.c, p.on = c, a
			return true
		}
	}
	return false
}

func (p *ratePublisher) payload(i int) string {
	return fmt.Sprintf(`{"v":1,"id":"ev-%d","device":"knapp-%d","dty":"0003","state":"pressed","ts":%q}`,
		i, i%p.devices, time.Now().UTC().Format(time.RFC3339Nano))
}

func (p *ratePublisher) publish(i int) {
	p.flight[i] = p.c.Publish(event.EventTopic("solrosen", "avd-a"), 1, false, p.payload(i))
	if _, ok := p.sentAt[i]; !ok {
		p.sentAt[i] = time.Now()
	}
}

// collect moves acknowledged events out of flight; it reports whether the
// connection must be given up: a publish failed, or no PUBACK came for
// 10 s while events were in flight (a slow hub still acknowledges some:
// giving it up would only resend its backlog to it again).
func (p *ratePublisher) collect() bool {
	broken := false
	for i, tok := range p.flight {
		select {
		case <-tok.Done():
			if tok.Error() == nil {
				p.acked[i] = time.Now()
				p.progress = p.acked[i]
				delete(p.flight, i)
			} else {
				broken = true
			}
		default:
		}
	}
	return broken || (len(p.flight) > 0 && time.Since(p.progress) > 10*time.Second)
}

// run sends events 0..n-1, event i due at start + i/rate, until every one
// is acknowledged or within passes after the last is due.
func (p *ratePublisher) run(n, rate int, within time.Duration, tick func(sent int)) bool {
	p.flight, p.sentAt, p.acked = map[int]paho.Token{}, map[int]time.Time{}, map[int]time.Time{}
	start := time.Now()
	next := 0
	deadline := start.Add(time.Duration(n)*time.Second/time.Duration(rate) + within)
	for len(p.acked) < n && time.Now().Before(deadline) {
		if p.c == nil || !p.c.IsConnectionOpen() {
			if p.c != nil {
				p.c.Disconnect(0)
			}
			p.c = nil
			if !p.connect() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			p.progress = time.Now()
			// A new connection (a new hub): everything not yet
			// acknowledged is sent again, in order.
			var pend []int
			for i := range p.flight {
				pend = append(pend, i)
			}
			slices.Sort(pend)
			for _, i := range pend {
				p.publish(i)
				p.resends++
			}
		}
		due := min(n, int(time.Since(start)*time.Duration(rate)/time.Second)+1)
		for ; next < due; next++ {
			p.publish(next)
		}
		tick(next)
		if p.collect() {
			p.c.Disconnect(0)
			p.c = nil
			continue
		}
		time.Sleep(2 * time.Millisecond)
	}
	if p.c != nil {
		p.c.Disconnect(50)
	}
	return len(p.acked) == n
}

// TestIntegrationClusterFailoverLoad: the redundant group under 1,000
// events/s (200 call buttons behind one gateway, each event a press: a
// raise, then repeats) while the active hub is SIGKILLed at random
// moments, VAKA_CLUSTER_LOAD_KILLS times (default 3; the figure is
// 10), each killed hub started again as a standby. Asserted: at most one
// hub active at any moment; every event acknowledged; in the replicated
// journal every acknowledged event exactly once (its raise or repeat) and
// each button's alarm raised exactly once; the hub active at the end
// lists one alarm per button.
func TestIntegrationClusterFailoverLoad(t *testing.T) {
	bin := buildVaka(t)
	_, urls := clusterNATS(t)
	kills := 3
	if v, err := strconv.Atoi(os.Getenv("VAKA_CLUSTER_LOAD_KILLS")); err == nil && v > 0 && v <= 30 {
		kills = v
	}
	const rate, devices = 1000, 200
	// About 4 s of events between kills, 4 s after the last.
	n := rate * 4 * (kills + 1)
	var hubs []*clusterHub
	for _, name := range []string{"hub-a", "hub-b", "hub-c"} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o750)
		h := &clusterHub{name: name, http: testenv.FreeAddr(t), mqtt: testenv.FreeAddr(t)}
		h.cfg = writeManyButtonsConfig(t, dir, filepath.Join(dir, "data"), h.http, h.mqtt, devices)
		f, err := os.OpenFile(h.cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "cluster:\n  node: %s\n  lease_ttl: 2s\n  nats:\n    urls: [%s, %s, %s]\n", name, urls[0], urls[1], urls[2])
		f.Close()
		h.start(t, bin)
		hubs = append(hubs, h)
	}
	activeHub(t, hubs, 60*time.Second)

	// The killer: every n/(kills+1) events, at a random moment, SIGKILL
	// the active hub, wait for the next, start the killed one again.
	var mu sync.Mutex
	sent := 0
	type killed struct {
		name     string
		at       time.Time
		takeover time.Duration
	}
	var done []killed
	stop := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 19))
		for k := 1; k <= kills; k++ {
			for {
				mu.Lock()
				s := sent
				mu.Unlock()
				if s >= k*n/(kills+1) {
					break
				}
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
			time.Sleep(time.Duration(rng.IntN(500_000)) * time.Microsecond)
			victim := activeHub(t, hubs, 30*time.Second)
			at := time.Now()
			victim.cmd.Process.Signal(syscall.SIGKILL)
			victim.cmd.Wait()
			next := activeHub(t, hubs, 30*time.Second)
			done = append(done, killed{victim.name, at, time.Since(at)})
			victim.start(t, bin)
			_ = next
		}
	}()
	p := &ratePublisher{t: t, addrs: []string{hubs[0].mqtt, hubs[1].mqtt, hubs[2].mqtt}, devices: devices}
	t0 := time.Now()
	ok := p.run(n, rate, 180*time.Second, func(s int) {
		mu.Lock()
		sent = s
		mu.Unlock()
	})
	close(stop)
	<-killerDone
	elapsed := time.Since(t0)
	if !ok {
		for _, h := range hubs {
			t.Logf("%s log tail:\n%s", h.name, tail(h.log.String(), 3000))
		}
		t.Fatalf("%d of %d events acknowledged", len(p.acked), n)
	}
	if len(done) != kills {
		t.Fatalf("%d kills made, want %d", len(done), kills)
	}
	var takeovers []time.Duration
	for i, k := range done {
		t.Logf("kill %d: %s SIGKILLed at %.1fs, next hub active after %s", i+1, k.name, k.at.Sub(t0).Seconds(), k.takeover.Round(time.Millisecond))
		takeovers = append(takeovers, k.takeover)
	}
	slices.Sort(takeovers)
	t.Logf("%d events at %d/s in %s (%d resent) with %d SIGKILLs; takeover median %s, worst %s",
		n, rate, elapsed.Round(time.Millisecond), p.resends, kills, takeovers[len(takeovers)/2].Round(time.Millisecond),
		takeovers[len(takeovers)-1].Round(time.Millisecond))

	// The journal: every acknowledged event exactly once, each button's
	// alarm raised once.
	events, raises := journalEvents(t, urls)
	for i := range n {
		k := fmt.Sprintf("solrosen/avd-a/ev-%d", i)
		if c := events[k]; c != 1 {
			t.Errorf("event %s in the journal %d times, want exactly once", k, c)
		}
	}
	for d := range devices {
		if c := raises[fmt.Sprintf("knapp-%d", d)]; c != 1 {
			t.Errorf("knapp-%d's alarm raised %d times, want once", d, c)
		}
	}
	active := activeHub(t, hubs, 30*time.Second)
	var list struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, "http://"+active.http+"/api/v1/alarms", "natt1", "natt1-secret", &list)
	byDevice := map[string]int{}
	for _, a := range list.Alarms {
		if a.EventID != "" {
			byDevice[a.Device]++
		}
	}
	if len(byDevice) != devices {
		t.Errorf("%s lists alarms for %d buttons, want %d", active.name, len(byDevice), devices)
	}
	for d, c := range byDevice {
		if c != 1 {
			t.Errorf("%s lists %d alarms for %s, want 1", active.name, c, d)
		}
	}
}

// journalEvents counts, in the replicated journal, the transitions
// carrying each event (raise or repeat) and the raises by device.
func journalEvents(t *testing.T, urls []string) (events, raises map[string]int) {
	t.Helper()
	events, raises = map[string]int{}, map[string]int{}
	forEachJournalTransition(t, urls, func(tr alarm.Transition) {
		if tr.EventID != "" && (tr.Action == alarm.ActRaise || tr.Action == alarm.ActRepeat) {
			events[tr.EventID]++
		}
		if tr.Action == alarm.ActRaise && tr.Raise != nil && tr.Raise.Device != "" {
			raises[tr.Raise.Device]++
		}
	})
	return events, raises
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
