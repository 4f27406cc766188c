package influx

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
)

type discard struct{}

func (discard) Write(context.Context, []byte) error { return nil }

// The alarm path's cost of the exporter: one ObserveEvent (copy + channel
// send). The pump and writer run beside it (spool on disk, a sink that
// discards).
func BenchmarkObserveEvent(b *testing.B) {
	sp, _ := OpenSpool(b.TempDir(), 1<<30)
	e := New(Options{Model: testModel(), Spool: sp, Sink: discard{}, Queue: 1 << 16})
	ev := testEvent(1)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e.ObserveEvent(ev, now.Add(time.Duration(i)))
	}
	b.StopTimer()
	b.ReportMetric(float64(e.Dropped()), "dropped")
	e.Close()
}

// Sustained points/s from the hub's observer into a real InfluxDB 1.8.10:
// b.N events offered as fast as the queue takes them (the producer waits
// only when the queue is 90 % full), timed until InfluxDB has them all.
// Default options: batches of 10,000 lines, 2 writers in flight.
func BenchmarkIntegrationInfluxPointsPerSecond(b *testing.B) { pointsPerSecond(b, 0) }

// The same with one write in flight at a time (Options.Writers = 1), to
// compare.
func BenchmarkIntegrationInfluxPointsPerSecondOneWriter(b *testing.B) { pointsPerSecond(b, 1) }

func pointsPerSecond(b *testing.B, writers int) {
	d := startInfluxd(b)
	cl, _ := Dial(d.config())
	defer cl.Close()
	sp, _ := OpenSpool(b.TempDir(), 1<<30)
	e := New(Options{Model: testModel(), Spool: sp, Sink: cl, Queue: 1 << 16, Writers: writers})
	base := time.Now().Add(-2 * time.Hour)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for len(e.ch) > cap(e.ch)*9/10 {
			time.Sleep(100 * time.Microsecond)
		}
		e.ObserveEvent(testEvent(i), base.Add(time.Duration(i)*time.Microsecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	e.Close()
	n, err := cl.Count(ctx, MeasEvent, "n", base.Add(-time.Second), base.Add(time.Duration(b.N+1)*time.Microsecond))
	if err != nil || n != int64(b.N) || e.Dropped() != 0 {
		b.Fatalf("InfluxDB holds %d of %d (dropped %d, %v)", n, b.N, e.Dropped(), err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "points/s")
}

// Alarm-path latency of the observer calls (event + transition, as the hub
// makes them) at 5,000 events/s, with InfluxDB running and then stopped.
func BenchmarkIntegrationAlarmPathInfluxUpVsDown(b *testing.B) {
	d := startInfluxd(b)
	cl, _ := Dial(d.config())
	defer cl.Close()
	sp, _ := OpenSpool(b.TempDir(), 1<<30)
	e := New(Options{Model: testModel(), Spool: sp, Sink: cl, MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second})
	defer e.Close()
	run := func(n int) (p50, p99, max time.Duration) {
		lat := make([]time.Duration, 0, n)
		a := alarm.New("A1", time.Now())
		a.Site, a.Unit = "s", "u"
		next := time.Now()
		for i := range n {
			for time.Now().Before(next) {
			}
			next = next.Add(200 * time.Microsecond)
			t0 := time.Now()
			e.ObserveEvent(testEvent(i), t0)
			e.ObserveTransition(a, alarm.Transition{Alarm: "A1", Action: alarm.ActRepeat, At: t0})
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		return lat[n/2], lat[n*99/100], lat[n-1]
	}
	n := max(b.N, 20000)
	b.ResetTimer()
	u50, u99, umax := run(n)
	d.stop()
	time.Sleep(200 * time.Millisecond)
	s50, s99, smax := run(n)
	b.StopTimer()
	if e.Stats().WriteErrors == 0 {
		b.Fatal("InfluxDB stopped but no write failed")
	}
	b.ReportMetric(float64(u50.Nanoseconds()), "up-p50-ns")
	b.ReportMetric(float64(u99.Nanoseconds()), "up-p99-ns")
	b.ReportMetric(float64(umax.Nanoseconds()), "up-max-ns")
	b.ReportMetric(float64(s50.Nanoseconds()), "down-p50-ns")
	b.ReportMetric(float64(s99.Nanoseconds()), "down-p99-ns")
	b.ReportMetric(float64(smax.Nanoseconds()), "down-max-ns")
	b.ReportMetric(float64(e.Dropped()), "dropped")
}
