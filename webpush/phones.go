package webpush

import "github.com/vaka-care/vaka/notify"

var _ notify.PhoneChecker = (*Sender)(nil)

// HasPhones reports whether user has a subscribed phone: without one,
// Push would send nothing, and the notifier does not start it.
func (s *Sender) HasPhones(user string) bool { return s.Store.HasUser(user) }

// HasUser reports whether user has any subscription.
func (s *Store) HasUser(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if sub.User == user {
			return true
		}
	}
	return false
}
