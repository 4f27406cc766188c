package broker

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vaka-care/vaka/event"
)

// BenchmarkPublishQoS1 is one gateway event and its PUBACK over loopback
// TCP, one at a time: the per-packet path through the listener wrapper,
// the broker's hooks and the connection guard. It uses only Options that
// predate mqtt.limits, so it runs unchanged on older commits to compare
// (copy dialGateway, batchconn_test.go, along with it).
func BenchmarkPublishQoS1(b *testing.B) {
	c, r, rc := dialGateway(b, startTestBroker(b, &countingHandler{}), "s/g", "pw", 5*time.Minute, 4096)
	if rc != 0 {
		b.Fatalf("login refused: %d", rc)
	}
	var ack [4]byte
	pks := make([][]byte, 1000)
	for i := range pks {
		pks[i] = publishPacket(event.EventTopic("s", "g"), uint16(i+1),
			fmt.Sprintf(`{"v":1,"id":"b%d","device":"d","dty":"0003","state":"pressed","ts":"2026-11-23T03:00:00Z"}`, i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Write(pks[i%len(pks)]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, ack[:]); err != nil || ack[0] != 0x40 {
			b.Fatalf("PUBACK: % x %v", ack, err)
		}
	}
}

// BenchmarkOnPacketRead is what the hook adds to every packet a client
// sends: a counter, and for a retained publish a topic check.
func BenchmarkOnPacketRead(b *testing.B) {
	h := &vakaHook{}
	for _, retain := range []bool{false, true} {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: retain},
			TopicName: event.EventTopic("solrosen", "avd-a")}
		b.Run(fmt.Sprintf("retain=%v", retain), func(b *testing.B) {
			for range b.N {
				_, _ = h.OnPacketRead(nil, pk)
			}
		})
	}
}
