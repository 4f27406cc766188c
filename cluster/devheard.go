package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Last-heard times, shared each minute in a few messages
//
// A device's own key in the devices-seen bucket is written when the
// device is new, when its battery level changes, and otherwise rarely
// (service: seenReplicateEvery): putting every supervised device through
// the group's quorum every minute would cost a message per device per
// minute. So a hub that took over showed last-heard times up to that
// period old. The times themselves go instead into a second bucket,
// <stream>_HEARD, as a few shard values: each shard maps "<site>/<device>"
// to the Unix second it was last heard. At each flush (every minute) the
// active hub writes the shards whose content changed, at most
// heardMaxWrites of them and each at most heardPerShard devices (about
// 40 bytes each), so a flush is bounded in keys and bytes whatever the
// fleet: 1,000 devices are one message a minute. A hub that takes over
// reads the shards with the per-device records and keeps, per device,
// the newer time of the two: last-heard times are at most a flush (plus
// the time between a device's reports) old, and a device in a shard but
// without a record of its own (its put lost) is still known as heard.
//
// The shard keys carry the shard count ("h.<count>.<i>"): when the fleet
// grows past a multiple of heardPerShard the devices move to a new set of
// keys, and the old set, no longer written, expires after heardKeep (a
// reader takes each device's newest time over every key it finds, so an
// old set never hides a newer time).

// heardPerShard bounds the devices in one shard value (about 80 KB).
const heardPerShard = 2000

// heardMaxWrites bounds the shard writes of one flush (so up to 128,000
// devices a minute; a larger fleet's shards take turns).
const heardMaxWrites = 64

// heardKeep is how long an unwritten shard stays: while any device is
// heard its shard is rewritten every minute.
const heardKeep = 24 * time.Hour

func (o *Options) heardBucket() string { return o.Stream + "_HEARD" }

// ErrHeardNotRead says Attach took the devices-seen records over but not
// the last-heard shards: the device page shows last-heard times up to the
// per-device refresh period old.
var ErrHeardNotRead = errors.New("cluster: the group's last-heard times not read")

// heardShards is the active hub's side: what it wrote last, per key.
type heardShards struct {
	kv jetstream.KeyValue
	mu sync.Mutex
	// written is a hash of each shard's last value written, to skip
	// unchanged ones; cursor is the shard to start at next (a capped
	// flush resumes where it stopped).
	written map[string]uint64
	cursor  int
	// Messages and Bytes count the shard values written (for the
	// measurement in service's tests and for the logs).
	Messages, Bytes int64
}

func heardShardOf(device string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(device))
	return int(h.Sum32() % uint32(n))
}

// PutHeard shares the last-heard times of the devices in heard (every
// device this hub heard since it started): each shard that changed since
// it was last written, within this flush's bounds. It returns the shard
// values written; on an error the rest wait for the next flush.
func (d *DevicesSeen) PutHeard(heard map[string]time.Time) (int, error) {
	h := d.heard
	if h == nil || len(heard) == 0 {
		return 0, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := (len(heard) + heardPerShard - 1) / heardPerShard
	shards := make([]map[string]int64, n)
	for i := range shards {
		shards[i] = make(map[string]int64, len(heard)/n+1)
	}
	for dev, at := range heard {
		shards[heardShardOf(dev, n)][dev] = at.Unix()
	}
	written := 0
	j := 0
	for ; j < n && written < heardMaxWrites; j++ {
		i := (h.cursor + j) % n
		b, err := json.Marshal(shards[i]) // keys sorted: equal content, equal bytes
		if err != nil {
			return written, err
		}
		key := "h." + strconv.Itoa(n) + "." + strconv.Itoa(i)
		sum := fnv.New64a()
		sum.Write(b)
		if v, ok := h.written[key]; ok && v == sum.Sum64() {
			continue
		}
		c, cancel := context.WithTimeout(context.Background(), d.m.timeout)
		_, err = h.kv.Put(c, key, b)
		cancel()
		if err != nil {
			h.cursor = i
			return written, fmt.Errorf("cluster: put last-heard times: %w", err)
		}
		h.written[key] = sum.Sum64()
		h.Messages++
		h.Bytes += int64(len(b))
		written++
	}
	h.cursor = (h.cursor + j) % n
	return written, nil
}

// HeardWritten is how many last-heard shard values this hub wrote, and
// their bytes.
func (d *DevicesSeen) HeardWritten() (messages, bytes int64) {
	if d.heard == nil {
		return 0, 0
	}
	d.heard.mu.Lock()
	defer d.heard.mu.Unlock()
	return d.heard.Messages, d.heard.Bytes
}

// decodeHeard reads one shard value: "<site>/<device>" to a Unix second.
// Anything else (not an object of positive integers, an empty device) is
// an error: the whole value is left out and counted as damaged.
func decodeHeard(b []byte) (map[string]time.Time, error) {
	var raw map[string]int64
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(raw))
	for dev, sec := range raw {
		if sec <= 0 || dev == "" || !strings.Contains(dev, "/") {
			return nil, fmt.Errorf("cluster: invalid last-heard entry")
		}
		out[dev] = time.Unix(sec, 0).UTC()
	}
	return out, nil
}

// readHeard reads every shard, each device's newest time over all of them.
func (d *DevicesSeen) readHeard(ctx context.Context) (map[string]time.Time, error) {
	c, cancel := context.WithTimeout(ctx, d.m.readWithin)
	defer cancel()
	w, err := d.heard.kv.WatchAll(c, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHeardNotRead, err)
	}
	defer w.Stop()
	out := map[string]time.Time{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("%w: watch ended", ErrHeardNotRead)
			}
			if e == nil {
				return out, nil
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue
			}
			times, err := decodeHeard(e.Value())
			if err != nil {
				d.m.n.damaged.Add(1)
				d.m.n.log.Warn("cluster: a damaged or invalid last-heard shard in the group's key-value bucket; left out", "bytes", len(e.Value()))
				continue
			}
			for dev, at := range times {
				if at.After(out[dev]) {
					out[dev] = at
				}
			}
		case <-c.Done():
			return nil, fmt.Errorf("%w: %w", ErrHeardNotRead, c.Err())
		}
	}
}
