// Package lograte keeps a flood of refused requests (a misconfigured unit
// resending, an attacker with a valid account) from turning into as many
// log lines: per reason, one line a second, carrying how many were left
// out. Metrics still count every one; only the log is thinned. The SCAIP
// listeners and the broker's connection refusals (broker/limits.go) use it.
package lograte

import (
	"sync"
	"time"
)

// Limiter allows one line per reason per Every (a second when zero). Use
// a fixed set of reasons: the maps hold one entry per reason.
type Limiter struct {
	Every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	left  map[string]int
}

// Allow reports whether a line for reason may be logged at now; when it
// may and lines were left out since the last, attrs gains "not_logged".
func (l *Limiter) Allow(reason string, now time.Time, attrs []any) (bool, []any) {
	every := l.Every
	if every == 0 {
		every = time.Second
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.left = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[reason]; ok && now.Sub(t) < every && now.Sub(t) >= 0 {
		l.left[reason]++
		return false, attrs
	}
	l.last[reason] = now
	if n := l.left[reason]; n > 0 {
		attrs = append(attrs, "not_logged", n)
		l.left[reason] = 0
	}
	return true, attrs
}
