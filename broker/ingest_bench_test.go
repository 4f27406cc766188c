package broker

import (
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

// BenchmarkIngest is the broker's own cost per gateway event, from the
// TCP read to the call of Handler.HandleEvent and the PUBACK written back,
// with a handler that does nothing: what the MQTT side adds to every
// alarm before the hub sees it. A gateway writes batch events at once
// (the load generator at 10,000/s writes 2–3 per connection per wake-up;
// a gateway flushing its outbox after a link outage writes many) and then
// reads their PUBACKs.
//
// cpu-µs/event is the process's user+system CPU (getrusage) per event,
// so it includes this benchmark's own client: a pre-encoded write and a
// buffered read of 4-byte PUBACKs, a small part of it. allocs/op and B/op
// count the whole process too. Like BenchmarkPublishQoS1 it uses only
// Options that predate mqtt.limits, so it runs unchanged on older commits
// (copy dialGateway, batchconn_test.go, along with it).
//
//	go test ./broker -run '^$' -bench BenchmarkIngest -benchtime 20000x -benchmem
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchIngest(b, batch) })
	}
}

func benchIngest(b *testing.B, batch int) {
	h := &countingHandler{}
	c, r, rc := dialGateway(b, startTestBroker(b, h), "s/g", "pw", 10*time.Minute, 64<<10)
	if rc != 0 {
		b.Fatalf("login refused: %d", rc)
	}
	var ack [4]byte
	// Packet ids 1..1024 in turn: at most batch of them wait at once.
	pks := make([][]byte, 1024)
	for i := range pks {
		pks[i] = publishPacket(event.EventTopic("s", "g"), uint16(i+1),
			fmt.Sprintf(`{"v":1,"id":"b%d","device":"knapp-%d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`, i, i))
	}
	buf := make([]byte, 0, 16<<10)
	send := func(from, n int) {
		buf = buf[:0]
		for k := from; k < from+n; k++ {
			buf = append(buf, pks[k%len(pks)]...)
		}
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		for k := from; k < from+n; k++ {
			if _, err := io.ReadFull(r, ack[:]); err != nil {
				b.Fatalf("PUBACK: %v", err)
			}
			id := int(ack[2])<<8 | int(ack[3])
			if ack[0] != 0x40 || id != k%len(pks)+1 {
				b.Fatalf("event %d: PUBACK % x, want id %d", k, ack, k%len(pks)+1)
			}
		}
	}
	send(0, 2*len(pks)) // warm up: the client's state, the hook's maps
	handled0 := h.events.Load()

	var ru0, ru1 syscall.Rusage
	b.ReportAllocs()
	b.ResetTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for i := 0; i < b.N; i += batch {
		send(i, min(batch, b.N-i))
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	b.StopTimer()
	if got := h.events.Load() - handled0; got != int64(b.N) {
		b.Fatalf("handled %d events, sent %d", got, b.N)
	}
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}
