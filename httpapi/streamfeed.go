package httpapi

import (
	"errors"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/feed"
)

// Feeder is what the stream prefers over Subscribe: a queue with a care
// lane that is never dropped and a technical lane that coalesces and, for
// a slow screen, is dropped and summarised (package feed). The hub
// implements it; an Alarms without it gets the older channel stream.
type Feeder interface {
	Feed() (*feed.Queue, func())
}

// The writer takes frames from the queue in bursts of feedBurst and
// renders them into one buffer until it holds streamChunk bytes (a burst
// more at most) or the queue is empty; the buffer then goes to the socket
// in one write and one flush. At 20,000 alarms/s that is a few hundred
// writes a second, not one per frame, and a screen that is behind catches
// up in large pieces.
const (
	feedBurst   = 16
	streamChunk = 64 << 10
)

// streamFeed serves the stream from a feed queue until the client goes,
// a write fails or does not complete within the queue's stall timeout,
// the queue is cut (the client then reconnects and refetches everything),
// or the session ends (a "logout" event, as in stream). The hello frame
// has been written.
//
// A screen that reads slowly is never cut for being behind: each write
// of about streamChunk bytes gets the stall timeout of its own, so only a
// connection that accepts less than that in the whole timeout (none, in
// practice: a phone that vanished) ends. The queue applies the same
// timeout to a writer that stops taking frames.
func (s *server) streamFeed(w http.ResponseWriter, r *http.Request, _ http.Flusher, _ func(), q *feed.Queue, class int, technical bool,
	sc *streamControl) {
	rc := http.NewResponseController(w)
	stall := q.StallTimeout()
	writeBy := func() { _ = rc.SetWriteDeadline(time.Now().Add(stall)) }
	sc.writeBy = writeBy // pings and the logout frame get the same bound
	tick := time.NewTicker(s.o.StreamKeepAlive)
	defer tick.Stop()
	frames := make([]feed.Frame, 0, feedBurst)
	out := make([]byte, 0, streamChunk+8<<10)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sc.revoked:
			if sc.onRevoked() {
				return
			}
		case <-tick.C:
			if sc.onTick() {
				return
			}
		case <-q.Ready():
			// Drain what is queued, up to a chunk: care frames first,
			// then a summary, then technical frames.
			out = out[:0]
			cut := false
			for len(out) < streamChunk {
				frames, cut = q.Next(frames[:0], feedBurst)
				if cut || len(frames) == 0 {
					break
				}
				for i, f := range frames {
					frames[i] = feed.Frame{} // the snapshot is not kept by this buffer
					out = s.appendFeedFrame(out, f, class, technical)
				}
			}
			if len(out) > 0 || cut {
				writeBy()
				_, err := w.Write(out)
				if err == nil {
					err = rc.Flush()
				}
				if err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						q.Stalled() // the socket took nothing within the stall timeout
					}
					return
				}
			}
			if cut {
				return
			}
			if cap(out) > 4*streamChunk {
				out = make([]byte, 0, streamChunk+8<<10) // one huge frame: do not keep its buffer
			}
		}
	}
}

// appendFeedFrame appends one frame to b: an alarm, or a summary
// ("event: skipped") telling the client that technical updates were
// dropped and it must refetch the list. An alarm's frame is encoded once
// per viewer class (frameCache) and shared by every screen of the class.
func (s *server) appendFeedFrame(b []byte, f feed.Frame, class int, technical bool) []byte {
	if f.Alarm == nil {
		b = append(b, "event: skipped\ndata: {\"technical_skipped\":"...)
		b = strconv.AppendInt(b, int64(f.Skipped), 10)
		return append(b, "}\n\n"...)
	}
	a := f.Alarm
	if technical && a.Kind != alarm.KindTechnical {
		return b // not for this role
	}
	fr, err := s.cachedFrame(a, class)
	if err != nil {
		// None can fail (an alarm is plain data); the client's next list
		// fetch still has it.
		s.o.Logger.Error("httpapi: stream frame not encoded", "alarm", a.ID, "err", err)
		return b
	}
	return append(b, fr...)
}
