package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func fakeGuard() (*authGuard, *time.Time) {
	g := newAuthGuard(1)
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	g.sleep = func(context.Context, time.Duration) bool { return true }
	g.compare = func(hash, pw []byte) error {
		if string(hash) == "h:"+string(pw) {
			return nil
		}
		return errors.New("mismatch")
	}
	return g, &now
}

// A successful check is cached; a changed stored hash or password misses.
func TestAuthGuardCache(t *testing.T) {
	g, now := fakeGuard()
	ctx := context.Background()
	if g.check(ctx, "s/g", "h:pw", []byte("pw"), "10.0.0.1") != authOK {
		t.Fatal("right password refused")
	}
	if g.check(ctx, "s/g", "h:pw", []byte("pw"), "10.0.0.2") != authOK || g.compares.Load() != 1 {
		t.Fatalf("second login ran bcrypt (%d compares)", g.compares.Load())
	}
	if g.check(ctx, "s/g", "h:other", []byte("pw"), "10.0.0.1") != authBad {
		t.Fatal("cache ignored a changed password hash")
	}
	*now = now.Add(authCacheTTL + time.Second)
	before := g.compares.Load()
	g.check(ctx, "s/g", "h:pw", []byte("pw"), "10.0.0.1")
	if g.compares.Load() != before+1 {
		t.Fatal("expired entry still used")
	}
}

// Failures grow the delay per address and per username, capped, and are
// forgotten after a quiet minute; the username's delay is skipped from its
// last good address, so guessing does not lock the gateway out.
func TestAuthGuardDelays(t *testing.T) {
	g, now := fakeGuard()
	ctx := context.Background()
	g.check(ctx, "s/g", "h:pw", []byte("pw"), "10.0.0.1") // last good address
	var last time.Duration
	for i := range 20 {
		g.check(ctx, "s/g", "h:pw", []byte("guess"), "10.9.9.9")
		d := g.delayLocked("a:10.9.9.9", *now)
		if d < last || d > failMaxDelay {
			t.Fatalf("failure %d: delay %v after %v", i+1, d, last)
		}
		last = d
		*now = now.Add(time.Millisecond) // keep the fake clock moving without sleeping for real
	}
	if last != failMaxDelay {
		t.Fatalf("delay after 20 failures %v, want %v", last, failMaxDelay)
	}
	if d := g.delayLocked("u:s/g", *now); d != failMaxDelay {
		t.Fatalf("username delay %v", d)
	}
	// The gateway from its own address: no username delay (and a cache hit).
	if g.check(ctx, "s/g", "h:pw", []byte("pw"), "10.0.0.1") != authOK {
		t.Fatal("gateway locked out")
	}
	*now = now.Add(failForget + time.Second)
	if d := g.delayLocked("a:10.9.9.9", *now); d != 0 {
		t.Fatalf("failures not forgotten: %v", d)
	}
}

// The failure and cache maps stay bounded under many distinct keys.
func TestAuthGuardBounded(t *testing.T) {
	g, now := fakeGuard()
	g.cacheMax = 16
	for i := range 3 * failMax {
		g.failLocked("a:"+string(rune(i)), *now)
	}
	if len(g.fails) > failMax {
		t.Fatalf("%d failure entries", len(g.fails))
	}
	for i := range 100 {
		u := "u" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		g.check(context.Background(), u, "h:pw", []byte("pw"), "10.0.0.1")
	}
	if len(g.ok) > g.cacheMax {
		t.Fatalf("%d cache entries, max %d", len(g.ok), g.cacheMax)
	}
}

func TestClientIDsBounded(t *testing.T) {
	connected := map[string]bool{"a": true}
	c := newClientIDs(2, func(id string) bool { return connected[id] })
	if _, ok := c.claim("a", "s/a"); !ok {
		t.Fatal("first claim refused")
	}
	if owner, ok := c.claim("a", "s/b"); ok || owner != "s/a" {
		t.Fatalf("second login took a: %q %v", owner, ok)
	}
	if _, ok := c.claim("b", "s/b"); !ok {
		t.Fatal("b refused")
	}
	// Full: b is not connected, so it is forgotten to make room; a stays.
	if _, ok := c.claim("c", "s/c"); !ok {
		t.Fatal("c refused")
	}
	if u, _ := c.ownerOf("a"); u != "s/a" || len(c.owner) != 2 {
		t.Fatalf("owner of a %q, %d entries", u, len(c.owner))
	}
}
