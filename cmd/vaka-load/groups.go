package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// groupFrames remembers, per group alarm whose frame listed fewer members
// than its count, when each of its frames arrived. A group card lists
// its first 50 members; the rest are on the staff screen only as the
// count, and a technician opens them from the card (the members
// endpoint). At the end of the run the load tool does the same, so a
// silent button beyond the first 50 is counted as detected when the
// first frame of its group at or after its own raise reached the screen.
type groupFrames struct {
	mu     sync.Mutex
	frames map[string][]int64 // group alarm id → frame times (fleet ns)
}

var countKey = []byte(`"count":`)

// see records a group frame that lists fewer members than its count.
func (g *groupFrames) see(line []byte, listed int, t int64) {
	id := field(line, idKey)
	k := bytes.Index(line, countKey)
	if len(id) == 0 || k < 0 {
		return
	}
	rest := line[k+len(countKey):]
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return
	}
	n, err := strconv.Atoi(string(rest[:end]))
	if err != nil || n <= listed {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.frames == nil {
		g.frames = map[string][]int64{}
	}
	g.frames[string(id)] = append(g.frames[string(id)], t)
}

// fetchMembers pages every remembered group's members from the hub and
// hands each member's device and the time staff could first have seen
// it to seen. Bounded: at most maxPages pages per group.
func (g *groupFrames) fetchMembers(ctx context.Context, base string, fleetBase time.Time, seen func(device string, t int64)) error {
	g.mu.Lock()
	groups := make(map[string][]int64, len(g.frames))
	for id, ts := range g.frames {
		groups[id] = slices.Clone(ts)
	}
	g.mu.Unlock()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	const limit, maxPages = 5000, 200
	for id, ts := range groups {
		for page := 0; page < maxPages; page++ {
			url := fmt.Sprintf("%s/api/v1/alarms/%s/members?offset=%d&limit=%d", base, id, page*limit, limit)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			req.SetBasicAuth(staffUser, staffPass)
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("group members: %w", err)
			}
			var body struct {
				Members []struct {
					Device string    `json:"device"`
					Raised time.Time `json:"raised_at"` // members are whole alarms here
				} `json:"members"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil {
				return fmt.Errorf("group members of %s: %s %v", id, resp.Status, err)
			}
			for _, m := range body.Members {
				since := int64(m.Raised.Sub(fleetBase))
				i, _ := slices.BinarySearch(ts, since)
				if i == len(ts) {
					i = len(ts) - 1 // raised after the last frame: the last count
				}
				seen(m.Device, ts[i])
			}
			if len(body.Members) < limit {
				break
			}
		}
	}
	return nil
}
