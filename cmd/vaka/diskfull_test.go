package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/testenv"
)

func writeManyButtonsConfig(t *testing.T, dir, dataDir, httpAddr, mqttAddr string, n int) string {
	t.Helper()
	var devs strings.Builder
	for i := range n {
		fmt.Fprintf(&devs, "          - {id: knapp-%d, type: personal_trigger, resident: r-%d, unit: avd-a, room: \"%d\"}\n", i, i, i)
	}
	return writeHubConfigDevices(t, dir, dataDir, httpAddr, mqttAddr, devs.String())
}

// groundTruth is a QoS 1 publisher as a gateway is one: it remembers every
// event the hub acknowledged, and keeps an event it was not acknowledged
// for, reconnecting to send it again.
type groundTruth struct {
	t     *testing.T
	addr  string
	c     paho.Client
	acked []string
}

func (g *groundTruth) connect() error {
	o := paho.NewClientOptions().AddBroker("tcp://" + g.addr).SetClientID("solrosen-avd-a").
		SetUsername("solrosen/avd-a").SetPassword("gw-secret").SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(2 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	g.c = c
	return nil
}

// send publishes event i once and reports whether the hub acknowledged it.
func (g *groundTruth) send(i int) bool {
	if g.c == nil || !g.c.IsConnectionOpen() {
		if err := g.connect(); err != nil {
			g.t.Logf("publisher: %v", err)
			return false
		}
	}
	id := fmt.Sprintf("ev-%d", i)
	p := fmt.Sprintf(`{"v":1,"id":%q,"device":"knapp-%d","dty":"0003","state":"pressed","ts":%q}`, id, i, time.Now().UTC().Format(time.RFC3339))
	tok := g.c.Publish(event.EventTopic("solrosen", "avd-a"), 1, false, p)
	if !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		g.c.Disconnect(0)
		g.c = nil
		return false
	}
	g.acked = append(g.acked, "solrosen/avd-a/"+id)
	return true
}

// until resends event i until it is acknowledged or d passes.
func (g *groundTruth) until(i int, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); {
		if g.send(i) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func healthz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}

// With the data directory on a disk that fills up, the real hub binary
// never acknowledges an event whose alarm it could not write: the sender
// keeps it, the alarm is still shown, /healthz and a hub_integrity alarm say
// so, and when space returns the hub recovers by itself. After a SIGKILL
// and a restart, every event that was ever acknowledged is there exactly
// once.
func TestIntegrationDiskFullNeverAcksWhatItDidNotKeep(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	testenv.Tmpfs(t, data, 1<<20)
	bin := buildVaka(t)
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	const buttons = 80
	cfg := writeManyButtonsConfig(t, dir, data, httpAddr, mqttAddr, buttons)
	base := "http://" + httpAddr
	hub := startHubProcess(t, bin, cfg, httpAddr)

	g := &groundTruth{t: t, addr: mqttAddr}
	next := 0
	for ; next < 10; next++ {
		if !g.until(next, 10*time.Second) {
			t.Fatalf("event %d not acknowledged with room on the disk", next)
		}
	}

	// Fill the disk. The journal's last page may still take a few records:
	// send until one is not acknowledged.
	filler := filepath.Join(data, "filler")
	testenv.FillDisk(t, filler)
	stuck := -1
	for ; next < 60; next++ {
		if !g.send(next) {
			stuck = next
			break
		}
	}
	if stuck < 0 {
		t.Fatalf("50 events acknowledged on a full disk")
	}
	// The sender was not told; staff still see the alarm; /healthz and a
	// hub_integrity alarm say why.
	if code, body := healthz(t, base); code != http.StatusServiceUnavailable || !strings.Contains(body, "journal") {
		t.Errorf("healthz on a full disk: %d %s, want 503 naming the journal", code, body)
	}
	var list struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, base+"/api/v1/alarms", "natt1", "natt1-secret", &list)
	var shown, integrity bool
	for _, a := range list.Alarms {
		shown = shown || a.EventID == fmt.Sprintf("solrosen/avd-a/ev-%d", stuck)
		integrity = integrity || a.Rule == "hub_integrity"
	}
	if !shown || !integrity {
		t.Errorf("on a full disk: stuck alarm shown %v, hub_integrity open %v; want both", shown, integrity)
	}
	if n := testenv.Metric(t, base+"/metrics", "vaka_mqtt_not_acknowledged_total"); n < 1 {
		t.Errorf("vaka_mqtt_not_acknowledged_total = %v, want ≥ 1", n)
	}

	// Space returns: no restart, the resend is acknowledged, later events too.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !g.until(stuck, 15*time.Second) {
		t.Fatalf("event %d still not acknowledged 15 s after space returned", stuck)
	}
	for next = stuck + 1; next < stuck+11; next++ {
		if !g.until(next, 10*time.Second) {
			t.Fatalf("event %d not acknowledged after recovery", next)
		}
	}
	if code, body := healthz(t, base); code != http.StatusOK || !strings.Contains(body, "degraded") {
		t.Errorf("healthz after recovery: %d %s, want 200 degraded (hub_integrity open until someone resolves it)", code, body)
	}
	g.c.Disconnect(50)

	if err := hub.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	hub.Wait()
	startHubProcess(t, bin, cfg, httpAddr)

	testenv.GetJSON(t, base+"/api/v1/alarms", "natt1", "natt1-secret", &list)
	count := map[string]int{}
	integrity = false
	for _, a := range list.Alarms {
		count[a.EventID]++
		integrity = integrity || a.Rule == "hub_integrity"
	}
	for _, id := range g.acked {
		if count[id] != 1 {
			t.Errorf("acknowledged event %s: in %d alarms after restart, want 1", id, count[id])
		}
	}
	if !integrity {
		t.Errorf("the hub_integrity alarm of the full disk was not kept across the restart")
	}
	// A write that failed half-way must not have left a torn record for
	// the next one to join.
	if n := testenv.Metric(t, base+"/metrics", "vaka_store_corrupt_records_total"); n != 0 {
		t.Errorf("vaka_store_corrupt_records_total = %v after restart, want 0: a failed write damaged the journal", n)
	}
	t.Logf("%d events acknowledged, event %d held while the disk was full", len(g.acked), stuck)
}
