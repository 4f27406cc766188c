package hub

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// Small pieces of the alarm path that used to allocate on every raise
// (issue 20: in an all-alarm storm every allocation feeds the GC, which was
// about a fifth of the care path's CPU). Each gives the same strings as
// the code it replaced.

// alarmID is fmt.Sprintf("A%06d", n) in one allocation instead of two.
func alarmID(n uint64) string {
	var buf [24]byte
	b := append(buf[:0], 'A')
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], n, 10)
	for i := len(d); i < 6; i++ {
		b = append(b, '0')
	}
	return string(append(b, d...))
}

// ruleByMax bounds ruleBy's cache: rule names come from the code and the
// config, a few dozen; past the bound each call builds its string.
const ruleByMax = 1024

var ruleByCache struct {
	mu sync.RWMutex
	m  map[string]string
}

// ruleBy is "rule:" + rule, the By of a transition the rules decided,
// built once per rule name rather than once per alarm.
func ruleBy(rule string) string {
	ruleByCache.mu.RLock()
	s, ok := ruleByCache.m[rule]
	ruleByCache.mu.RUnlock()
	if ok {
		return s
	}
	s = "rule:" + rule
	ruleByCache.mu.Lock()
	if len(ruleByCache.m) < ruleByMax {
		if ruleByCache.m == nil {
			ruleByCache.m = map[string]string{}
		}
		ruleByCache.m[rule] = s
	}
	ruleByCache.mu.Unlock()
	return s
}

// eventKeyLocked is ev.Key(). For the event acceptWith is applying it is
// the key acceptWith already built for de-duplication (the same string,
// not a second copy).
func (h *Hub) eventKeyLocked(ev *event.Event) string {
	if ev == h.ln.ev {
		return h.ln.evKey
	}
	return ev.Key()
}

// countRaisedLocked counts a raise in vaka_alarms_raised_total{kind,rule}.
func (h *Hub) countRaisedLocked(kind alarm.Kind, rule string) {
	k := [2]string{string(kind), rule}
	c, ok := h.m.raisedBy[k]
	if !ok {
		c = h.m.raised.WithLabelValues(k[0], k[1])
		if h.m.raisedBy == nil {
			h.m.raisedBy = map[[2]string]prometheus.Counter{}
		}
		h.m.raisedBy[k] = c
	}
	c.Inc()
}

// countTransitionLocked counts t in vaka_alarm_transitions_total{action}.
func (h *Hub) countTransitionLocked(act alarm.Action) {
	c, ok := h.m.transBy[string(act)]
	if !ok {
		c = h.m.transitions.WithLabelValues(string(act))
		if h.m.transBy == nil {
			h.m.transBy = map[string]prometheus.Counter{}
		}
		h.m.transBy[string(act)] = c
	}
	c.Inc()
}
