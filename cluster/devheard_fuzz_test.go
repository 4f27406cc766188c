package cluster

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeHeard: a last-heard shard read from the group is outside
// input. Whatever the bytes, decodeHeard returns an error or only
// devices named "<site>/<device>" with a time after 1970, and a decoded
// shard encodes back to the same times.
func FuzzDecodeHeard(f *testing.F) {
	f.Add([]byte(`{"solrosen/rum-0001":1764799200}`))
	f.Add([]byte(`{"solrosen/rum-0001":-1}`))
	f.Add([]byte(`{"":5}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"a/b":1e400}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeHeard(b)
		if err != nil {
			return
		}
		raw := map[string]int64{}
		for dev, at := range got {
			if !strings.Contains(dev, "/") || at.Unix() <= 0 {
				t.Fatalf("accepted %q at %v", dev, at)
			}
			raw[dev] = at.Unix()
		}
		enc, _ := json.Marshal(raw)
		again, err := decodeHeard(enc)
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-decoded %d of %d: %v", len(again), len(got), err)
		}
	})
}
