package httpapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// User is a staff account as the web layer sees it.
type User struct {
	Username     string
	Name         string
	Role         string // staff, lead, admin
	PasswordHash string
}

// Session is a logged-in browser.
type Session struct {
	Token   string
	User    *User
	CSRF    string
	Expires time.Time
}

// Lockout policy: after MaxFailures wrong passwords within LockFor, the
// account is locked for LockFor. It slows password guessing without letting
// one stranger lock night staff out for long.
const (
	MaxFailures = 5
	LockFor     = 15 * time.Minute
)

// ErrLocked is returned while an account is locked out.
var ErrLocked = errors.New("httpapi: too many failed logins; try again later")

// ErrBadLogin is returned for a wrong username or password (never saying which).
var ErrBadLogin = errors.New("httpapi: wrong username or password")

// Auth holds accounts and sessions in memory. Sessions do not survive a
// restart: staff log in again, which is safer than a stolen cookie that
// outlives the hub.
type Auth struct {
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	users    map[string]*User
	sessions map[string]*Session
	failures map[string][]time.Time
	dummy    []byte
}

// NewAuth returns an Auth for users.
func NewAuth(users []User, ttl time.Duration, now func() time.Time) *Auth {
	if now == nil {
		now = time.Now
	}
	a := &Auth{ttl: ttl, now: now, users: map[string]*User{}, sessions: map[string]*Session{}, failures: map[string][]time.Time{}}
	for i := range users {
		u := users[i]
		a.users[u.Username] = &u
	}
	// Compare against a dummy hash for unknown users so timing does not
	// reveal which usernames exist.
	a.dummy, _ = bcrypt.GenerateFromPassword([]byte("vaka-dummy"), bcrypt.MinCost)
	return a
}

// Check verifies a username and password, applying the lockout.
func (a *Auth) Check(username, password string) (*User, error) {
	now := a.now()
	a.mu.Lock()
	recent := a.recentFailuresLocked(username, now)
	u := a.users[username]
	a.mu.Unlock()
	if len(recent) >= MaxFailures {
		return nil, ErrLocked
	}
	hash := a.dummy
	if u != nil {
		hash = []byte(u.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u == nil {
		a.mu.Lock()
		a.failures[username] = append(a.recentFailuresLocked(username, now), now)
		a.mu.Unlock()
		return nil, ErrBadLogin
	}
	a.mu.Lock()
	delete(a.failures, username)
	a.mu.Unlock()
	return u, nil
}

func (a *Auth) recentFailuresLocked(username string, now time.Time) []time.Time {
	fs := a.failures[username]
	i := 0
	for _, t := range fs {
		if now.Sub(t) < LockFor {
			fs[i] = t
			i++
		}
	}
	fs = fs[:i]
	if len(fs) == 0 {
		delete(a.failures, username)
	} else {
		a.failures[username] = fs
	}
	return fs
}

// Login checks credentials and opens a session.
func (a *Auth) Login(username, password string) (*Session, error) {
	u, err := a.Check(username, password)
	if err != nil {
		return nil, err
	}
	s := &Session{Token: randomToken(), User: u, CSRF: randomToken(), Expires: a.now().Add(a.ttl)}
	a.mu.Lock()
	a.sessions[s.Token] = s
	a.mu.Unlock()
	return s, nil
}

// Session returns the live session for token.
func (a *Auth) Session(token string) (*Session, bool) {
	if token == "" {
		return nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[token]
	if !ok {
		return nil, false
	}
	if a.now().After(s.Expires) {
		delete(a.sessions, token)
		return nil, false
	}
	return s, true
}

// Logout ends a session.
func (a *Auth) Logout(token string) {
	a.mu.Lock()
	delete(a.sessions, token)
	a.mu.Unlock()
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
