package service_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/event"
)

// sseClient counts alarm events on one staff session's stream and notes
// when each arrived.
type sseClient struct {
	mu   sync.Mutex
	seen []time.Time
	wake chan struct{}
}

func openSSE(tb testing.TB, base string) (*sseClient, func()) {
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/stream", nil)
	req.SetBasicAuth("natt1", "natt1-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("stream: %v", err)
	}
	c := &sseClient{wake: make(chan struct{}, 1)}
	ready := make(chan struct{})
	go func() {
		r := bufio.NewReaderSize(resp.Body, 64<<10)
		var ev string
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			switch {
			case len(line) > 7 && string(line[:7]) == "event: ":
				ev = strings.TrimSpace(string(line[7:]))
				if ev == "hello" {
					close(ready)
				}
			case ev == "alarm" && len(line) > 6 && string(line[:6]) == "data: ":
				now := time.Now()
				c.mu.Lock()
				c.seen = append(c.seen, now)
				c.mu.Unlock()
				select {
				case c.wake <- struct{}{}:
				default:
				}
			}
		}
	}()
	<-ready
	return c, func() { resp.Body.Close() }
}

func (c *sseClient) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seen) }

// BenchmarkIntegrationStaffStream200 connects 200 staff sessions to the
// live stream and publishes call-button presses over MQTT (paho, TCP), one
// at a time; for each press it measures publish → the alarm change on
// every one of the 200 streams. Set VAKA_BENCH_REPORT=FILE to append a
// markdown summary.
func BenchmarkIntegrationStaffStream200(b *testing.B) {
	sessions := 200
	if v, err := strconv.Atoi(os.Getenv("VAKA_BENCH_SESSIONS")); err == nil && v > 0 {
		sessions = v // to separate the MQTT path from the fan-out
	}
	s := startStaffHub(b, b.TempDir(), "")
	base := "http://" + s.HTTPAddr()
	var clients []*sseClient
	for range sessions {
		c, stop := openSSE(b, base)
		b.Cleanup(stop)
		clients = append(clients, c)
	}
	pub, err := connect(b, s.MQTTAddr(), "solrosen/avd-a", gwPass, "bench-gw")
	if err != nil {
		b.Fatal(err)
	}
	topic := event.EventTopic("solrosen", "avd-a")
	var lat []time.Duration
	n := 0
	b.ResetTimer()
	for b.Loop() {
		before := make([]int, sessions)
		for i, c := range clients {
			before[i] = c.count()
		}
		start := time.Now()
		tok := pub.Publish(topic, 1, false, callEvent(fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n)))
		n++
		deadline := time.Now().Add(5 * time.Second)
		for i, c := range clients {
			for c.count() <= before[i] {
				if time.Now().After(deadline) {
					b.Fatalf("session %d got no alarm change within 5 s", i)
				}
				select {
				case <-c.wake:
				case <-time.After(10 * time.Millisecond):
				}
			}
			c.mu.Lock()
			lat = append(lat, c.seen[before[i]].Sub(start))
			c.mu.Unlock()
		}
		tok.WaitTimeout(5 * time.Second)
		// Let the notifier's own transition (notify, on the first raise)
		// pass before the next press, so each press is measured alone.
		time.Sleep(2 * time.Millisecond)
		for i, c := range clients {
			before[i] = c.count()
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(q(0.5).Microseconds()), "p50-µs")
	b.ReportMetric(float64(q(0.9).Microseconds()), "p90-µs")
	b.ReportMetric(float64(sessions), "sessions") // docs/benchmarks-staff.md groups runs by it
	b.ReportMetric(float64(q(0.99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	if path := os.Getenv("VAKA_BENCH_REPORT"); path != "" && len(lat) >= 1000 {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "| %d | %d | %d | %v | %v | %v | %v |\n", sessions, n, len(lat), q(0.5).Round(time.Microsecond),
				q(0.9).Round(time.Microsecond), q(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
			f.Close()
		}
	}
}
