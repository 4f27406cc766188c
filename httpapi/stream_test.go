package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/testenv"
)

// queuedAlarms hands the stream one subscription whose channel already
// holds a burst, as the hub's fan-out does when alarms come faster than
// a screen's connection takes them.
type queuedAlarms struct {
	ch chan *alarm.Alarm
}

func (q *queuedAlarms) Alarms() []*alarm.Alarm                   { return nil }
func (q *queuedAlarms) Alarm(string) (*alarm.Alarm, bool)        { return nil, false }
func (q *queuedAlarms) Subscribe() (<-chan *alarm.Alarm, func()) { return q.ch, func() {} }
func (q *queuedAlarms) Healthy() error                           { return nil }
func (q *queuedAlarms) Act(string, alarm.Action, string, alarm.Outcome, string) (*alarm.Alarm, error) {
	return nil, nil
}

// burstServer is the API with one staff login (natt1/pw) whose stream
// subscription already holds n alarms, A000001 … in order, and is then
// cut off (closed) by the hub.
func burstServer(t *testing.T, n int) http.Handler {
	q := &queuedAlarms{ch: make(chan *alarm.Alarm, n)}
	for i := range n {
		q.ch <- &alarm.Alarm{ID: fmt.Sprintf("A%06d", i+1), Kind: alarm.KindCall, State: alarm.Raised}
	}
	close(q.ch)
	return New(Options{
		Alarms: q,
		Auth:   NewAuth([]User{{Username: "natt1", Role: "staff", PasswordHash: testenv.Hash(t, "pw")}}, time.Hour, nil),
	})
}

// A burst already queued goes out in flushes of at most streamBurst frames,
// every frame once and in order; a subscription the hub cuts off for
// falling behind still gets every frame queued before the cut, then the
// stream ends so the client reconnects and refetches.
func TestStreamBurstInOrderThenCut(t *testing.T) {
	const n = 3*streamBurst + 7
	srv := httptest.NewServer(burstServer(t, n))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/stream", nil)
	req.SetBasicAuth("natt1", "pw")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	var got []string
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // the stream ended: the subscription was cut
		}
		data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
		if !ok || data == "{}" {
			continue
		}
		var a alarm.Alarm
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			t.Fatalf("frame %q: %v", data, err)
		}
		got = append(got, a.ID)
	}
	if len(got) != n {
		t.Fatalf("%d frames before the stream ended, want %d", len(got), n)
	}
	for i, id := range got {
		if want := fmt.Sprintf("A%06d", i+1); id != want {
			t.Fatalf("frame %d is %s, want %s", i, id, want)
		}
	}
}

// flushCounter is a ResponseWriter that counts flushes: each is one
// write(2) to the screen's connection.
type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushCounter) Flush() { f.flushes++; f.ResponseRecorder.Flush() }

// Frames queued together share a flush: a burst of n costs about
// n/streamBurst writes, not n.
func TestStreamBurstSharesFlushes(t *testing.T) {
	const n = 2*streamBurst + 1
	h := burstServer(t, n)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/stream", nil)
	req.SetBasicAuth("natt1", "pw")
	w := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, req)
	if frames := strings.Count(w.Body.String(), "event: alarm\n"); frames != n {
		t.Fatalf("%d frames, want %d", frames, n)
	}
	// hello, three bursts (64, 64, 1), and the flush at the cut.
	if w.flushes > 5 {
		t.Errorf("%d flushes for %d queued frames, want at most 5", w.flushes, n)
	}
}
