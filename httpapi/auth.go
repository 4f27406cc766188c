package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// User is a staff account as the web layer sees it.
type User struct {
	Username     string
	Name         string
	Role         string // staff, lead, admin, technician (docs/roles.md)
	PasswordHash string
}

// Session is a logged-in browser.
type Session struct {
	Token   string
	User    *User
	CSRF    string
	Expires time.Time
}

// ErrLocked is returned (wrapped in a *ThrottleError) while password
// guesses are being slowed down.
var ErrLocked = errors.New("httpapi: too many failed logins; try again later")

// ErrBadLogin is returned for a wrong username or password (never saying which).
var ErrBadLogin = errors.New("httpapi: wrong username or password")

// ErrBusy is returned when too many password checks are already running:
// the client should retry in a second.
var ErrBusy = errors.New("httpapi: too many logins at once; try again in a moment")

// ThrottleError says how long a throttled client should wait. It is
// ErrLocked or ErrBusy under errors.Is.
type ThrottleError struct {
	Wait time.Duration
	err  error
}

func (e *ThrottleError) Error() string { return e.err.Error() }
func (e *ThrottleError) Unwrap() error { return e.err }

// Limits is the login throttle. Password guessing is slowed per source
// address, per account from one source, and per account over all sources,
// but a failing stranger can never stop a correct password from another
// address: the per-account cap only turns away sources that have failed
// themselves (docs/roles.md, "Inloggning").
type Limits struct {
	// PairFree failures of one account from one source pass without delay;
	// each later failure doubles the wait, from BaseDelay up to MaxDelay.
	PairFree int
	// SourceFree failures from one source over all accounts pass without
	// delay. Higher than PairFree: a unit's phones may share one NAT address.
	SourceFree int
	// AccountCap failures of one account over all sources within Forget
	// put it on guard: only sources that have not failed are still checked.
	AccountCap int
	BaseDelay  time.Duration
	MaxDelay   time.Duration
	// Forget is how long after its last failure a record is dropped.
	Forget time.Duration
	// MaxEntries bounds each of the three maps; the oldest idle record is
	// evicted when one is full.
	MaxEntries int
	// MaxConcurrent bcrypt checks run at once, so a flood of passwords
	// cannot take the cores the alarm path needs; QueueWait bounds how
	// long a check waits for a slot before ErrBusy.
	MaxConcurrent int
	QueueWait     time.Duration
}

// DefaultLimits are the limits NewAuth uses.
func DefaultLimits() Limits {
	return Limits{PairFree: 5, SourceFree: 20, AccountCap: 100, BaseDelay: 2 * time.Second, MaxDelay: 15 * time.Minute,
		Forget: time.Hour, MaxEntries: 10000, MaxConcurrent: max(1, runtime.NumCPU()/2), QueueWait: 3 * time.Second}
}

// MaxUsername and MaxPassword bound what a login may send; longer is a
// wrong login (bcrypt reads at most 72 bytes anyway).
const (
	MaxUsername = 128
	MaxPassword = 1024
)

// sessionSweepAt is the number of sessions above which each login first
// drops the expired ones.
const sessionSweepAt = 1024

// okCacheTTL is how long a verified username and password are remembered,
// so an API client with HTTP Basic auth costs one bcrypt check, not one
// per request. Only a keyed hash (HMAC with a per-process key) is kept.
const (
	okCacheTTL = 2 * time.Minute
	okCacheMax = 1024
)

// strike counts one key's recent failures and the checks in flight. A
// check reserves its attempt (pending) under the lock before bcrypt runs,
// so parallel guesses cannot all slip through one check-then-act gap.
type strike struct {
	fails   int
	pending int
	last    time.Time // last failure
	until   time.Time // no check before this
}

// strikes is one bounded map of strikes.
type strikes struct {
	free int // failures before delays start
	m    map[string]*strike
}

