package notify_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaka-care/vaka/notify"
)

// phonesPush is a pushLog whose users have phones only if listed.
type phonesPush struct {
	pushLog
	phones map[string]bool
}

func (p *phonesPush) HasPhones(user string) bool { return p.phones[user] }

// A Pusher that says a user has no phone is not asked to push to them;
// the steps journaled are the same, and the user with a phone is pushed.
func TestNoPushToUserWithoutPhone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := tree(t, strings.Replace(routingYAML, "receiver: natt-solrosen\n        escalate: [lead, larmcentral]", "receiver: natt-solrosen\n        escalate: [lead]", 1))
		push := &phonesPush{phones: map[string]bool{"natt2": true}}
		time.Sleep(time.Until(time.Date(2026, 1, 15, 22, 30, 0, 0, time.UTC)))
		d := notify.New(notify.Options{Tree: tr, Pusher: push})
		h := &fakeHub{d: d}
		d.Start(h, nil)
		defer d.Close()
		raise(h, time.Now())
		synctest.Wait()
		if got := strings.Join(h.steps(), " "); got != "notify:0:natt1+natt2@0s" {
			t.Errorf("steps %s", got)
		}
		push.mu.Lock()
		defer push.mu.Unlock()
		if got := strings.Join(push.msgs, " "); got != "natt2:notify:A000001" {
			t.Errorf("pushes %q, want natt2's only", got)
		}
	})
}
