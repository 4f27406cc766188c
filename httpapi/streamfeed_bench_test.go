package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/feed"
	"github.com/vaka-care/vaka/internal/testenv"
)

// careFrameAlarm is a call-button alarm as the hub shows it after its
// raise: the raise and its notify step in the history.
func careFrameAlarm(i int, at time.Time) *alarm.Alarm {
	id := fmt.Sprintf("A%06d", i)
	a := &alarm.Alarm{ID: id, Kind: alarm.KindCall, Rule: "call_button", Priority: 1, Site: "s", Gateway: "gw-001",
		Device: fmt.Sprintf("btn-%06d", i), DeviceType: "0003", Unit: "u", Room: "r12", EventID: fmt.Sprintf("s/gw-001/e%d", i),
		SourceTime: at, RaisedAt: at, UpdatedAt: at, State: alarm.Raised}
	a.SetHistory([]alarm.Transition{
		{Seq: uint64(2 * i), Alarm: id, Action: alarm.ActRaise, At: at, By: "rule:call_button", EventID: a.EventID},
		{Seq: uint64(2*i + 1), Alarm: id, Action: alarm.ActNotify, At: at, By: "notify", Receiver: "staff", To: []string{"natt1"}},
	})
	return a
}

// BenchmarkStreamFeedCareFrames is staff screens' streams under an
// all-alarm storm: care alarms pushed to every screen's feed queue in
// bursts of 1,024 and read by real HTTP clients over loopback (buffered
// readers that only look for the event lines). Per op: one alarm,
// encoded, written and read on every screen; CPU and allocations of
// server and clients together. With 8 screens an alarm should still be
// encoded about once (frameCache), not once per screen.
//
//	go test ./httpapi -run '^$' -bench StreamFeedCareFrames -benchmem -cpuprofile /tmp/feed.prof
func BenchmarkStreamFeedCareFrames(b *testing.B) {
	for _, screens := range []int{1, 8} {
		b.Run(fmt.Sprintf("screens=%d", screens), func(b *testing.B) { benchStreamFeed(b, screens) })
	}
}

func benchStreamFeed(b *testing.B, screens int) {
	fa := &feedAlarms{queues: make(chan *feed.Queue, screens)}
	h := New(Options{Alarms: fa, StreamKeepAlive: time.Hour,
		Auth: NewAuth([]User{{Username: "natt1", Role: "staff", PasswordHash: testenv.Hash(b, "pw")}}, time.Hour, nil)})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const burst = 1024
	got := make(chan bool, screens)
	qs := make([]*feed.Queue, screens)
	for i := range screens {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/stream", nil)
		req.SetBasicAuth("natt1", "pw")
		resp, err := (&http.Client{Transport: &http.Transport{ReadBufferSize: 64 << 10}}).Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		qs[i] = <-fa.queues
		go func() {
			r := bufio.NewReaderSize(resp.Body, 256<<10)
			n := 0
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					got <- false
					return
				}
				if string(line) == "event: alarm\n" {
					n++
					if n%burst == 0 {
						got <- true
					}
				}
			}
		}()
	}
	at := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	as := make([]*alarm.Alarm, 4*burst)
	for i := range as {
		as[i] = careFrameAlarm(i, at)
	}
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		for range burst {
			// A fresh snapshot per change, as the hub makes them, shared
			// by every screen.
			c := *as[sent%len(as)]
			for _, q := range qs {
				q.Push(&c)
			}
			sent++
		}
		for range screens {
			if !<-got {
				b.Fatal("stream ended")
			}
		}
	}
}
