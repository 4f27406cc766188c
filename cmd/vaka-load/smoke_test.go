package main

import (
	"io"
	"testing"
	"time"

	"github.com/vaka-care/vaka/internal/testenv"
)

// A 10-second smoke version of `make bench` for CI: peer A (the hub with
// its embedded broker) and peer B (Mosquitto + the hub as external client)
// at a modest open-loop rate. Every alarm must arrive exactly once and in
// order; latency is not asserted (CI machines are noisy).
func TestIntegrationSmokeZeroLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub and Mosquitto")
	}
	testenv.LookPath(t, "mosquitto")
	testenv.LookPath(t, "mosquitto_passwd")
	for _, peer := range []string{peerVaka, peerMosqExt} {
		t.Run(peer, func(t *testing.T) {
			o := options{Mode: "rate", Rate: 400, Duration: 3 * time.Second, Gateways: 4, AlarmEvery: 4,
				BufferedReads: true, Peer: peer}
			if err := o.check(); err != nil {
				t.Fatal(err)
			}
			res, err := runBench(o, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res.summary())
			want := o.N / o.AlarmEvery
			if res.Sent != o.N || res.Aborted != "" {
				t.Fatalf("sent %d of %d (%s)", res.Sent, o.N, res.Aborted)
			}
			if res.Received != want || res.Lost != 0 || res.Duplicated != 0 || res.Reordered != 0 || res.StreamEnded != "" {
				t.Fatalf("alarms: received %d of %d, lost %d, duplicated %d, reordered %d, stream ended %q",
					res.Received, want, res.Lost, res.Duplicated, res.Reordered, res.StreamEnded)
			}
			if res.PubackErrors != 0 || res.Puback.N != o.N {
				t.Fatalf("PUBACKs: %d of %d, %d errors", res.Puback.N, o.N, res.PubackErrors)
			}
		})
	}
}
