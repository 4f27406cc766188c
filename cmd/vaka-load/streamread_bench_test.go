package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

// sseFrames is n alarm frames as the hub's stream writes them: each a call
// alarm for event i with its raise and notify steps.
func sseFrames(n, gateways int) []byte {
	var buf bytes.Buffer
	at := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("A%06d", i+1)
		ev := fmt.Sprintf("%s/%s/e%d", site, gatewayID(i%gateways), i)
		a := alarm.Alarm{ID: id, Kind: alarm.KindCall, Rule: "call_button", Priority: 1, Site: site, Gateway: gatewayID(i % gateways),
			Device: fmt.Sprintf("btn-%06d", i), DeviceType: "0003", EventID: ev, SourceTime: at, RaisedAt: at, UpdatedAt: at,
			State: alarm.Raised}
		a.SetHistory([]alarm.Transition{
			{Seq: uint64(2 * i), Alarm: id, Action: alarm.ActRaise, At: at, By: "rule:call_button", EventID: ev},
			{Seq: uint64(2*i + 1), Alarm: id, Action: alarm.ActNotify, At: at, By: "notify", Receiver: "staff", To: []string{staffUser}},
		})
		js, _ := json.Marshal(&a)
		buf.WriteString("event: alarm\ndata: ")
		buf.Write(js)
		buf.WriteString("\n\n")
	}
	return buf.Bytes()
}

// BenchmarkStreamReader is vaka-load's staff-stream reader alone: an SSE
// body of alarm frames served over loopback HTTP (in 64 KiB writes, as the
// hub writes a busy stream) read and matched to their events. Per op: one
// alarm frame. Its ceiling must be well above 20,000 frames/s, or the
// ramp measures the reader.
//
//	go test ./cmd/vaka-load -run '^$' -bench StreamReader -benchmem
func BenchmarkStreamReader(b *testing.B) {
	const gateways = 50
	body := sseFrames(b.N, gateways)
	start := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("retry: 2000\nevent: hello\ndata: {}\n\n"))
		w.(http.Flusher).Flush()
		<-start // the frames go out once the timer runs
		for p := body; len(p) > 0; {
			n := min(len(p), 64<<10)
			w.Write(p[:n])
			p = p[n:]
		}
	}))
	defer srv.Close()
	bn := &bench{n: b.N, o: options{Gateways: gateways}, recv: make([]atomic.Int64, b.N), alarmID: make([][]byte, b.N),
		lastMsg: make([]uint64, b.N), lastIdx: make([]int, gateways)}
	for g := range bn.lastIdx {
		bn.lastIdx[g] = -1
	}
	bn.base = time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := alarmStream(ctx, srv.URL, bn.now, bn.onAlarm, func(string) {})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	close(start)
	<-done
	b.StopTimer()
	if got := bn.received.Load(); got != int64(b.N) || bn.duplicated.Load() != 0 || bn.foreign.Load() != 0 {
		b.Fatalf("received %d of %d (duplicated %d, foreign %d)", got, b.N, bn.duplicated.Load(), bn.foreign.Load())
	}
}
