package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/vaka-care/vaka/internal/record"
)

// sessionRec is one session as stored: never its token, only the token's
// hash is its key, so a copy of the file logs nobody in.
type sessionRec struct {
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// sessionsFile is the on-disk form (data_dir/sessions.json).
type sessionsFile struct {
	Version  int                    `json:"version"`
	Sessions map[string]*sessionRec `json:"sessions"` // by hex SHA-256 of the token
}

// tokenHash is a session's key: the token itself is a 256-bit random
// secret, so a plain SHA-256 (no salt, no stretching) is enough.
func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// csrfFor derives a session's CSRF token from its session token, so it
// need not be stored and is the same after a restart. Someone without
// the session token (a cross-site page) cannot compute it.
func csrfFor(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("vaka csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Persist loads the sessions saved at path (if any) and writes every later
// change there, atomically. Expired sessions and sessions of users no
// longer configured are dropped on load. An unreadable or damaged file is
// reported and set aside (staff log in again; nothing else is lost).
func (a *Auth) Persist(path string) error {
	a.mu.Lock()
	a.path = path
	a.mu.Unlock()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("httpapi: sessions: %w", err)
	}
	var f sessionsFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		_ = os.Rename(path, path+".damaged")
		if err == nil {
			err = fmt.Errorf("version %d", f.Version)
		}
		return fmt.Errorf("httpapi: sessions file %s unreadable, set aside as .damaged (staff log in again): %v", path, err)
	}
	now := a.now()
	a.mu.Lock()
	for k, r := range f.Sessions {
		if r == nil || len(k) != 64 || a.users[r.User] == nil || now.After(r.Expires) {
			continue
		}
		a.sessions[k] = r
	}
	a.mu.Unlock()
	return nil
}

// RevokeUser ends every session of username (a lost phone, a staff member
// who left) and returns how many there were. Open live streams of those
// sessions are told at once and close.
func (a *Auth) RevokeUser(username string) int {
	a.mu.Lock()
	var keys []string
	for k, r := range a.sessions {
		if r.User == username {
			delete(a.sessions, k)
			keys = append(keys, k)
		}
	}
	n := len(keys)
	if n > 0 {
		a.signalLocked()
	}
	a.mu.Unlock()
	if n > 0 {
		a.save()
		a.syncDelete(keys...)
	}
	return n
}

// Sessions counts the live sessions of each user (for the admin).
func (a *Auth) Sessions() map[string]int {
	now := a.now()
	out := map[string]int{}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.sessions {
		if !now.After(r.Expires) {
			out[r.User]++
		}
	}
	return out
}

// SaveFailures counts writes of the sessions file that failed (exported
// as a metric: sessions then would not survive a restart).
func (a *Auth) SaveFailures() int64 { return a.saveErrs.Load() }

// revokedSignal is closed when any session ends by logout or revocation;
// a live stream then checks whether its own session is still valid.
func (a *Auth) revokedSignal() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.revoked
}

func (a *Auth) signalLocked() {
	close(a.revoked)
	a.revoked = make(chan struct{})
}

func (a *Auth) sweepLocked(now time.Time) {
	for k, x := range a.sessions {
		if now.After(x.Expires) {
			delete(a.sessions, k)
		}
	}
}

// save writes the sessions file. saveMu orders whole snapshot-and-write
// steps, so a later change is never overwritten by an earlier snapshot.
func (a *Auth) save() {
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	a.mu.Lock()
	path := a.path
	if path == "" {
		a.mu.Unlock()
		return
	}
	a.sweepLocked(a.now())
	f := sessionsFile{Version: 1, Sessions: make(map[string]*sessionRec, len(a.sessions))}
	for k, r := range a.sessions {
		c := *r
		f.Sessions[k] = &c
	}
	a.mu.Unlock()
	b, err := json.Marshal(f)
	if err == nil {
		err = record.WriteFile(path, b, 0o600)
	}
	if err != nil {
		a.saveErrs.Add(1)
	}
}

// DisplayName is a user's display name (users[].name), or the login
// name if none is configured.
func (a *Auth) DisplayName(username string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if u := a.users[username]; u != nil && u.Name != "" {
		return u.Name
	}
	return username
}

// DisplayNames maps every configured login to its display name.
func (a *Auth) DisplayNames() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]string, len(a.users))
	for k, u := range a.users {
		n := u.Name
		if n == "" {
			n = k
		}
		out[k] = n
	}
	return out
}
