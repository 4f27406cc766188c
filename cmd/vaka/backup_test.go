package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/store"
)

// alarmsOf lists a hub's alarms by id.
func alarmsOf(t *testing.T, base string) map[string]*alarm.Alarm {
	t.Helper()
	var list struct{ Alarms []*alarm.Alarm }
	if code := testenv.GetJSON(t, base+"/api/v1/alarms", "natt1", "natt1-secret", &list); code != 200 {
		t.Fatalf("GET alarms: %d", code)
	}
	out := map[string]*alarm.Alarm{}
	for _, a := range list.Alarms {
		out[a.ID] = a
	}
	return out
}

// sameAlarm reports how a restored alarm differs from the original, or "".
func sameAlarm(a, b *alarm.Alarm) string {
	if a.State != b.State || a.AcceptedBy() != b.AcceptedBy() || a.Resident != b.Resident || a.Device != b.Device ||
		a.Rule != b.Rule || !a.RaisedAt.Equal(b.RaisedAt) || len(a.History()) != len(b.History()) {
		return fmt.Sprintf("state %s/%s, accepted by %q/%q, %d/%d transitions", a.State, b.State, a.AcceptedBy(), b.AcceptedBy(), len(a.History()), len(b.History()))
	}
	for i := range a.History() {
		x, y := a.History()[i], b.History()[i]
		if x.Action != y.Action || x.Seq != y.Seq || !x.At.Equal(y.At) || x.By != y.By {
			return fmt.Sprintf("transition %d: %+v / %+v", i, x, y)
		}
	}
	return ""
}

// restoreAndStart restores archive into a fresh data directory and starts
// a second real hub on it, returning its alarms.
func restoreAndStart(t *testing.T, bin, archive string) (map[string]*alarm.Alarm, string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(bin, "restore", "--data", data, "--from", archive).CombinedOutput(); err != nil {
		t.Fatalf("vaka restore: %v\n%s", err, out)
	}
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg := writeManyButtonsConfig(t, dir, data, httpAddr, mqttAddr, backupButtons)
	h := startHubProcess(t, bin, cfg, httpAddr)
	got := alarmsOf(t, "http://"+httpAddr)
	h.Process.Kill()
	h.Wait()
	return got, data
}

const backupButtons = 3000

