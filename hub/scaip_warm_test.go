package hub

import "testing"

// The unit index is built when the receiver starts and when the config
// is reloaded, not by the first message after either.
func TestSCAIPUnitIndexBuiltBeforeFirstMessage(t *testing.T) {
	h, _, _ := scaipHub(t, t.TempDir(), newClock(dayTime)) // registers the metrics: the receiver starts
	built := func() bool {
		h.sc.mu.Lock()
		defer h.sc.mu.Unlock()
		return h.sc.forCfg == h.Config() && len(h.sc.units) == 3
	}
	if !built() {
		t.Fatal("unit index not built when the receiver started")
	}
	h.Reload(loadConfig(t, scaipYAML))
	if !built() {
		t.Fatal("unit index of the reloaded config not built at the reload")
	}
}
