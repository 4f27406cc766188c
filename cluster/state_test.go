package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/roster"
)

func rosterUsers(r *roster.Roster) []string {
	var out []string
	for _, s := range r.APIShifts() {
		out = append(out, s.User+" "+s.Start)
	}
	return out
}

// TestIntegrationRosterFollowsFailover: on a real 3-node JetStream
// cluster, the API shifts hub-a had before the group seed it, a change
// on hub-a while active is read by hub-b before it starts (Prefetch, by
// direct get, into its roster file) and by its Attach, a shift list only
// in hub-b's own file is replaced, a change on hub-b reaches hub-a, and a
// change the group cannot take (its NATS nodes gone) is saved on the hub
// but reported ErrNotReplicated and counted.
func TestIntegrationRosterFollowsFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	nodes, urls := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	loc, _ := time.LoadLocation("Europe/Stockholm")
	shift := func(user, start, end string) roster.Shift {
		return roster.Shift{User: user, Site: "solrosen", Date: roster.Daily, Start: start, End: end}
	}

	na := connect(t, urls, "hub-a", 3*time.Second)
	ra, err := roster.Open(loc, filepath.Join(dir, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ra.SetAPI([]roster.Shift{shift("natt1", "22:00", "07:00")}); err != nil {
		t.Fatal(err)
	}
	stopA, err := na.Roster().Attach(ctx, ra)
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	if got := rosterUsers(ra); !slices.Equal(got, []string{"natt1 22:00"}) {
		t.Fatalf("hub-a after seeding the group: %v", got)
	}
	if err := ra.SetAPI([]roster.Shift{shift("natt2", "21:00", "07:00"), shift("natt3", "07:00", "15:00")}); err != nil {
		t.Fatalf("SetAPI on the active hub: %v", err)
	}

	nb := connect(t, urls, "hub-b", 3*time.Second)
	bPath := filepath.Join(dir, "b.json")
	rb, err := roster.Open(loc, bPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.SetAPI([]roster.Shift{shift("old", "08:00", "16:00")}); err != nil { // not replicated: no sync yet
		t.Fatal(err)
	}
	found, err := nb.Roster().Prefetch(ctx, rb)
	if err != nil || !found {
		t.Fatalf("prefetch: found %v, %v", found, err)
	}
	// Prefetch wrote the group's shifts to hub-b's file: the hub that
	// starts next reads them.
	again, err := roster.Open(loc, bPath)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"natt2 21:00", "natt3 07:00"}
	if got := rosterUsers(again); !slices.Equal(got, want) {
		t.Fatalf("hub-b's roster file after prefetch: %v, want %v", got, want)
	}
	stopB, err := nb.Roster().Attach(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	if got := rosterUsers(again); !slices.Equal(got, want) {
		t.Fatalf("hub-b after attach: %v, want %v", got, want)
	}
	if err := again.SetAPI([]roster.Shift{shift("natt4", "22:00", "06:00")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hub-b's change on hub-a", func() bool { return slices.Equal(rosterUsers(ra), []string{"natt4 22:00"}) })
	if b, err := os.ReadFile(filepath.Join(dir, "a.json")); err != nil || !slices.Contains(rosterUsers(mustOpen(t, loc, filepath.Join(dir, "a.json"))), "natt4 22:00") {
		t.Errorf("hub-a's file does not hold hub-b's change: %s %v", b, err)
	}

	// What the bucket holds is outside input too: a shift that fails the
	// roster's checks is left out, a damaged value is dropped (no shifts:
	// every nurse is woken), each counted on both hubs, which apply it.
	bad, _ := json.Marshal([]roster.Shift{shift("natt6", "22:00", "06:00"), shift("natt7", "25:00", "06:00")})
	if _, err := na.kv.Put(ctx, "roster."+rosterKey, bad); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the valid shift applied, the invalid one left out and counted", func() bool {
		return slices.Equal(rosterUsers(ra), []string{"natt6 22:00"}) && slices.Equal(rosterUsers(again), []string{"natt6 22:00"}) &&
			na.SharedDamaged() == 1 && nb.SharedDamaged() == 1
	})
	if _, err := na.kv.Put(ctx, "roster."+rosterKey, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a damaged value dropped and counted", func() bool {
		return len(rosterUsers(ra)) == 0 && len(rosterUsers(again)) == 0 && na.SharedDamaged() == 2 && nb.SharedDamaged() == 2
	})

	// The group gone: the change is this hub's only, and said so.
	for _, n := range nodes {
		n.Close()
	}
	err = again.SetAPI([]roster.Shift{shift("natt5", "22:00", "06:00")})
	if !errors.Is(err, roster.ErrNotReplicated) {
		t.Fatalf("SetAPI without the group: %v, want ErrNotReplicated", err)
	}
	if got := rosterUsers(again); !slices.Equal(got, []string{"natt5 22:00"}) {
		t.Errorf("an unreplicated change is still used on this hub: got %v", got)
	}
	if n := again.SyncFailures(); n != 1 {
		t.Errorf("sync failures %d, want 1", n)
	}
}

func mustOpen(t *testing.T, loc *time.Location, path string) *roster.Roster {
	t.Helper()
	r, err := roster.Open(loc, path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// seenMap is a hub's own devices-seen record as the cluster package sees
// it (service.DevicesSeen in the hub), kept as plainly as possible.
type seenMap struct {
	mu   sync.Mutex
	recs map[string]DeviceSeen
	put  func(string, DeviceSeen) error
}

func (m *seenMap) Merge(group map[string]DeviceSeen) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range group {
		if r.LastSeen.After(m.recs[k].LastSeen) {
			m.recs[k] = r
		}
	}
	return len(m.recs)
}

func (m *seenMap) Apply(k string, r DeviceSeen) { m.Merge(map[string]DeviceSeen{k: r}) }

func (m *seenMap) SetSync(to SeenSink) {
	m.mu.Lock()
	m.put = nil
	if to != nil {
		m.put = to.PutSeen
	}
	m.mu.Unlock()
}

func (m *seenMap) get(k string) DeviceSeen {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recs[k]
}

// TestIntegrationDevicesSeenFollow: records hub-a sends (any device
// name, dots and all) are merged into hub-b's own when it attaches, each
// device's newer record winning, hub-b's own devices kept; later records
// from hub-a reach hub-b while both follow, and an attached hub gets its
// sync hook (and loses it on stop).
func TestIntegrationDevicesSeenFollow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	bat := 40

	na := connect(t, urls, "hub-a", 3*time.Second)
	sa, err := na.OpenDevicesSeen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	la := &seenMap{recs: map[string]DeviceSeen{}}
	stopA, err := sa.Attach(ctx, la)
	if err != nil {
		t.Fatal(err)
	}
	if la.put == nil {
		t.Fatal("hub-a attached without its sync hook")
	}
	for k, r := range map[string]DeviceSeen{
		"solrosen/knapp-1":   {LastSeen: t0, Battery: &bat, BatteryAt: &t0},
		"solrosen/..odd.-id": {LastSeen: t0},
		"solrosen/dorr-3":    {LastSeen: t0.Add(-time.Hour)},
	} {
		if err := la.put(k, r); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}

	nb := connect(t, urls, "hub-b", 3*time.Second)
	sb, err := nb.OpenDevicesSeen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lb := &seenMap{recs: map[string]DeviceSeen{
		"solrosen/dorr-3": {LastSeen: t0.Add(time.Minute)}, // hub-b heard it later
		"solrosen/pir-9":  {LastSeen: t0},                  // only hub-b
	}}
	stopB, err := sb.Attach(ctx, lb)
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	if r := lb.get("solrosen/knapp-1"); !r.LastSeen.Equal(t0) || r.Battery == nil || *r.Battery != 40 {
		t.Errorf("knapp-1 on hub-b: %+v", r)
	}
	if r := lb.get("solrosen/..odd.-id"); !r.LastSeen.Equal(t0) {
		t.Errorf("a device with dots in its name on hub-b: %+v", r)
	}
	if r := lb.get("solrosen/dorr-3"); !r.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("dorr-3 on hub-b: %v, want its own newer record", r.LastSeen)
	}
	if r := lb.get("solrosen/pir-9"); !r.LastSeen.Equal(t0) {
		t.Errorf("hub-b's own pir-9 dropped: %+v", r)
	}
	later := t0.Add(20 * time.Minute)
	if err := la.put("solrosen/knapp-1", DeviceSeen{LastSeen: later}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hub-a's later record on hub-b", func() bool { return lb.get("solrosen/knapp-1").LastSeen.Equal(later) })
	stopA()
	if la.put != nil {
		t.Error("hub-a keeps its sync hook after stop")
	}
}

// TestIntegrationHeardShards: last-heard times go in shards of at most
// heardPerShard devices, only a changed shard is written again, at most
// heardMaxWrites a flush (the rest at the next, where the last stopped),
// and a hub taking over reads each device's time back; a damaged shard
// is left out and counted, the others read.
func TestIntegrationHeardShards(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	_, urls := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := connect(t, urls, "hub-a", 3*time.Second)
	d, err := n.OpenDevicesSeen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	heard := map[string]time.Time{}
	for i := range 2*heardPerShard + 500 {
		heard[fmt.Sprintf("solrosen/rum-%05d", i)] = t0.Add(time.Duration(i) * time.Second)
	}
	if w, err := d.PutHeard(heard); err != nil || w != 3 {
		t.Fatalf("%d devices: %d shards written (%v), want 3", len(heard), w, err)
	}
	if msgs, bytes := d.HeardWritten(); bytes/msgs > heardPerShard*40 {
		t.Errorf("shards of %d bytes on average, over %d", bytes/msgs, heardPerShard*40)
	}
	if w, _ := d.PutHeard(heard); w != 0 {
		t.Errorf("nothing changed: %d shards written, want 0", w)
	}
	heard["solrosen/rum-00007"] = t0.Add(time.Hour)
	if w, _ := d.PutHeard(heard); w != 1 {
		t.Errorf("one device heard again: %d shards written, want 1", w)
	}
	put := func(key, val string) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := d.heard.kv.Put(c, key, []byte(val)); err != nil {
			t.Fatal(err)
		}
	}
	put("h.9.9", `{"solrosen/rum-00007":"yesterday"}`)
	put("h.1.0", `{"solrosen/rum-00008":`+fmt.Sprint(t0.Add(-time.Hour).Unix())+`}`) // an older set: no older time wins
	damaged := n.SharedDamaged()
	got, err := d.readHeard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(heard) {
		t.Errorf("read %d devices back, want %d", len(got), len(heard))
	}
	for k, at := range heard {
		if !got[k].Equal(at) {
			t.Errorf("%s read back as %v, want %v", k, got[k], at)
			break
		}
	}
	if n.SharedDamaged() != damaged+1 {
		t.Errorf("damaged shards counted %d, want 1", n.SharedDamaged()-damaged)
	}

	// A fleet over heardMaxWrites shards: the first flush writes the
	// bound, the next the rest.
	big := map[string]time.Time{}
	for i := range heardMaxWrites*heardPerShard + 1 {
		big[fmt.Sprintf("solrosen/b-%06d", i)] = t0
	}
	if w, err := d.PutHeard(big); err != nil || w != heardMaxWrites {
		t.Fatalf("%d devices: %d shards written in one flush (%v), want %d", len(big), w, err, heardMaxWrites)
	}
	if w, err := d.PutHeard(big); err != nil || w != 1 {
		t.Errorf("the next flush: %d shards written (%v), want the 1 left", w, err)
	}
}

// BenchmarkPutHeard: one minute's flush of last-heard times for a
// region's 100,000 devices, every one heard again (50 shards of 2,000
// written to a 3-node JetStream cluster on loopback). Reports the time
// and allocations per flush (the CPU of the three servers included).
// Run: go test -run '^$' -bench PutHeard -benchtime 3x ./cluster/
func BenchmarkPutHeard(b *testing.B) {
	_, urls := startNATS(b)
	n := connect(b, urls, "hub-a", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := n.OpenDevicesSeen(ctx)
	if err != nil {
		b.Fatal(err)
	}
	const devices = 100_000
	t0 := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	heard := make(map[string]time.Time, devices)
	names := make([]string, devices)
	for i := range names {
		names[i] = fmt.Sprintf("site-%03d/rum-%05d", i%140, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, k := range names {
			heard[k] = t0.Add(time.Duration(i) * time.Minute)
		}
		if w, err := d.PutHeard(heard); err != nil || w != devices/heardPerShard {
			b.Fatalf("%d shards written: %v", w, err)
		}
	}
	msgs, bytes := d.HeardWritten()
	b.ReportMetric(float64(bytes)/float64(msgs), "B/shard")
}
