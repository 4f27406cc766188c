package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vaka-care/vaka/alarm"
)

// A takeover asks nothing of JetStream's meta leader. When the old active
// hub's machine is lost it may have taken the meta leader with it, and
// while the others elect a new one (seconds) JetStream refuses stream
// info, message get and consumer requests ("JetStream cluster not
// available"), though the stream's own leader, elsewhere, still takes
// appends and direct gets. So a hub that took the lease:
//
//   - appends its term record right after what its follower read (the
//     usual case: the follower polls every followEvery and is caught up);
//   - if that is refused because the stream is longer, the refusal names
//     the stream's last sequence ("wrong last sequence: N"), and the
//     records in between are read by direct get from any current replica;
//   - only a large gap, or a refusal that names no sequence, falls back to
//     stream info and a replay consumer (meta leader needed).

// directCatchUp bounds the records a takeover reads one direct get each;
// more are replayed through a consumer.
const directCatchUp = 256

// lastSeqOf returns the stream's last sequence named in a refused
// expected-last-sequence append.
func lastSeqOf(err error) (uint64, bool) {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) || ae.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		return 0, false
	}
	_, num, ok := strings.Cut(ae.Description, "wrong last sequence: ")
	if !ok {
		return 0, false
	}
	seq, perr := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
	return seq, perr == nil
}

// catchUp reads the records after j.last up to end into each: by direct
// get when there are few, else (or if a direct get fails) by replay.
func (j *Journal) catchUp(ctx context.Context, end uint64, each func(alarm.Transition)) error {
	if end > j.last && end-j.last <= directCatchUp {
		for tries := 0; j.last < end && tries < 8; {
			// Short tries: a direct get may be routed to a replica just
			// cut off (its route not yet closed), and then waits its
			// whole timeout (2.3 s were seen in the partition test); a
			// retry reaches another replica.
			c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			m, err := j.n.st.GetMsg(c, j.last+1)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("cluster: journal catch-up at %d: %w", j.last+1, err)
				}
				// A replica a few milliseconds behind; another may
				// answer. After a few tries the replay below goes on
				// from j.last.
				tries++
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			if m.Sequence != j.last+1 {
				break
			}
			j.last = m.Sequence
			j.decode(m.Data, m.Sequence, each)
		}
		if j.last >= end {
			return nil
		}
	}
	return j.replay(ctx, end, each)
}

// streamEnd asks the stream (through the meta leader) for its last
// sequence: the fallback when a refusal did not name it.
func (j *Journal) streamEnd(ctx context.Context) (uint64, error) {
	info, err := j.n.st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster: journal stream info: %w", err)
	}
	return info.State.LastSeq, nil
}
