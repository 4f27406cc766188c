package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/testenv"
)

// clock is a settable time for the throttle's delays.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func loginBody(user, pass string) string {
	return fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass)
}

// loginServer is the API over loopback with the night nurse natt1/rätt.
func loginServer(t *testing.T, lim Limits, now func() time.Time) (*httptest.Server, *Auth) {
	t.Helper()
	auth := NewAuthLimits([]User{{Username: "natt1", Role: RoleStaff, PasswordHash: testenv.Hash(t, "rätt")}}, time.Hour, now, lim)
	srv := httptest.NewServer(New(Options{Alarms: &queuedAlarms{ch: make(chan *alarm.Alarm)}, Auth: auth}))
	t.Cleanup(srv.Close)
	return srv, auth
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (all of 127.0.0.0/8 is loopback on Linux), so one test can
// play a stranger and a nurse on different addresses.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, Proxy: nil}}
}

func postLogin(t *testing.T, c *http.Client, base, user, pass string) (int, string) {
	t.Helper()
	resp, err := c.Post(base+"/api/v1/login", "application/json", strings.NewReader(loginBody(user, pass)))
	if err != nil {
		t.Errorf("login: %v", err)
		return 0, ""
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// 60 wrong passwords for one account at once: the attempts are reserved
// before bcrypt runs, so only the free few are checked and the rest are
// answered 429 unchecked (counted by the Auth, not timed).
func TestLoginParallelGuessesMostlyUnchecked(t *testing.T) {
	srv, auth := loginServer(t, Limits{}, nil)
	const n = 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, _ := postLogin(t, srv.Client(), srv.URL, "natt1", fmt.Sprintf("gissning-%d", i))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	free := DefaultLimits().PairFree
	if got := auth.Checks(); got > int64(free) {
		t.Errorf("%d passwords checked with bcrypt, want at most %d", got, free)
	}
	if codes[http.StatusUnauthorized] != int(auth.Checks()) || codes[http.StatusTooManyRequests] != n-int(auth.Checks()) {
		t.Errorf("answers %v, want %d × 401 and the rest 429", codes, auth.Checks())
	}
	if auth.Throttled() != int64(codes[http.StatusTooManyRequests]) {
		t.Errorf("throttled counter %d, want %d", auth.Throttled(), codes[http.StatusTooManyRequests])
	}
}

// A stranger failing from other addresses, even enough to put the
// account on guard, does not stop the nurse's right password from her own
// phone; the failing addresses themselves wait, longer after each failure.
func TestLoginStrangerCannotLockNurseOut(t *testing.T) {
	clk := newClock()
	srv, auth := loginServer(t, Limits{AccountCap: 20}, clk.now)
	// Ten stranger addresses, six guesses each: every pair reaches its
	// delay, and the account's 50 failures pass its cap.
	for a := 2; a < 12; a++ {
		c := clientFrom(fmt.Sprintf("127.0.0.%d", a))
		for range 6 {
			postLogin(t, c, srv.URL, "natt1", "fel")
		}
	}
	if _, _, acc := auth.Tracked(); acc != 1 {
		t.Fatalf("%d account records, want 1", acc)
	}
	// The right password from a failing address still waits…
	if code, _ := postLogin(t, clientFrom("127.0.0.2"), srv.URL, "natt1", "rätt"); code != http.StatusTooManyRequests {
		t.Errorf("right password from the stranger's address: %d, want 429", code)
	}
	// …but the nurse's phone, which has not failed, gets in.
	if code, _ := postLogin(t, clientFrom("127.0.0.50"), srv.URL, "natt1", "rätt"); code != http.StatusOK {
		t.Fatalf("nurse from a clean address: %d, want 200", code)
	}
	// She mistypes once and then types it right: still in.
	nurse := clientFrom("127.0.0.51")
	if code, _ := postLogin(t, nurse, srv.URL, "natt1", "ratt"); code != http.StatusUnauthorized {
		t.Fatalf("nurse's typo: %d, want 401", code)
	}
	clk.add(time.Minute)
	if code, _ := postLogin(t, nurse, srv.URL, "natt1", "rätt"); code != http.StatusOK {
		t.Errorf("nurse after one typo: %d, want 200", code)
	}
}

// After the free failures each further failure doubles the wait the
// client is told (Retry-After), and nothing is checked before it ends.
func TestLoginDelayGrows(t *testing.T) {
	clk := newClock()
	srv, auth := loginServer(t, Limits{}, clk.now)
	c := srv.Client()
	for range DefaultLimits().PairFree {
		if code, _ := postLogin(t, c, srv.URL, "natt1", "fel"); code != http.StatusUnauthorized {
			t.Fatalf("free failure: %d", code)
		}
	}
	var waits []int
	for range 4 {
		code, ra := postLogin(t, c, srv.URL, "natt1", "fel")
		if code != http.StatusTooManyRequests {
			t.Fatalf("during the delay: %d, want 429", code)
		}
		secs, err := strconv.Atoi(ra)
		if err != nil || secs < 1 {
			t.Fatalf("Retry-After %q", ra)
		}
		waits = append(waits, secs)
		checked := auth.Checks()
		clk.add(time.Duration(secs) * time.Second)
		if code, _ := postLogin(t, c, srv.URL, "natt1", "fel"); code != http.StatusUnauthorized || auth.Checks() != checked+1 {
			t.Fatalf("after the delay: %d, checks %d → %d", code, checked, auth.Checks())
		}
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] != 2*waits[i-1] {
			t.Errorf("waits %v: want each twice the one before", waits)
		}
	}
}

// An unknown username is checked against a dummy hash of the same bcrypt
// cost as the real accounts, so it takes as long to refuse.
func TestDummyHashHasTheAccountsCost(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost + 1, bcrypt.MinCost + 2} {
		h, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
		if err != nil {
			t.Fatal(err)
		}
		a := NewAuth([]User{{Username: "natt1", Role: RoleStaff, PasswordHash: string(h)}}, time.Hour, nil)
		got, err := bcrypt.Cost(a.dummy)
		if err != nil || got != cost {
			t.Errorf("dummy cost %d (%v), want %d", got, err, cost)
		}
		// And it is used: an unknown user costs one bcrypt check too.
		if _, err := a.Check(context.Background(), "10.0.0.1", "okänd", "pw"); err != ErrBadLogin || a.Checks() != 1 {
			t.Errorf("unknown user: %v, %d checks", err, a.Checks())
		}
	}
}

