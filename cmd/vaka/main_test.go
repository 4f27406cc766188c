package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
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

// buildVaka builds the real binary once per test.
func buildVaka(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds and runs the vaka binary")
	}
	bin := filepath.Join(t.TempDir(), "vaka")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func writeHubConfig(t *testing.T, dir, httpAddr, mqttAddr string) string {
	t.Helper()
	return writeHubConfigDevices(t, dir, filepath.Join(dir, "data"), httpAddr, mqttAddr,
		`          - {id: knapp-12, type: personal_trigger, resident: r-7f3a, unit: avd-a, room: "12"}
          - {id: knapp-14, type: personal_trigger, resident: r-22b1, unit: avd-a, room: "14"}
`)
}

// writeHubConfigDevices writes a hub config with one site, one staff login
// (natt1 / natt1-secret) and one gateway (solrosen/avd-a, gw-secret) whose
// device list is devices (YAML list items, indented for it).
func writeHubConfigDevices(t *testing.T, dir, dataDir, httpAddr, mqttAddr, devices string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
mqtt:
  tcp: %s
http:
  address: %s
users:
  - {username: natt1, name: Natt Ett, role: staff, password_hash: %q}
sites:
  - id: solrosen
    night: {start: "00:00", end: "00:00"}
    gateways:
      - id: avd-a
        password_hash: %q
        devices:
%s`, dataDir, mqttAddr, httpAddr, testenv.Hash(t, "natt1-secret"), testenv.Hash(t, "gw-secret"), devices)
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startHubProcess(t *testing.T, bin, cfg, httpAddr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "hub", "--config", cfg)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	startProcess(t, cmd)
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + httpAddr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("hub did not become healthy in 5 s; log:\n%s", logs.String())
	return nil
}

// The hub killed with SIGKILL and started again on the same data dir still
// has every alarm and every transition.
func TestIntegrationSIGKILLKeepsAlarms(t *testing.T) {
	bin := buildVaka(t)
	dir := t.TempDir()
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg := writeHubConfig(t, dir, httpAddr, mqttAddr)
	base := "http://" + httpAddr
	hub := startHubProcess(t, bin, cfg, httpAddr)

	o := paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("solrosen-avd-a").
		SetUsername("solrosen/avd-a").SetPassword("gw-secret").SetProtocolVersion(4).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	for i, dev := range []string{"knapp-12", "knapp-14"} {
		p := fmt.Sprintf(`{"v":1,"id":"k-%d","device":%q,"dty":"0003","state":"pressed","ts":%q}`, i, dev, time.Now().UTC().Format(time.RFC3339))
		if tok := c.Publish(event.EventTopic("solrosen", "avd-a"), 1, false, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	c.Disconnect(50)
	var list struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, base+"/api/v1/alarms", "natt1", "natt1-secret", &list)
	if len(list.Alarms) != 2 {
		t.Fatalf("before kill: %d alarms, want 2", len(list.Alarms))
	}
	first := list.Alarms[0].ID
	var got alarm.Alarm
	if code := testenv.DoJSON(t, http.MethodPost, base+"/api/v1/alarms/"+first+"/accept", "natt1", "natt1-secret", map[string]string{}, &got); code != 200 {
		t.Fatalf("accept: %d", code)
	}
	if code := testenv.DoJSON(t, http.MethodPost, base+"/api/v1/alarms/"+first+"/presence", "natt1", "natt1-secret", map[string]string{}, &got); code != 200 {
		t.Fatalf("presence: %d", code)
	}
	before := map[string]*alarm.Alarm{}
	testenv.GetJSON(t, base+"/api/v1/alarms", "natt1", "natt1-secret", &list)
	for _, a := range list.Alarms {
		before[a.ID] = a
	}

	if err := hub.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	hub.Wait()

	startHubProcess(t, bin, cfg, httpAddr)
	testenv.GetJSON(t, base+"/api/v1/alarms", "natt1", "natt1-secret", &list)
	if len(list.Alarms) != len(before) {
		t.Fatalf("after restart: %d alarms, want %d", len(list.Alarms), len(before))
	}
	for _, a := range list.Alarms {
		b := before[a.ID]
		if b == nil {
			t.Fatalf("unknown alarm %s after restart", a.ID)
		}
		if a.State != b.State || a.AcceptedBy() != b.AcceptedBy() || len(a.History()) != len(b.History()) || a.Resident != b.Resident {
			t.Errorf("alarm %s changed over SIGKILL:\nbefore %+v\nafter  %+v", a.ID, b, a)
		}
		for i := range a.History() {
			if a.History()[i].Action != b.History()[i].Action || a.History()[i].Seq != b.History()[i].Seq {
				t.Errorf("alarm %s history[%d] = %+v, want %+v", a.ID, i, a.History()[i], b.History()[i])
			}
		}
	}
	if before[first].State != alarm.Presence {
		t.Fatalf("test setup: first alarm state %s", before[first].State)
	}
}

// vaka check names file, line and field for a bad config.
func TestCheckNamesFileLineField(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.yaml")
	bad := "data_dir: /tmp/x\nmqtt:\n  tcp: 127.0.0.1:1883\nhttp:\n  address: 127.0.0.1:8080\n  adress: typo\n"
	os.WriteFile(path, []byte(bad), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"check", "--config", path}, strings.NewReader(""), &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	if want := path + ":6: field http.adress: unknown field"; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr = %q, want it to contain %q", errb.String(), want)
	}
}

// The annotated examples in deploy/ must pass vaka check, so the docs that
// point to them stay true.
func TestDeployExamplesPassCheck(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "deploy", "*.example.yaml"))
	if len(files) == 0 {
		t.Fatal("no deploy/*.example.yaml found")
	}
	for _, f := range files {
		var out, errb bytes.Buffer
		if code := run([]string{"check", "--config", f}, strings.NewReader(""), &out, &errb); code != 0 {
			t.Errorf("%s: exit %d: %s", f, code, errb.String())
		}
		if !strings.Contains(out.String(), "OK") {
			t.Errorf("%s: output %q", f, out.String())
		}
	}
}
