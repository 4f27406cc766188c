package scaipsip

import (
	"sync"
	"sync/atomic"

	"github.com/vaka-care/vaka/scaip"
)

// answered is one <mrs> for a waiting send.
type answered struct {
	mrs  *scaip.Response
	body []byte
}

// waiters routes each <mrs> to the send waiting for its ref. SCAIP
// matches an answer to its request only by ref (the <mrs> is a MESSAGE of
// its own), so a sender with overlapping exchanges must do the same: a
// single queue would hand one hand-over's answer to another's send, which
// would drop it as not its own and wait in vain. Two sends with the same
// ref (an IN while the ME is resent) take answers in the order they were
// sent; the standard's <mrs> does not say which message it answers, and
// both belong to the same event. A send with no ref of its own (a body
// that does not parse) takes any answer no one else waits for.
type waiters struct {
	mu sync.Mutex
	by map[string][]chan answered
}

func (w *waiters) add(ref string) chan answered {
	c := make(chan answered, 1)
	w.mu.Lock()
	if w.by == nil {
		w.by = map[string][]chan answered{}
	}
	w.by[ref] = append(w.by[ref], c)
	w.mu.Unlock()
	return c
}

func (w *waiters) remove(ref string, c chan answered) {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.by[ref]
	for i, x := range l {
		if x == c {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(w.by, ref)
	} else {
		w.by[ref] = l
	}
}

// deliver gives r to the oldest send waiting for its ref (else to one
// waiting for any) and reports whether one took it.
func (w *waiters) deliver(r *scaip.Response, body []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ref := r.Ref
	l := w.by[ref]
	if len(l) == 0 {
		ref, l = "", w.by[""]
	}
	if len(l) == 0 {
		return false
	}
	c := l[0]
	if len(l) == 1 {
		delete(w.by, ref)
	} else {
		w.by[ref] = l[1:]
	}
	c <- answered{mrs: r, body: body} // buffered 1, and removed: never blocks
	return true
}

// senderStats count what a long-lived sender did.
type senderStats struct {
	sent, challenges, unmatched, foreign atomic.Int64
}

// SenderStats is a snapshot of a Sender's counters.
type SenderStats struct {
	Sent       int64 // requests sent (each Send once, however many SIP tries)
	Challenges int64 // 401 challenges taken: one per nonce, not per message
	Unmatched  int64 // <mrs> that no waiting send took (late, for no send of ours, garbage)
	Foreign    int64 // MESSAGEs from an address not the receiver's: refused 403
}

// Stats reports the sender's counters.
func (s *Sender) Stats() SenderStats {
	return SenderStats{Sent: s.stats.sent.Load(), Challenges: s.stats.challenges.Load(), Unmatched: s.stats.unmatched.Load(), Foreign: s.stats.foreign.Load()}
}
