package rules

import "testing"

// actionKey is rule/site/device whatever the device built last, and
// reuses the string only when it is exactly that.
func TestActionKeyReusesOnlyTheSameKey(t *testing.T) {
	ds := &devState{}
	steps := []struct{ rule, site, dev string }{
		{"call_button", "s1", "b1"},
		{"call_button", "s1", "b1"},
		{"fall", "s1", "b1"},
		{"call_button", "s1", "b1"},
		// Same length, different split: must not match the cached key.
		{"call_button", "s1/b", "1"},
		{"call_button/s1", "b", "1"},
		{"call_butto", "ns1", "b1"},
		{"call_button", "s1", "b2"},
		{"", "", ""},
	}
	for _, s := range steps {
		want := s.rule + "/" + s.site + "/" + s.dev
		if got := ds.actionKey(s.rule, s.site, s.dev); got != want {
			t.Fatalf("actionKey(%q, %q, %q) = %q, want %q", s.rule, s.site, s.dev, got, want)
		}
	}
	var none *devState
	if got := none.actionKey("r", "s", "d"); got != "r/s/d" {
		t.Fatalf("nil devState: %q", got)
	}
}
