package cluster

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/httpapi"
)

func sessionUsers(t testing.TB) []httpapi.User {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("natt-2026"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return []httpapi.User{
		{Username: "anna", Role: httpapi.RoleStaff, PasswordHash: string(h)},
		{Username: "bo", Role: httpapi.RoleStaff, PasswordHash: string(h)},
	}
}

func attach(t testing.TB, s *Sessions, a *httpapi.Auth) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stop, err := s.Attach(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return stop
}

// waitFor polls cond every 20 ms for at most 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for range 250 {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not within 5 s: %s", what)
}

// TestIntegrationSessionsFollowFailover: on a real 3-node JetStream
// cluster, a session logged in on hub-a is valid on hub-b once hub-b is
// active (same token, same user, same expiry), and so is one hub-a had
// before the group existed (the first hub seeds the bucket with its own
// sessions), while a session the later hub-b kept
// in its own sessions file from an earlier turn, unknown to the group,
// is dropped. A logout on hub-b and a revocation on hub-b reach hub-a
// while both follow the bucket, and a revoked session stays revoked when
// hub-a takes over again, whatever hub-a's own file says.
func TestIntegrationSessionsFollowFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	ctx := context.Background()
	users := sessionUsers(t)
	dir := t.TempDir()

	na := connect(t, urls, "hub-a", 3*time.Second)
	sa, err := na.OpenSessions(ctx, 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	authA := httpapi.NewAuth(users, 12*time.Hour, nil)
	if err := authA.Persist(filepath.Join(dir, "a-sessions.json")); err != nil {
		t.Fatal(err)
	}
	// Before the group: a session of the single hub hub-a was. The first
	// hub to attach seeds the bucket with its own sessions.
	pre, err := authA.Login(ctx, "10.0.0.4", "anna", "natt-2026")
	if err != nil {
		t.Fatal(err)
	}
	stopA := attach(t, sa, authA)
	if _, ok := authA.Session(pre.Token); !ok {
		t.Fatal("hub-a's own session dropped when it seeded the new group")
	}
	anna, err := authA.Login(ctx, "10.0.0.5", "anna", "natt-2026")
	if err != nil {
		t.Fatal(err)
	}
	bo1, err := authA.Login(ctx, "10.0.0.6", "bo", "natt-2026")
	if err != nil {
		t.Fatal(err)
	}
	bo2, err := authA.Login(ctx, "10.0.0.7", "bo", "natt-2026")
	if err != nil {
		t.Fatal(err)
	}
	if f := authA.SyncFailures(); f != 0 {
		t.Fatalf("%d session changes not replicated", f)
	}

	// hub-b: its own file holds a session the group never had.
	nb := connect(t, urls, "hub-b", 3*time.Second)
	sb, err := nb.OpenSessions(ctx, 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	authB := httpapi.NewAuth(users, 12*time.Hour, nil)
	if err := authB.Persist(filepath.Join(dir, "b-sessions.json")); err != nil {
		t.Fatal(err)
	}
	stale, err := authB.Login(ctx, "10.0.0.8", "anna", "natt-2026") // no sync yet: local only
	if err != nil {
		t.Fatal(err)
	}
	stopB := attach(t, sb, authB)
	defer stopB()
	for _, s := range []*httpapi.Session{anna, bo1, bo2} {
		got, ok := authB.Session(s.Token)
		if !ok {
			t.Fatalf("%s's session from hub-a not valid on hub-b", s.User.Username)
		}
		if got.User.Username != s.User.Username || !got.Expires.Equal(s.Expires) || got.CSRF != s.CSRF {
			t.Errorf("session on hub-b: user %s expires %s, want %s %s (and the same CSRF token)",
				got.User.Username, got.Expires, s.User.Username, s.Expires)
		}
	}
	if _, ok := authB.Session(pre.Token); !ok {
		t.Error("the session hub-a had before the group is not valid on hub-b")
	}
	if _, ok := authB.Session(stale.Token); ok {
		t.Error("a session only in hub-b's own file survived taking over the group's sessions")
	}

	// Changes on hub-b reach hub-a while both follow the bucket.
	authB.Logout(anna.Token)
	if n := authB.RevokeUser("bo"); n != 2 {
		t.Fatalf("revoked %d sessions of bo on hub-b, want 2", n)
	}
	waitFor(t, "logout and revocation from hub-b applied on hub-a", func() bool {
		_, a := authA.Session(anna.Token)
		_, b1 := authA.Session(bo1.Token)
		_, b2 := authA.Session(bo2.Token)
		return !a && !b1 && !b2
	})

	// hub-a stops following (it was a standby meanwhile); bo logs in on
	// hub-b; hub-a's own file still lists nothing of that. When hub-a
	// takes over again it has bo's new session, and not the revoked ones.
	stopA()
	bo3, err := authB.Login(ctx, "10.0.0.6", "bo", "natt-2026")
	if err != nil {
		t.Fatal(err)
	}
	authA2 := httpapi.NewAuth(users, 12*time.Hour, nil)
	if err := authA2.Persist(filepath.Join(dir, "a-sessions.json")); err != nil {
		t.Fatal(err)
	}
	stopA2 := attach(t, sa, authA2)
	defer stopA2()
	if _, ok := authA2.Session(bo3.Token); !ok {
		t.Error("bo's session made on hub-b not valid on hub-a after the second takeover")
	}
	for _, s := range []*httpapi.Session{anna, bo1, bo2} {
		if _, ok := authA2.Session(s.Token); ok {
			t.Errorf("%s's ended session came back on hub-a", s.User.Username)
		}
	}
	if f := authA.SyncFailures() + authB.SyncFailures() + authA2.SyncFailures(); f != 0 {
		t.Errorf("%d session changes not replicated", f)
	}
}

// TestIntegrationShareValue: the first hub's offer is the group's value;
// a later hub gets it back instead of its own, also after reconnecting.
func TestIntegrationShareValue(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := connect(t, urls, "hub-a", 3*time.Second)
	b := connect(t, urls, "hub-b", 3*time.Second)
	got, err := a.ShareValue(ctx, "vapid", []byte("key-a"))
	if err != nil || string(got) != "key-a" {
		t.Fatalf("first offer: %q %v", got, err)
	}
	for range 2 {
		got, err = b.ShareValue(ctx, "vapid", []byte("key-b"))
		if err != nil || string(got) != "key-a" {
			t.Fatalf("later offer: %q %v, want the group's key-a", got, err)
		}
	}
	if got, err = a.ShareValue(ctx, "other", []byte("x")); err != nil || string(got) != "x" {
		t.Fatalf("another name: %q %v", got, err)
	}
}
