package main

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// The raw publisher against the trivial sink: every message is
// acknowledged once, packet ids wrap past 65,535 without a false
// duplicate, and a PUBACK for an id not in flight is counted.
func TestRawPublisherAcksAndUnexpected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go sinkConn(c)
		}
	}()
	const n = 70_000 // more than one round of packet ids
	b := &bench{o: options{Gateways: 1}, base: time.Now(), n: n + 1,
		sched: make([]int64, n+1), sent: make([]int64, n+1), acked: make([]atomic.Int64, n+1)}
	p, err := dialRaw(b, ln.Addr().String(), 0, "vaka/v1/bench/gw1/beat")
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	payload := []byte(`{"ts":"2026-11-23T03:00:00Z","seq":0}`)
	for i := range n {
		for {
			err := p.add(i, payload)
			if err == nil {
				break
			}
			if err != errIDsBusy {
				t.Fatal(err)
			}
			if err := p.flush(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		if i%500 == 499 {
			if err := p.flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.acks.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := b.acks.Load(); got != n {
		t.Fatalf("acked %d of %d", got, n)
	}
	for i := range n {
		if b.acked[i].Load() == 0 {
			t.Fatalf("event %d has no PUBACK time", i)
		}
	}
	if u := b.pubackUnexpected.Load(); u != 0 {
		t.Fatalf("%d unexpected PUBACKs", u)
	}
	// A PUBACK the broker sends twice: the second finds its id free.
	id := p.next + 1
	if err := p.add(n, payload); err != nil {
		t.Fatal(err)
	}
	// The same id twice on the wire: the sink acknowledges both.
	p.buf = appendPublish(p.buf, p.topic, id, payload)
	if err := p.flush(); err != nil {
		t.Fatal(err)
	}
	for b.pubackUnexpected.Load() == 0 && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(5 * time.Millisecond)
	}
	if u := b.pubackUnexpected.Load(); u != 1 {
		t.Fatalf("unexpected PUBACKs %d, want 1 (%s)", u, fmt.Sprint(b.acks.Load()))
	}
}
