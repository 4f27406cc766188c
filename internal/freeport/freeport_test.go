package freeport

import (
	"net"
	"strconv"
	"testing"
)

// The port is free (a server can bind it) and, on a machine with free
// ports there, below the ephemeral range that outgoing connections use.
func TestAddrIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		a, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(a)
		n, _ := strconv.Atoi(p)
		if n < rangeLow || n >= rangeLow+rangeSize {
			t.Errorf("port %d outside %d–%d", n, rangeLow, rangeLow+rangeSize-1)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("cannot bind %s: %v", a, err)
		}
		l.Close()
		seen[a] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 picks gave %d distinct ports", len(seen))
	}
	if p, err := Port(); err != nil || p < rangeLow || p >= rangeLow+rangeSize {
		t.Errorf("Port() = %d, %v", p, err)
	}
}
