package hub

import (
	"encoding/json"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
)

// Journal is what the hub needs of its alarm journal. The local file
// (*store.Journal) is the default; package cluster provides one
// replicated on NATS JetStream for a redundant group of hubs
// (docs/scale-out.md). Either way the hub's durability rule is the same:
// Append returning nil means the transition is kept (in the OS for the
// file, acknowledged by a quorum of replicas for the cluster), and only
// then is the event acknowledged.
type Journal interface {
	Append(t *alarm.Transition) error
	AppendRecord(rt string, at time.Time, body any) error
	AppendRecords(rt string, items []store.RecordItem) error
	// Read reads back the transitions at the given positions
	// (Transition.Rec), for an alarm's older history.
	Read(recs []int64) ([]alarm.Transition, error)
	// Records hands over the supervision records read at open, once.
	Records() []store.Record
	Loss() store.Loss
	LossTotals() store.LossCounts
	SyncWindow() time.Duration
	Stats() store.Stats
	Close() error
}

var _ Journal = (*store.Journal)(nil)

// StateKeeper is a journal that also keeps small named state the hub
// would otherwise write to a file in data_dir: the replicated journal
// (package cluster), so that the silences an operator set are the same on
// whichever hub of a redundant group is active. SaveState must be as
// durable as Append; State returns the last state saved under name.
type StateKeeper interface {
	SaveState(name string, body []byte) error
	State(name string) ([]byte, bool)
}

// encodedAppender is a journal that takes records already encoded (the
// local file: store.Journal.AppendEncoded), so a night's look-ins skip
// encoding/json.
type encodedAppender interface {
	AppendEncoded(rt string, items []store.EncodedItem) error
}

// appendEncoded writes items with AppendEncoded where j has it, else
// through AppendRecords (the replicated journal), each body as the JSON it
// already is. The bodies may be reused after it returns. All or none on
// the local file; the replicated journal writes records in chunks.
func appendEncoded(j Journal, rt string, items []store.EncodedItem) error {
	if e, ok := j.(encodedAppender); ok {
		return e.AppendEncoded(rt, items)
	}
	rs := make([]store.RecordItem, len(items))
	for i, it := range items {
		rs[i] = store.RecordItem{At: it.At, Body: json.RawMessage(append([]byte(nil), it.Body...))}
	}
	return j.AppendRecords(rt, rs)
}