// Thousands of distinct usernames from thousands of addresses leave each
// throttle map at or under its cap.
func TestThrottleMapsBounded(t *testing.T) {
	const limit = 32
	clk := newClock()
	a := NewAuthLimits([]User{{Username: "natt1", Role: RoleStaff, PasswordHash: testenv.Hash(t, "rätt")}}, time.Hour, clk.now, Limits{MaxEntries: limit})
	ctx := context.Background()
	for i := range 200 {
		clk.add(time.Millisecond)
		_, _ = a.Check(ctx, fmt.Sprintf("10.%d.%d.1", i/250, i%250), fmt.Sprintf("user-%d", i), "fel")
		if s, p, acc := a.Tracked(); s > limit || p > limit || acc > limit {
			t.Fatalf("after %d attempts: %d sources, %d pairs, %d accounts; cap %d", i+1, s, p, acc, limit)
		}
	}
	if s, p, acc := a.Tracked(); s < limit/2 || p < limit/2 || acc < limit/2 {
		t.Errorf("maps %d/%d/%d: the test did not fill them", s, p, acc)
	}
	// The nurse still logs in with the maps full.
	if _, err := a.Check(ctx, "10.9.9.9", "natt1", "rätt"); err != nil {
		t.Errorf("nurse with full maps: %v", err)
	}
}

// X-Forwarded-For counts only from a configured proxy: from anyone else
// a guesser could name a fresh address with every request.
func TestSourceIgnoresForwardedForUnlessTrusted(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/login", nil)
	req.RemoteAddr = "192.0.2.10:5555"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	s := &server{}
	if got := s.source(req); got != "192.0.2.10" {
		t.Errorf("untrusted: source %q", got)
	}
	s.o.TrustedProxies = mustPrefixes(t, "192.0.2.0/24")
	req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 192.0.2.11")
	if got := s.source(req); got != "203.0.113.7" {
		t.Errorf("trusted: source %q, want the nearest untrusted hop", got)
	}
	req.RemoteAddr = "[2001:db8:1:2:3:4:5:6]:443"
	if got := s.source(req); got != "2001:db8:1:2::/64" {
		t.Errorf("IPv6: source %q, want its /64", got)
	}
}

func mustPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// A flood of logins for many accounts from many addresses (none of them
// throttled yet) runs at most MaxConcurrent bcrypt checks at once; those
// that find no slot in time are answered 429 unchecked, and that refusal
// is not counted as a failure against them.
func TestLoginBcryptConcurrencyBounded(t *testing.T) {
	a := NewAuthLimits([]User{{Username: "natt1", Role: RoleStaff, PasswordHash: testenv.Hash(t, "rätt")}}, time.Hour, nil,
		Limits{MaxConcurrent: 1, QueueWait: time.Millisecond})
	const n = 40
	var wg sync.WaitGroup
	var busy, bad atomic.Int32
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := a.Check(context.Background(), fmt.Sprintf("10.0.%d.1", i), fmt.Sprintf("user-%d", i), "fel")
			switch {
			case errors.Is(err, ErrBusy):
				busy.Add(1)
			case errors.Is(err, ErrBadLogin):
				bad.Add(1)
			default:
				t.Errorf("attempt %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if p := a.peak.Load(); p != 1 {
		t.Errorf("%d bcrypt checks ran at once, want 1", p)
	}
	if int64(bad.Load()) != a.Checks() || busy.Load()+bad.Load() != n {
		t.Errorf("%d bad, %d busy, %d checks", bad.Load(), busy.Load(), a.Checks())
	}
	// Busy refusals left no failure behind: only the checked ones are kept.
	if s, p, acc := a.Tracked(); s != int(bad.Load()) || p != int(bad.Load()) || acc != int(bad.Load()) {
		t.Errorf("records %d/%d/%d, want %d each", s, p, acc, bad.Load())
	}
}

// An API client sending wrong Basic credentials is throttled like a
// login, with Retry-After.
func TestBasicAuthThrottledWithRetryAfter(t *testing.T) {
	srv, _ := loginServer(t, Limits{}, nil)
	var last *http.Response
	for range DefaultLimits().PairFree + 1 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/alarms", nil)
		req.SetBasicAuth("natt1", "fel")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Errorf("after the free failures: %d, Retry-After %q", last.StatusCode, last.Header.Get("Retry-After"))
	}
}

// An unknown username meets the throttle after as many failures as a real
// one, so a 429 does not tell a guesser that the account exists.
func TestLoginUnknownUserThrottledLikeKnown(t *testing.T) {
	srv, _ := loginServer(t, Limits{}, nil)
	for _, user := range []string{"natt1", "okänd"} {
		var codes []int
		for range DefaultLimits().PairFree + 1 {
			code, _ := postLogin(t, srv.Client(), srv.URL, user, "fel")
			codes = append(codes, code)
		}
		want := []int{401, 401, 401, 401, 401, 429}
		if fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", user, codes, want)
		}
	}
}