// Auth holds accounts and sessions. Sessions are kept by the hash of
// their token only and, once Persist is called, written to the data
// directory so a hub restart does not silently log out a phone in a
// pocket (issue 15); they can be revoked (logout, RevokeUser) and expire
// as before (sessions.go).
type Auth struct {
	ttl time.Duration
	now func() time.Time
	lim Limits
	sem chan struct{}
	key []byte // HMAC key of the verified-credentials cache

	// checks counts bcrypt comparisons; throttled counts refused attempts;
	// running and peak are the comparisons under way, now and at most.
	checks, throttled atomic.Int64
	running, peak     atomic.Int32

	mu       sync.Mutex
	users    map[string]*User
	sessions map[string]*sessionRec // by tokenHash
	revoked  chan struct{}          // closed and replaced when sessions end
	path     string                 // sessions file; "" keeps them in memory
	saveMu   sync.Mutex
	saveErrs atomic.Int64
	sync     SessionSync // replicates sessions in a redundant group (sessionsync.go)
	syncErrs atomic.Int64
	sources  strikes // by source address
	pairs    strikes // by account and source
	accounts strikes // by account
	ok       map[[32]byte]okEntry
	dummy    []byte
}

type okEntry struct {
	user    *User
	expires time.Time
}

// NewAuth returns an Auth for users with DefaultLimits.
func NewAuth(users []User, ttl time.Duration, now func() time.Time) *Auth {
	return NewAuthLimits(users, ttl, now, DefaultLimits())
}

// NewAuthLimits returns an Auth for users with the given login limits;
// zero fields take the defaults.
func NewAuthLimits(users []User, ttl time.Duration, now func() time.Time, lim Limits) *Auth {
	if now == nil {
		now = time.Now
	}
	lim = lim.withDefaults()
	a := &Auth{ttl: ttl, now: now, lim: lim, users: map[string]*User{}, sessions: map[string]*sessionRec{}, revoked: make(chan struct{}),
		sources:  strikes{free: lim.SourceFree, m: map[string]*strike{}},
		pairs:    strikes{free: lim.PairFree, m: map[string]*strike{}},
		accounts: strikes{free: lim.AccountCap, m: map[string]*strike{}},
		ok:       map[[32]byte]okEntry{}, sem: make(chan struct{}, lim.MaxConcurrent), key: make([]byte, 32)}
	_, _ = rand.Read(a.key)
	cost := 0
	for i := range users {
		u := users[i]
		a.users[u.Username] = &u
		if c, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil && c > cost {
			cost = c
		}
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	// Unknown users are checked against a dummy hash of the same cost as
	// the real ones, made once here, so the answer takes as long whether
	// or not the username exists.
	a.dummy, _ = bcrypt.GenerateFromPassword([]byte(randomToken()), cost)
	return a
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.PairFree <= 0 {
		l.PairFree = d.PairFree
	}
	if l.SourceFree <= 0 {
		l.SourceFree = d.SourceFree
	}
	if l.AccountCap <= 0 {
		l.AccountCap = d.AccountCap
	}
	if l.BaseDelay <= 0 {
		l.BaseDelay = d.BaseDelay
	}
	if l.MaxDelay <= 0 {
		l.MaxDelay = d.MaxDelay
	}
	if l.Forget <= 0 {
		l.Forget = d.Forget
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = d.MaxConcurrent
	}
	if l.QueueWait <= 0 {
		l.QueueWait = d.QueueWait
	}
	return l
}

// Checks is how many passwords were compared with bcrypt.
func (a *Auth) Checks() int64 { return a.checks.Load() }

// Throttled is how many login attempts were refused unchecked (429).
func (a *Auth) Throttled() int64 { return a.throttled.Load() }

// Tracked is how many records each throttle map holds: sources, account
// and source pairs, accounts.
func (a *Auth) Tracked() (sources, pairs, accounts int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sources.m), len(a.pairs.m), len(a.accounts.m)
}

// Known reports whether username is a configured account (for logs: an
// unknown "username" may be a password typed into the wrong field).
func (a *Auth) Known(username string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.users[username] != nil
}

