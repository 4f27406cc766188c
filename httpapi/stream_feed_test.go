package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/feed"
	"github.com/vaka-care/vaka/internal/testenv"
)

type atomicCount struct{ n atomic.Int64 }

func (c *atomicCount) Add(f float64) { c.n.Add(int64(f)) }

// feedAlarms is an Alarms with a Feeder: each stream gets a real feed
// queue, handed to the test on queues.
type feedAlarms struct {
	queuedAlarms
	c      feed.Counters
	queues chan *feed.Queue
}

func (f *feedAlarms) Feed() (*feed.Queue, func()) {
	q := feed.New(feed.Options{Counters: f.c})
	f.queues <- q
	return q, q.Close
}

// smallBuffers makes every accepted connection's send buffer small, so a
// client that does not read blocks the server's writes within a few KiB.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// A real SSE client that reads nothing for a while, then slowly, while a
// technical flood of 20,000 distinct alarms with a care alarm every 100
// is pushed to its queue: every care frame arrives, technical frames are
// dropped and summarised ("event: skipped"), every technical update is
// either delivered or counted in a summary, and the stream is never cut:
// a care alarm pushed afterwards still arrives on it.
func TestIntegrationStreamSlowClientCareNeverDropped(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a real HTTP server and stream over loopback")
	}
	var dropped, cut atomicCount
	fa := &feedAlarms{c: feed.Counters{TechDropped: &dropped, Cut: &cut}, queues: make(chan *feed.Queue, 1)}
	h := New(Options{Alarms: fa, StreamKeepAlive: time.Hour,
		Auth: NewAuth([]User{{Username: "natt1", Role: "staff", PasswordHash: testenv.Hash(t, "pw")}}, time.Hour, nil)})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	defer srv.Close()

	dial := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{DialContext: dial.DialContext}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/stream", nil)
	req.SetBasicAuth("natt1", "pw")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var q *feed.Queue
	select {
	case q = <-fa.queues:
	case <-ctx.Done():
		t.Fatal("no subscription")
	}

	const techN, careEvery = 20000, 100
	note := strings.Repeat("x", 200)
	for i := range techN {
		q.Push(&alarm.Alarm{ID: fmt.Sprintf("T%05d", i), Kind: alarm.KindTechnical, Note: note})
		if i%careEvery == 0 {
			q.Push(&alarm.Alarm{ID: fmt.Sprintf("C%05d", i/careEvery), Kind: alarm.KindCall, State: alarm.Raised})
		}
	}
	if dropped.n.Load() == 0 {
		t.Fatal("no technical frame was dropped: the client was not slow enough to test anything")
	}

	r := bufio.NewReaderSize(resp.Body, 512)
	cares := map[string]bool{}
	var techGot, skipped, summaries int
	var event string
	lastPushed := false
	for {
		if len(cares) == techN/careEvery && !lastPushed {
			// The stream is still alive after the flood: one more care alarm.
			q.Push(&alarm.Alarm{ID: "C-last", Kind: alarm.KindFall, State: alarm.Raised})
			lastPushed = true
		}
		if lastPushed && cares["C-last"] && techGot+skipped == techN {
			break
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended (%v): %d care frames, %d technical, %d skipped", err, len(cares), techGot, skipped)
		}
		line = strings.TrimSpace(line)
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		switch event {
		case "skipped":
			var s struct {
				N int `json:"technical_skipped"`
			}
			if err := json.Unmarshal([]byte(data), &s); err != nil || s.N <= 0 {
				t.Fatalf("summary %q", data)
			}
			skipped += s.N
			summaries++
		case "alarm":
			var a alarm.Alarm
			if err := json.Unmarshal([]byte(data), &a); err != nil {
				t.Fatal(err)
			}
			if a.Kind == alarm.KindTechnical {
				techGot++
			} else {
				if cares[a.ID] {
					t.Fatalf("care frame %s twice", a.ID)
				}
				cares[a.ID] = true
			}
		}
		if techGot < techN/50 {
			time.Sleep(100 * time.Microsecond) // a slow phone
		}
	}
	if summaries == 0 || int64(skipped) != dropped.n.Load() {
		t.Errorf("%d summaries of %d skipped, %d counted dropped", summaries, skipped, dropped.n.Load())
	}
	if cut.n.Load() != 0 {
		t.Errorf("subscriber cut %d times", cut.n.Load())
	}
	t.Logf("care %d/%d, technical delivered %d, skipped %d in %d summaries", len(cares), techN/careEvery+1, techGot, skipped, summaries)
}
