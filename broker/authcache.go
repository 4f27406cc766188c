package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"golang.org/x/crypto/bcrypt"
)

// authGuard keeps bcrypt off the alarm path. bcrypt is slow on purpose
// (tens of ms per check on a Pi); 256 wrong-password logins in 20 s took
// enough CPU to delay a real alarm's PUBACK to 0.53 s. So:
//
//   - a successful check is remembered (keyed by a salted hash of username,
//     stored hash and password, never the password itself), so a gateway
//     that reconnects with the right password skips bcrypt;
//   - at most AuthConcurrency comparisons run at once;
//   - failures slow further attempts from the same source address and for
//     the same username with a delay that doubles per failure, capped, and
//     forgotten after a quiet period. The username delay does not apply from
//     the address that username last logged in from, so a stranger guessing
//     a gateway's password cannot lock the gateway out.
//
// Every map is bounded.
type authGuard struct {
	salt    [16]byte
	sem     chan struct{}
	compare func(hash, password []byte) error // bcrypt; replaced in tests

	// Cache of successful checks.
	cacheTTL time.Duration
	cacheMax int
	mu       sync.Mutex
	ok       map[[32]byte]time.Time // key → expiry
	fails    map[string]*failures   // "a:"+address or "u:"+username
	lastGood map[string]string      // username → address of its last good login
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) bool // false if ctx ended first

	compares  atomic.Int64 // bcrypt comparisons run
	cacheHits atomic.Int64 // logins let in from the cache
}

type failures struct {
	n    int
	last time.Time
}

const (
	authCacheTTL   = 10 * time.Minute
	authCacheMax   = 4096
	failMax        = 4096 // tracked addresses and usernames
	failForget     = time.Minute
	failBaseDelay  = 50 * time.Millisecond
	failMaxDelay   = 2 * time.Second
	authWaitMax    = 30 * time.Second // longest a login waits for a bcrypt slot
	lastGoodMax    = 8192
	failFreeChecks = 2 // failures before any delay (a typo is not an attack)
)

func newAuthGuard(concurrency int) *authGuard {
	g := &authGuard{
		sem:      make(chan struct{}, concurrency),
		compare:  bcrypt.CompareHashAndPassword,
		cacheTTL: authCacheTTL,
		cacheMax: authCacheMax,
		ok:       map[[32]byte]time.Time{},
		fails:    map[string]*failures{},
		lastGood: map[string]string{},
		now:      time.Now,
		sleep:    sleepCtx,
	}
	_, _ = rand.Read(g.salt[:])
	return g
}

func (g *authGuard) key(user, hash string, password []byte) [32]byte {
	h := sha256.New()
	h.Write(g.salt[:])
	for _, s := range [][]byte{[]byte(user), []byte(hash), password} {
		n := len(s)
		h.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		h.Write(s)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// authResult is the outcome of a password check; authBusy means no bcrypt
// slot freed up in time.
type authResult int

const (
	authOK authResult = iota
	authBad
	authBusy
)

// check compares password with the bcrypt hash of user, from addr.
func (g *authGuard) check(ctx context.Context, user, hash string, password []byte, addr string) authResult {
	k := g.key(user, hash, password)
	now := g.now()
	g.mu.Lock()
	exp, hit := g.ok[k]
	if hit && now.Before(exp) {
		g.cacheHits.Add(1)
		g.lastGood[user] = addr
		g.mu.Unlock()
		return authOK
	}
	delay := g.delayLocked("a:"+addr, now)
	if g.lastGood[user] != addr {
		delay = max(delay, g.delayLocked("u:"+user, now))
	}
	g.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, authWaitMax)
	defer cancel()
	if delay > 0 && !g.sleep(ctx, delay) {
		return authBusy
	}
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return authBusy
	}
	g.compares.Add(1)
	err := g.compare([]byte(hash), password)
	<-g.sem

	now = g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.failLocked("a:"+addr, now)
		g.failLocked("u:"+user, now)
		return authBad
	}
	delete(g.fails, "a:"+addr)
	delete(g.fails, "u:"+user)
	if len(g.ok) >= g.cacheMax {
		g.evictLocked(now)
	}
	g.ok[k] = now.Add(g.cacheTTL)
	if len(g.lastGood) >= lastGoodMax {
		clear(g.lastGood)
	}
	g.lastGood[user] = addr
	return authOK
}

// delayLocked is how long an attempt under key waits: none for the first
// failFreeChecks failures, then failBaseDelay doubling per failure up to
// failMaxDelay. Failures older than failForget are forgotten.
func (g *authGuard) delayLocked(key string, now time.Time) time.Duration {
	f := g.fails[key]
	if f == nil {
		return 0
	}
	if now.Sub(f.last) > failForget {
		delete(g.fails, key)
		return 0
	}
	if f.n <= failFreeChecks {
		return 0
	}
	d := failBaseDelay << min(f.n-failFreeChecks-1, 10)
	return min(d, failMaxDelay)
}

func (g *authGuard) failLocked(key string, now time.Time) {
	f := g.fails[key]
	if f == nil {
		if len(g.fails) >= failMax {
			for k, v := range g.fails {
				if now.Sub(v.last) > failForget {
					delete(g.fails, k)
				}
			}
			if len(g.fails) >= failMax {
				// Still full of fresh failures: forget one at random rather
				// than grow. An attacker spread this wide is slowed by the
				// bcrypt semaphore and the connection limits anyway.
				for k := range g.fails {
					delete(g.fails, k)
					break
				}
			}
		}
		f = &failures{}
		g.fails[key] = f
	}
	f.n++
	f.last = now
}

// evictLocked makes room in the cache: expired entries first, else one at
// random (a later login for it runs bcrypt again, nothing worse).
func (g *authGuard) evictLocked(now time.Time) {
	for k, exp := range g.ok {
		if !now.Before(exp) {
			delete(g.ok, k)
		}
	}
	for k := range g.ok {
		if len(g.ok) < g.cacheMax {
			break
		}
		delete(g.ok, k)
	}
}

// checkPassword checks a login's password through the guard.
func (h *vakaHook) checkPassword(cl *mqtt.Client, user, hash string, password []byte) authResult {
	addr := cl.Net.Remote
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return h.auth.check(context.Background(), user, hash, password, addr)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