// `vaka backup` of a real hub taking 1,000 events/s (a press on a new
// button each, so each raises an alarm), with staff accepting alarms
// meanwhile: restored into a fresh hub, the backup holds a prefix of the
// journal, byte for byte, and every alarm in it has every transition the
// running hub had for it. A second backup after the flow, hub still
// running, restores to exactly the running hub's alarms.
func TestIntegrationBackupWhileEventsFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the backup under load test")
	}
	bin := buildVaka(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg := writeManyButtonsConfig(t, dir, data, httpAddr, mqttAddr, backupButtons)
	base := "http://" + httpAddr
	startHubProcess(t, bin, cfg, httpAddr)

	o := paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("solrosen-avd-a").
		SetUsername("solrosen/avd-a").SetPassword("gw-secret").SetProtocolVersion(4).SetAutoReconnect(false).
		SetMaxResumePubInFlight(backupButtons)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(50)

	// 1,000 events/s: 10 every 10 ms, paced from a schedule, 3 s in all.
	var wg sync.WaitGroup
	toks := make([]paho.Token, backupButtons)
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < backupButtons; i++ {
			if i%10 == 0 {
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
			}
			p := fmt.Sprintf(`{"v":1,"id":"ev-%d","device":"knapp-%d","dty":"0003","state":"pressed","ts":%q}`,
				i, i, time.Now().UTC().Format(time.RFC3339))
			toks[i] = c.Publish(event.EventTopic("solrosen", "avd-a"), 1, false, p)
		}
	}()

	// Staff accept alarms while the events flow: transitions other than raises.
	time.Sleep(700 * time.Millisecond)
	accepted := 0
	for id, a := range alarmsOf(t, base) {
		if accepted == 20 {
			break
		}
		if a.State == alarm.Raised {
			var got alarm.Alarm
			if code := testenv.DoJSON(t, http.MethodPost, base+"/api/v1/alarms/"+id+"/accept", "natt1", "natt1-secret", map[string]string{}, &got); code != 200 {
				t.Fatalf("accept: %d", code)
			}
			accepted++
		}
	}
	// The backup, mid-flow.
	mid := filepath.Join(dir, "mid.tar.gz")
	if out, err := exec.Command(bin, "backup", "--config", cfg, "--out", mid).CombinedOutput(); err != nil {
		t.Fatalf("vaka backup during the flow: %v\n%s", err, out)
	} else {
		t.Logf("backup %.1f s into the flow: %s", time.Since(start).Seconds(), bytes.TrimSpace(out))
	}
	wg.Wait()
	for i, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("event %d not acknowledged: %v", i, tok.Error())
		}
	}
	t.Logf("sent %d events in %.2f s", backupButtons, time.Since(start).Seconds())
	end := filepath.Join(dir, "end.tar.gz")
	if out, err := exec.Command(bin, "backup", "--data", data, "--out", end).CombinedOutput(); err != nil {
		t.Fatalf("vaka backup after the flow: %v\n%s", err, out)
	}
	live := alarmsOf(t, base)
	if len(live) != backupButtons {
		t.Fatalf("running hub has %d alarms, want %d", len(live), backupButtons)
	}
	liveJournal, err := os.ReadFile(filepath.Join(data, store.FileName))
	if err != nil {
		t.Fatal(err)
	}

	restored, rdata := restoreAndStart(t, bin, mid)
	if len(restored) == 0 || len(restored) > len(live) {
		t.Fatalf("mid-flow backup restored %d alarms (running hub: %d)", len(restored), len(live))
	}
	t.Logf("mid-flow backup holds %d of %d alarms", len(restored), len(live))
	midJournal, err := os.ReadFile(filepath.Join(rdata, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(liveJournal, midJournal) {
		t.Fatalf("the mid-flow journal (%d bytes) is not a prefix of the live one (%d bytes)", len(midJournal), len(liveJournal))
	}
	for id, a := range restored {
		b := live[id]
		if b == nil {
			t.Fatalf("restored alarm %s is unknown to the running hub", id)
		}
		// The backup may have been taken between an alarm's raise and its
		// accept: then it holds a prefix of the alarm's history.
		if len(a.History()) < len(b.History()) {
			cut := *b
			cut.State = a.State
			cut.SetHistory(b.History()[:len(a.History())])
			cut.SetAcceptedBy(a.AcceptedBy())
			b = &cut
		}
		if d := sameAlarm(a, b); d != "" {
			t.Errorf("alarm %s after restore: %s", id, d)
		}
	}

	restored, rdata = restoreAndStart(t, bin, end)
	if len(restored) != len(live) {
		t.Fatalf("backup after the flow restored %d alarms, want %d", len(restored), len(live))
	}
	nAccepted := 0
	for id, b := range live {
		a := restored[id]
		if a == nil {
			t.Fatalf("alarm %s missing after restore", id)
		}
		if d := sameAlarm(a, b); d != "" {
			t.Errorf("alarm %s after restore: %s", id, d)
		}
		if b.State == alarm.Accepted {
			nAccepted++
		}
	}
	if nAccepted != accepted || accepted == 0 {
		t.Fatalf("%d accepted alarms in the running hub, %d accepted by the test", nAccepted, accepted)
	}
	endJournal, _ := os.ReadFile(filepath.Join(rdata, store.FileName))
	if !bytes.Equal(endJournal, liveJournal) {
		t.Fatalf("journal after the flow: restored %d bytes, live %d", len(endJournal), len(liveJournal))
	}
}
