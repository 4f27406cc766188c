package httpapi

import (
	"fmt"
	"io"
	"net/http"
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

// streamFeed serves the stream from a feed queue until the client goes,
// a write fails, or the queue is cut (the client then reconnects and
// refetches everything), or the session ends (a "logout" event, as in
// stream). The hello frame has been written.
func (s *server) streamFeed(w http.ResponseWriter, r *http.Request, fl http.Flusher, writeBy func(), q *feed.Queue, class int, technical bool,
	sc *streamControl) {
	tick := time.NewTicker(s.o.StreamKeepAlive)
	defer tick.Stop()
	buf := make([]feed.Frame, 0, streamBurst)
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
			// Everything waiting, up to a burst, goes out in one flush:
			// care frames first, then a summary, then technical frames.
			var cut bool
			buf, cut = q.Next(buf[:0], streamBurst)
			if cut {
				fl.Flush()
				return
			}
			if len(buf) == 0 {
				continue
			}
			writeBy()
			for i, f := range buf {
				buf[i] = feed.Frame{}
				if err := s.writeFeedFrame(w, f, class, technical); err != nil {
					return
				}
			}
			fl.Flush()
		}
	}
}

// writeFeedFrame writes one frame: an alarm, or a summary
// ("event: skipped") telling the client that technical updates were
// dropped and it must refetch the list.
func (s *server) writeFeedFrame(w io.Writer, f feed.Frame, class int, technical bool) error {
	if f.Alarm == nil {
		_, err := fmt.Fprintf(w, "event: skipped\ndata: {\"technical_skipped\":%d}\n\n", f.Skipped)
		return err
	}
	if technical && f.Alarm.Kind != alarm.KindTechnical {
		return nil // not for this role
	}
	return s.writeFrame(w, f.Alarm, class)
}
