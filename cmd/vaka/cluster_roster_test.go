//go:build !nocluster

package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/testenv"
)

// TestIntegrationClusterRosterFollows: two `vaka hub` processes on a
// 3-node NATS cluster, routing by the default route tree (the staff on
// duty by the roster; every staff member when nobody is). A lead puts
// natt2 on duty through the roster API of the active hub; before that
// an alarm there wakes natt1 and natt2 (nobody on duty). The active hub
// is SIGKILLed; on the hub that took over, the roster API lists natt2's
// shifts and a new alarm wakes natt2 only: the shift set on the first
// hub is used by the second. A lead's PUT there is replicated back (the
// first hub, restarted as a standby, holds it in its roster file).
func TestIntegrationClusterRosterFollows(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: hub processes and a NATS cluster")
	}
	bin := buildVaka(t)
	_, urls := clusterNATS(t)
	var hubs []*clusterHub
	for _, name := range []string{"hub-a", "hub-b"} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o750)
		h := &clusterHub{name: name, http: testenv.FreeAddr(t), mqtt: testenv.FreeAddr(t)}
		h.cfg = writeManyButtonsConfig(t, dir, filepath.Join(dir, "data"), h.http, h.mqtt, 4)
		b, err := os.ReadFile(h.cfg)
		if err != nil {
			t.Fatal(err)
		}
		extra := ""
		for _, u := range [][2]string{{"natt2", "staff"}, {"lead", "lead"}} {
			extra += fmt.Sprintf("  - {username: %s, name: %s, role: %s, password_hash: %q}\n", u[0], u[0], u[1], testenv.Hash(t, u[0]+"-secret"))
		}
		y := strings.Replace(string(b), "users:\n", "users:\n"+extra, 1)
		y += fmt.Sprintf("cluster:\n  node: %s\n  lease_ttl: 2s\n  nats:\n    urls: [%s, %s, %s]\n", name, urls[0], urls[1], urls[2])
		if err := os.WriteFile(h.cfg, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		h.start(t, bin)
		hubs = append(hubs, h)
	}
	first := activeHub(t, hubs, 60*time.Second)
	p := &failoverPublisher{t: t, addrs: []string{hubs[0].mqtt, hubs[1].mqtt}}
	defer func() {
		if p.c != nil {
			p.c.Disconnect(50)
		}
	}()
	// notified is who the first notify step of device's alarm on h went
	// to (bounded wait).
	notified := func(h *clusterHub, device string) []string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			var list struct{ Alarms []*alarm.Alarm }
			testenv.GetJSON(t, "http://"+h.http+"/api/v1/alarms", "lead", "lead-secret", &list)
			for _, a := range list.Alarms {
				if a.Device != device {
					continue
				}
				for _, tr := range a.History() {
					if tr.Action == alarm.ActNotify {
						return slices.Sorted(slices.Values(tr.To))
					}
				}
			}
		}
		t.Log(h.log.String())
		t.Fatalf("no notify step for %s on %s within 10 s", device, h.name)
		return nil
	}
	press := func(i int) {
		t.Helper()
		if _, ok := p.send(i, 60*time.Second); !ok {
			t.Fatalf("event %d not acknowledged within 60 s", i)
		}
	}
	press(0)
	if to := notified(first, "knapp-0"); !slices.Equal(to, []string{"natt1", "natt2"}) {
		t.Fatalf("before any shift, %s woke %v; want natt1 and natt2 (nobody on duty)", first.name, to)
	}
	// Two shifts cover the whole day, whatever the hour of the run.
	shifts := map[string]any{"shifts": []map[string]string{
		{"user": "natt2", "site": "solrosen", "date": "daily", "start": "00:00", "end": "12:00"},
		{"user": "natt2", "site": "solrosen", "date": "daily", "start": "12:00", "end": "00:00"}}}
	if code := testenv.DoJSON(t, http.MethodPut, "http://"+first.http+"/api/v1/roster", "lead", "lead-secret", shifts, nil); code != 200 {
		t.Fatalf("lead PUT roster on %s: %d", first.name, code)
	}
	press(1)
	if to := notified(first, "knapp-1"); !slices.Equal(to, []string{"natt2"}) {
		t.Fatalf("after the shift, %s woke %v; want natt2", first.name, to)
	}

	at := time.Now()
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.cmd.Wait()
	next := activeHub(t, hubs, 60*time.Second)
	t.Logf("%s SIGKILLed; %s active after %s", first.name, next.name, time.Since(at).Round(time.Millisecond))
	var got struct{ API []map[string]string }
	if code := testenv.GetJSON(t, "http://"+next.http+"/api/v1/roster", "lead", "lead-secret", &got); code != 200 || len(got.API) != 2 || got.API[0]["user"] != "natt2" {
		t.Errorf("roster on %s after the failover: %d %+v; want natt2's two shifts", next.name, code, got)
	}
	press(2)
	if to := notified(next, "knapp-2"); !slices.Equal(to, []string{"natt2"}) {
		t.Errorf("after the failover %s woke %v; want natt2 (on duty by the shift set on %s)", next.name, to, first.name)
	}

	// A change on the new active hub reaches the old one, restarted as a
	// standby: its own roster file follows (read again when it takes over).
	shifts = map[string]any{"shifts": []map[string]string{
		{"user": "natt1", "site": "solrosen", "date": "daily", "start": "00:00", "end": "12:00"},
		{"user": "natt1", "site": "solrosen", "date": "daily", "start": "12:00", "end": "00:00"}}}
	if code := testenv.DoJSON(t, http.MethodPut, "http://"+next.http+"/api/v1/roster", "lead", "lead-secret", shifts, nil); code != 200 {
		t.Fatalf("lead PUT roster on %s: %d", next.name, code)
	}
	first.start(t, bin)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if strings.Contains(first.log.String(), "cluster: standby; waiting for the lease") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not a standby within 30 s:\n%s", first.name, first.log.String())
		}
	}
	next.cmd.Process.Signal(syscall.SIGKILL)
	next.cmd.Wait()
	if back := activeHub(t, hubs, 60*time.Second); back != first {
		t.Fatalf("%s active, want %s", back.name, first.name)
	}
	press(3)
	if to := notified(first, "knapp-3"); !slices.Equal(to, []string{"natt1"}) {
		t.Errorf("back on %s, an alarm woke %v; want natt1 (the shift set on %s)", first.name, to, next.name)
	}
	var metrics string
	for _, l := range strings.Split(getBody(t, "http://"+first.http+"/metrics"), "\n") {
		if strings.HasPrefix(l, "vaka_cluster_takeover_sync_failures_total") || strings.HasPrefix(l, "vaka_cluster_roster_sync_failures_total") {
			metrics += l + "\n"
			if !strings.HasSuffix(l, " 0") {
				t.Errorf("%s: %s", first.name, l)
			}
		}
	}
	if !strings.Contains(metrics, `state="roster"`) || !strings.Contains(metrics, `state="sessions"`) || !strings.Contains(metrics, "vaka_cluster_roster_sync_failures_total") {
		t.Errorf("takeover and roster sync failure counters not exported by %s:\n%s", first.name, metrics)
	}
}