// Check verifies a username and password sent from source (a client
// address, see SourceKey), applying the throttle.
func (a *Auth) Check(ctx context.Context, source, username, password string) (*User, error) {
	if len(username) > MaxUsername || len(password) > MaxPassword {
		username, password = username[:min(len(username), MaxUsername)], ""
	}
	ck := a.cacheKey(username, password)
	now := a.now()
	a.mu.Lock()
	if e, ok := a.ok[ck]; ok && now.Before(e.expires) && password != "" {
		a.mu.Unlock()
		return e.user, nil
	}
	r, wait := a.reserveLocked(now, source, username)
	u := a.users[username]
	a.mu.Unlock()
	if r == nil {
		a.throttled.Add(1)
		return nil, &ThrottleError{Wait: wait, err: ErrLocked}
	}
	if err := a.acquire(ctx); err != nil {
		a.finish(r, outcomeNone)
		a.throttled.Add(1)
		return nil, &ThrottleError{Wait: time.Second, err: ErrBusy}
	}
	hash := a.dummy
	if u != nil {
		hash = []byte(u.PasswordHash)
	}
	a.checks.Add(1)
	if n := a.running.Add(1); n > a.peak.Load() {
		a.peak.Store(n) // racy max, good enough for a gauge
	}
	bad := bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u == nil || password == ""
	a.running.Add(-1)
	<-a.sem
	if bad {
		a.finish(r, outcomeFail)
		return nil, ErrBadLogin
	}
	a.finish(r, outcomeOK)
	a.mu.Lock()
	a.rememberLocked(ck, u, a.now())
	a.mu.Unlock()
	return u, nil
}

