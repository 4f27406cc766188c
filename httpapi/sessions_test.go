package httpapi

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/testenv"
)

// Sessions survive a restart (a new Auth on the same file), are stored by
// the hash of their token only, keep their expiry and CSRF token, and end
// on logout, revocation and expiry, for the old and the new Auth alike.
func TestSessionsPersistRevokeExpire(t *testing.T) {
	c := newClock()
	users := []User{{Username: "natt1", Name: "Natt Ett", Role: RoleStaff, PasswordHash: testenv.Hash(t, "pw")},
		{Username: "natt2", Name: "Natt Två", Role: RoleStaff, PasswordHash: testenv.Hash(t, "pw")}}
	path := filepath.Join(t.TempDir(), "sessions.json")
	a1 := NewAuth(users, 12*time.Hour, c.now)
	if err := a1.Persist(path); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s1, err := a1.Login(ctx, "10.0.0.1", "natt1", "pw")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := a1.Login(ctx, "10.0.0.1", "natt2", "pw")
	s3, _ := a1.Login(ctx, "10.0.0.2", "natt2", "pw")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Session{s1, s2, s3} {
		if strings.Contains(string(b), s.Token) || strings.Contains(string(b), s.CSRF) {
			t.Fatalf("sessions file holds a token in clear: %s", b)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("sessions file mode %v, want 0600", fi.Mode().Perm())
	}

	// "Restart": a new Auth over the same file.
	c.add(time.Hour)
	a2 := NewAuth(users, 12*time.Hour, c.now)
	if err := a2.Persist(path); err != nil {
		t.Fatal(err)
	}
	got, ok := a2.Session(s1.Token)
	if !ok || got.User.Username != "natt1" || !got.Expires.Equal(s1.Expires) || !got.ValidCSRF(s1.CSRF) {
		t.Fatalf("after restart: %v %+v", ok, got)
	}
	if _, ok := a2.Session(s1.Token + "x"); ok {
		t.Fatal("a wrong token is a session")
	}

	// Revoking natt2 ends both her sessions, and only hers; it is saved.
	sig := a2.revokedSignal()
	if n := a2.RevokeUser("natt2"); n != 2 {
		t.Errorf("revoked %d sessions, want 2", n)
	}
	select {
	case <-sig:
	default:
		t.Error("revocation did not signal the live streams")
	}
	for _, s := range []*Session{s2, s3} {
		if _, ok := a2.Session(s.Token); ok {
			t.Error("a revoked session still works")
		}
	}
	a3 := NewAuth(users, 12*time.Hour, c.now)
	_ = a3.Persist(path)
	if _, ok := a3.Session(s2.Token); ok {
		t.Error("a revoked session came back after a restart")
	}
	if _, ok := a3.Session(s1.Token); !ok {
		t.Error("natt1's session lost with natt2's revocation")
	}
	// Logout ends one session, also across a restart.
	a3.Logout(s1.Token)
	a4 := NewAuth(users, 12*time.Hour, c.now)
	_ = a4.Persist(path)
	if _, ok := a4.Session(s1.Token); ok {
		t.Error("a logged-out session came back after a restart")
	}
	// Expiry is kept: a session saved 11 h ago ends 12 h after login.
	s4, _ := a4.Login(ctx, "10.0.0.1", "natt1", "pw")
	c.add(11 * time.Hour)
	a5 := NewAuth(users, 12*time.Hour, c.now)
	_ = a5.Persist(path)
	if _, ok := a5.Session(s4.Token); !ok {
		t.Error("a session within its 12 h lost at restart")
	}
	c.add(time.Hour + time.Second)
	if _, ok := a5.Session(s4.Token); ok {
		t.Error("an expired session still works")
	}
	// A user removed from the config loses her sessions.
	s5, _ := a5.Login(ctx, "10.0.0.1", "natt2", "pw")
	a6 := NewAuth(users[:1], 12*time.Hour, c.now)
	_ = a6.Persist(path)
	if _, ok := a6.Session(s5.Token); ok {
		t.Error("the session of a user no longer configured works")
	}

	// A damaged file is set aside, reported, and nobody is logged in.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	a7 := NewAuth(users, 12*time.Hour, c.now)
	if err := a7.Persist(path); err == nil {
		t.Error("a damaged sessions file was not reported")
	}
	if _, err := os.Stat(path + ".damaged"); err != nil {
		t.Errorf("damaged file not set aside: %v", err)
	}
	// An unwritable path is counted, not fatal.
	a8 := NewAuth(users, 12*time.Hour, c.now)
	_ = a8.Persist(filepath.Join(t.TempDir(), "missing-dir", "sessions.json"))
	if _, err := a8.Login(ctx, "10.0.0.9", "natt1", "pw"); err != nil {
		t.Fatal(err)
	}
	if a8.SaveFailures() != 1 {
		t.Errorf("save failures = %d, want 1", a8.SaveFailures())
	}
}

// A page opened logged out goes to the login with the page to return to;
// nothing but the request's own path can get there.
func TestLoginRedirectNext(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"/pilot", "/?next=%2Fpilot"},
		{"/pilot/trials/t1/report?x=1", "/?next=" + url.QueryEscape("/pilot/trials/t1/report?x=1")},
		{"/", "/"},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.uri, nil)
		if got := loginRedirect(r); got != tc.want {
			t.Errorf("%s → %s, want %s", tc.uri, got, tc.want)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.URL = &url.URL{Path: "//evil.example/x"}
	if got := loginRedirect(r); got != "/" {
		t.Errorf("//evil.example → %s, want /", got)
	}
}

// A live stream of a revoked session ends with a "logout" event at once.
func TestStreamLogoutOnRevoke(t *testing.T) {
	auth := NewAuth([]User{{Username: "natt1", Role: RoleStaff, PasswordHash: testenv.Hash(t, "pw")}}, time.Hour, nil)
	srv := httptest.NewServer(New(Options{Alarms: &queuedAlarms{ch: make(chan *alarm.Alarm)}, Auth: auth,
		StreamKeepAlive: time.Hour}))
	t.Cleanup(srv.Close)
	sess, err := auth.Login(context.Background(), "127.0.0.1", "natt1", "pw")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/stream", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: sess.Token})
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", err, resp)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "retry:") {
		t.Fatalf("first line %q", l)
	}
	start := time.Now()
	auth.RevokeUser("natt1")
	var lines []string
	for range 20 {
		l, err := br.ReadString('\n')
		if err != nil {
			break
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	if !strings.Contains(strings.Join(lines, "|"), "event: logout") {
		t.Fatalf("stream after revocation: %q", lines)
	}
	t.Logf("revocation → logout event: %v", time.Since(start))
}

// A sessions file of any content never panics the hub's start: it loads,
// or it is reported and set aside; a loaded session still needs its token.
func FuzzSessionsFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"sessions":{"` + strings.Repeat("a", 64) + `":{"user":"natt1","created":"2026-03-29T01:00:00Z","expires":"2099-01-01T00:00:00Z"}}}`))
	f.Add([]byte(`{"version":1,"sessions":{"x":null}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost) // cheap: NewAuth runs per input
	users := []User{{Username: "natt1", Role: RoleStaff, PasswordHash: string(h)}}
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "sessions.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		a := NewAuth(users, time.Hour, nil)
		_ = a.Persist(path)
		if _, ok := a.Session(strings.Repeat("a", 64)); ok {
			t.Fatal("a stored hash worked as a token")
		}
		_ = a.Sessions()
	})
}
