package notify_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/scaip"
	"github.com/vaka-care/vaka/scaipsip"
)

// centreOK is a centre that takes every request: snu 0 for its ref.
type centreOK struct{}

func (centreOK) HandleSCAIP(_ string, body []byte) scaip.Response {
	r, err := scaip.Parse(body)
	if err != nil {
		return scaip.NewResponse("", scaip.InvalidFormat)
	}
	return scaip.NewResponse(r.Ref, scaip.OK)
}

// BenchmarkSCAIPHandover is the sender's cost of handing alarms to a
// centre: each op is one alarm's ME (built by notify.Request, its own
// ref) sent over loopback UDP with Digest to Vaka's own receiver
// (scaipsip, playing the centre) until its <mrs> snu 0 is back.
//
//   - kept: the dispatcher's SIPSender, one user agent and one nonce
//     for the centre, one at a time;
//   - kept-overlap8: the same with 8 hand-overs in flight (answers routed
//     by ref, nonce counts out of order within the receiver's window);
//   - oneshot: scaipsip.Send per alarm, as the dispatcher did before: a
//     new user agent and socket and a 401 round trip each time.
//
// Reported: p50/p99 from the MESSAGE written to its snu 0 back,
// challenges per op, and the process CPU per hand-over (the centre is in
// the process: an upper bound for the sender).
//
//	go test -run '^$' -bench BenchmarkSCAIPHandover -benchtime 2000x ./notify/
func BenchmarkSCAIPHandover(b *testing.B) {
	ha1 := md5.Sum([]byte("vaka:vaka:hemligt"))
	srv, err := scaipsip.Start(scaipsip.Config{UDP: "127.0.0.1:0", Realm: "vaka",
		Accounts: map[string]string{"vaka": hex.EncodeToString(ha1[:])}, MrsTimeout: time.Second}, centreOK{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	to := "sip:larm@" + srv.Addr("udp")
	c := centreConf(b, to, "udp")
	body := func(i int) []byte {
		a := alarm.New(fmt.Sprintf("A%06d", i), time.Now())
		a.Kind, a.Priority, a.Device = alarm.KindCall, 1, "larmknapp-12"
		r := notify.Request(a, c, notify.HandoverRef(a.ID, 0, "larm"), scaip.Message)
		return r.Marshal()
	}
	run := func(b *testing.B, par int, send func(ctx context.Context, i int) (*scaip.Response, error)) {
		lat := make([]time.Duration, b.N)
		var wg sync.WaitGroup
		next := make(chan int)
		b.ReportAllocs()
		cpu0 := cpuNow()
		b.ResetTimer()
		for range par {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					t0 := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					r, err := send(ctx, i)
					cancel()
					lat[i] = time.Since(t0)
					if err != nil || r.SNU != scaip.OK {
						b.Errorf("hand-over %d: %+v %v", i, r, err)
					}
				}
			}()
		}
		for i := range b.N {
			next <- i
		}
		close(next)
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64((cpuNow()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	kept := func(par int) func(b *testing.B) {
		return func(b *testing.B) {
			x := notify.NewSIPSender()
			defer x.Close()
			run(b, par, func(ctx context.Context, i int) (*scaip.Response, error) { return x.Exchange(ctx, c, body(i)) })
			b.ReportMetric(float64(x.Stats().Challenges)/float64(b.N), "challenges/op")
		}
	}
	b.Run("kept", kept(1))
	b.Run("kept-overlap8", kept(8))
	b.Run("oneshot", func(b *testing.B) {
		run(b, 1, func(ctx context.Context, i int) (*scaip.Response, error) {
			res, err := scaipsip.Send(ctx, scaipsip.SendOptions{Transport: "udp", Addr: srv.Addr("udp"),
				Username: "vaka", Password: "hemligt", Body: body(i), Timeout: 5 * time.Second})
			if err == nil && res.Mrs == nil {
				err = fmt.Errorf("SIP %d and no <mrs>", res.SIPStatus)
			}
			return res.Mrs, err
		})
		b.ReportMetric(1, "challenges/op")
	})
}

// cpuNow is the process's user and system CPU time so far.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