func (a *Auth) acquire(ctx context.Context) error {
	select {
	case a.sem <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(a.lim.QueueWait)
	defer t.Stop()
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reservation is one attempt's claim on its three records.
type reservation struct {
	source, pair, account string
	s, p, acc             *strike
}

type outcome int

const (
	outcomeNone outcome = iota // not checked (no bcrypt slot)
	outcomeFail
	outcomeOK
)

// reserveLocked claims an attempt for username from source, or says how
// long to wait. The records are found or made here, so the maps stay
// bounded (entries evicted) before anything is counted.
func (a *Auth) reserveLocked(now time.Time, source, username string) (*reservation, time.Duration) {
	r := &reservation{source: source, pair: username + "\x00" + source, account: username}
	s, p, acc := a.sources.get(now, r.source, a.lim), a.pairs.get(now, r.pair, a.lim), a.accounts.get(now, r.account, a.lim)
	if w := s.wait(now, a.sources.free); w > 0 {
		return nil, w
	}
	if w := p.wait(now, a.pairs.free); w > 0 {
		return nil, w
	}
	// On guard: many sources have failed on this account. A source with no
	// failures of its own (the nurse's phone) is still checked, one at a
	// time; the others wait.
	if acc != nil && acc.fails >= a.accounts.free {
		clean := (s == nil || s.fails == 0 && s.pending == 0) && (p == nil || p.fails == 0)
		if !clean {
			return nil, a.lim.BaseDelay
		}
	}
	r.s = a.sources.make(now, r.source, s, a.lim)
	r.p = a.pairs.make(now, r.pair, p, a.lim)
	r.acc = a.accounts.make(now, r.account, acc, a.lim)
	if r.s == nil || r.p == nil || r.acc == nil {
		// Every record in a full map has a check in flight: refuse
		// rather than grow.
		a.undoLocked(r)
		return nil, time.Second
	}
	r.s.pending++
	r.p.pending++
	r.acc.pending++
	return r, 0
}

func (a *Auth) undoLocked(r *reservation) {
	for _, x := range []struct {
		st  *strikes
		key string
		s   *strike
	}{{&a.sources, r.source, r.s}, {&a.pairs, r.pair, r.p}, {&a.accounts, r.account, r.acc}} {
		if x.s != nil && x.s.fails == 0 && x.s.pending == 0 {
			delete(x.st.m, x.key)
		}
	}
}

// finish settles a reservation: a failure counts against all three records
// and may start (or double) a delay; a success clears the account-and-
// source record only, so a correct login does not wash a source's or an
// account's failures away.
func (a *Auth) finish(r *reservation, o outcome) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	r.s.pending--
	r.p.pending--
	r.acc.pending--
	switch o {
	case outcomeFail:
		r.s.fail(now, a.sources.free, a.lim)
		r.p.fail(now, a.pairs.free, a.lim)
		r.acc.fail(now, a.accounts.free, a.lim)
	case outcomeOK:
		r.p.fails, r.p.until = 0, time.Time{}
	}
	a.undoLocked(r)
}

func (s *strike) fail(now time.Time, free int, lim Limits) {
	s.fails++
	s.last = now
	if s.fails >= free {
		d := lim.BaseDelay
		for i := free; i < s.fails && d < lim.MaxDelay; i++ {
			d *= 2
		}
		s.until = now.Add(min(d, lim.MaxDelay))
	}
}

// wait is how long an attempt on s must wait (0: it may go now). Below
// free failures, attempts in flight count as failures to come; at or past
// it, one attempt at a time is checked once the delay has run out.
func (s *strike) wait(now time.Time, free int) time.Duration {
	if s == nil {
		return 0
	}
	if now.Before(s.until) {
		return s.until.Sub(now)
	}
	if s.fails < free && s.fails+s.pending < free || s.fails >= free && s.pending == 0 {
		return 0
	}
	return time.Second
}

func (s *strike) idle(now time.Time, lim Limits) bool {
	return s.pending == 0 && !now.Before(s.until) && now.Sub(s.last) >= lim.Forget
}

// get returns key's record, dropping it if forgotten.
func (st *strikes) get(now time.Time, key string, lim Limits) *strike {
	s := st.m[key]
	if s != nil && s.idle(now, lim) {
		delete(st.m, key)
		return nil
	}
	return s
}

// make returns s, or a new record for key, evicting when the map is full:
// first every forgotten record, then the one idle longest. It returns nil
// if nothing can be evicted.
func (st *strikes) make(now time.Time, key string, s *strike, lim Limits) *strike {
	if s != nil {
		return s
	}
	if len(st.m) >= lim.MaxEntries {
		var oldest string
		var at time.Time
		for k, x := range st.m {
			if x.idle(now, lim) {
				delete(st.m, k)
				continue
			}
			if x.pending == 0 && (oldest == "" || x.last.Before(at)) {
				oldest, at = k, x.last
			}
		}
		if len(st.m) >= lim.MaxEntries {
			if oldest == "" {
				return nil
			}
			delete(st.m, oldest)
		}
	}
	s = &strike{}
	st.m[key] = s
	return s
}

func (a *Auth) cacheKey(username, password string) [32]byte {
	m := hmac.New(sha256.New, a.key)
	fmt.Fprintf(m, "%d:%s:%s", len(username), username, password)
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func (a *Auth) rememberLocked(k [32]byte, u *User, now time.Time) {
	if len(a.ok) >= okCacheMax {
		for key, e := range a.ok {
			if !now.Before(e.expires) {
				delete(a.ok, key)
			}
		}
		if len(a.ok) >= okCacheMax {
			clear(a.ok)
		}
	}
	a.ok[k] = okEntry{user: u, expires: now.Add(okCacheTTL)}
}

// Login checks credentials from source and opens a session.
func (a *Auth) Login(ctx context.Context, source, username, password string) (*Session, error) {
	u, err := a.Check(ctx, source, username, password)
	if err != nil {
		return nil, err
	}
	now := a.now()
	tok := randomToken()
	rec := &sessionRec{User: u.Username, Created: now, Expires: now.Add(a.ttl)}
	a.mu.Lock()
	if len(a.sessions) >= sessionSweepAt {
		// Expired sessions are otherwise dropped only when used again.
		a.sweepLocked(now)
	}
	a.sessions[tokenHash(tok)] = rec
	a.mu.Unlock()
	a.save()
	a.syncPut(tokenHash(tok), rec)
	return &Session{Token: tok, User: u, CSRF: csrfFor(tok), Expires: rec.Expires}, nil
}

// Session returns the live session for token.
func (a *Auth) Session(token string) (*Session, bool) {
	if token == "" || len(token) > 256 {
		return nil, false
	}
	h := tokenHash(token)
	a.mu.Lock()
	rec, ok := a.sessions[h]
	if !ok {
		a.mu.Unlock()
		return nil, false
	}
	u := a.users[rec.User]
	if u == nil || a.now().After(rec.Expires) {
		delete(a.sessions, h)
		a.mu.Unlock()
		return nil, false
	}
	a.mu.Unlock()
	return &Session{Token: token, User: u, CSRF: csrfFor(token), Expires: rec.Expires}, true
}

// Logout ends a session.
func (a *Auth) Logout(token string) {
	a.mu.Lock()
	_, ok := a.sessions[tokenHash(token)]
	delete(a.sessions, tokenHash(token))
	if ok {
		a.signalLocked()
	}
	a.mu.Unlock()
	if ok {
		a.save()
		a.syncDelete(tokenHash(token))
	}
}

// ValidCSRF compares the session's CSRF token in constant time.
func (s *Session) ValidCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}
