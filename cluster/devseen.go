package cluster

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DeviceSeen is one device's devices-seen.json record (service.SeenRecord
// has the same fields): when it was last heard, its last battery level.
type DeviceSeen struct {
	LastSeen  time.Time  `json:"last_seen"`
	Battery   *int       `json:"battery,omitempty"`
	BatteryAt *time.Time `json:"battery_at,omitempty"`
}

// SeenLocal is a hub's own record of devices seen (service.DevicesSeen,
// adapted in cmd/vaka).
type SeenLocal interface {
	Merge(map[string]DeviceSeen) int
	Apply(key string, rec DeviceSeen)
	SetSync(to SeenSink) // nil: stop
}

// SeenSink is where a hub's devices seen go: one device's record
// (PutSeen), and every device's last-heard time in a few shard values at
// each flush (PutHeard, devheard.go). DevicesSeen is one.
type SeenSink interface {
	PutSeen(device string, rec DeviceSeen) error
	PutHeard(heard map[string]time.Time) (int, error)
}

// DevicesSeen replicates devices-seen.json (when each device was last
// heard, for the device page only; supervision does not use it) through
// its own key-value bucket, <stream>_SEEN, one key per device: a region's
// fleet is too large for one value. The key is the device's
// "<site>/<device>" in unpadded base64url, so any device name makes a
// valid key. Records not written for seenKeep are dropped by the bucket
// (a device removed from the config).
type DevicesSeen struct {
	m     *kvMirror[DeviceSeen]
	heard *heardShards // last-heard times, devheard.go
}

const seenKeep = 90 * 24 * time.Hour

func (o *Options) seenBucket() string { return o.Stream + "_SEEN" }

// OpenDevicesSeen makes sure the bucket exists and returns it.
func (n *Node) OpenDevicesSeen(ctx context.Context) (*DevicesSeen, error) {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := n.js.CreateOrUpdateKeyValue(c, jetstream.KeyValueConfig{
		Bucket:      n.opts.seenBucket(),
		Description: "Vaka redundant group: when each device was last heard (device page)",
		History:     1,
		TTL:         seenKeep,
		Replicas:    n.opts.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: devices seen bucket: %w", err)
	}
	hkv, err := n.js.CreateOrUpdateKeyValue(c, jetstream.KeyValueConfig{
		Bucket:      n.opts.heardBucket(),
		Description: "Vaka redundant group: when each device was last heard, a few shards a minute (device page)",
		History:     1,
		TTL:         heardKeep,
		Replicas:    n.opts.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: last-heard bucket: %w", err)
	}
	m := newMirror(n, kv, "", "shared.seen-seeded", "devices seen",
		"the next active hub's device page may show that device as never heard",
		func(r DeviceSeen) bool { return !r.LastSeen.IsZero() })
	m.readWithin = 2 * time.Minute // a region's fleet: hundreds of thousands of keys
	return &DevicesSeen{m: m, heard: &heardShards{kv: hkv, written: map[string]uint64{}}}, nil
}

func seenKey(device string) string { return base64.RawURLEncoding.EncodeToString([]byte(device)) }

func seenDevice(key string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	return string(b), err == nil && len(b) > 0
}

// PutSeen replicates one device's record.
func (d *DevicesSeen) PutSeen(device string, rec DeviceSeen) error {
	return d.m.put(seenKey(device), rec)
}

// Attach merges the group's records into local (each device's newer
// record wins: a last-heard time only grows), with the last-heard times
// of the shards (devheard.go) folded in, makes local send its new
// records here, and applies the group's until stop is called. Reading a
// large fleet takes a while: call it beside the hub, not before it. If
// the shards could not be read, Attach still attaches the records and
// returns a stop with an error wrapping ErrHeardNotRead.
func (d *DevicesSeen) Attach(ctx context.Context, local SeenLocal) (stop func(), err error) {
	heard, herr := d.readHeard(ctx)
	stop, err = d.m.attach(ctx, mirrorLocal[DeviceSeen]{
		// No seeding here: local sends what the group lacks (its own
		// older records too) in the background, at its next flush,
		// instead of a put per device before the hub's web opens.
		own: func() map[string]DeviceSeen { return nil },
		replace: func(group map[string]DeviceSeen) int {
			byDevice := make(map[string]DeviceSeen, len(group))
			for k, r := range group {
				if dev, ok := seenDevice(k); ok {
					byDevice[dev] = r
				}
			}
			for dev, at := range heard {
				if r := byDevice[dev]; at.After(r.LastSeen) {
					r.LastSeen = at
					byDevice[dev] = r
				}
			}
			return local.Merge(byDevice)
		},
		put: func(k string, r DeviceSeen) {
			if dev, ok := seenDevice(k); ok {
				local.Apply(dev, r)
			}
		},
		del: func(string) {}, // an expired record: the hub's own stays
		hook: func(on bool) {
			if on {
				local.SetSync(d)
			} else {
				local.SetSync(nil)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if herr != nil {
		d.m.n.log.Error("cluster: the group's last-heard times not read; the device page shows older ones", "err", herr)
	}
	return stop, herr
}
