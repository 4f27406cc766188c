package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

// lockedBuffer is a log sink safe for the hub's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// The demo hub with its pilot exporter, logging everything at debug level
// into a buffer; hem-1's door information set to markers a test can find.
const (
	testDoorCode = "DORRKOD-7319-ZQ"
	testKeyBox   = "NYCKELGOMMA-5521-ZQ"
)

func startAccessHub(t *testing.T, logs io.Writer) (*service.Hub, *pilotParts, string) {
	t.Helper()
	data := t.TempDir()
	cfg, _, err := demoConfig(data, "127.0.0.1:0", "127.0.0.1:0", demoWorld())
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Sites {
		for k := range cfg.Sites[i].Units {
			if u := &cfg.Sites[i].Units[k]; u.ID == "hem-1" {
				u.Access = &hub.Access{KeyBox: testKeyBox, DoorCode: testDoorCode, Note: "ring twice"}
			}
		}
	}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Also whatever logs through the default logger (and the log package).
	old := slog.Default()
	slog.SetDefault(log)
	t.Cleanup(func() { slog.SetDefault(old) })
	pp, opts, err := startPilot(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(cfg, log, opts...)
	if err != nil {
		pp.close()
		t.Fatal(err)
	}
	pp.attach(s)
	t.Cleanup(func() { s.Close() })
	return s, pp, data
}

// rawAlarms returns the alarm list as the role's JSON objects.
func rawAlarms(t *testing.T, base, user string) []map[string]any {
	t.Helper()
	var list struct{ Alarms []map[string]any }
	if code := testenv.GetJSON(t, base+"/api/v1/alarms", user, user, &list); code != 200 {
		t.Fatalf("%s: list %d", user, code)
	}
	return list.Alarms
}

// firstFrame reads the live stream as user until a frame of an alarm
// arrives (bounded by 5 s) and returns its data line.
func firstFrame(t *testing.T, base, user string, raise func()) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/stream", nil)
	req.SetBasicAuth(user, user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	alarmEvent := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "event: hello":
			raise()
		case line == "event: alarm":
			alarmEvent = true
		case alarmEvent && strings.HasPrefix(line, "data: "):
			return strings.TrimPrefix(line, "data: ")
		}
	}
	t.Fatalf("%s: no alarm frame within 5 s", user)
	return ""
}

// Door and key information reaches only the roles in http.show_access_to
// (default: staff), on the list, one alarm, the live stream and an
// action's answer, with "where" in words; it never reaches the logs (at
// debug level), the journal, the event log, the pilot store or /metrics.
func TestIntegrationAccessOnlyForAllowedRolesNeverLoggedOrExported(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	var logs lockedBuffer
	s, _, data := startAccessHub(t, &logs)
	base := "http://" + s.HTTPAddr()
	press := func(id string) func() {
		return func() {
			s.Hub.HandleEvent("hemtjanst-norr", "hem-1", []byte(fmt.Sprintf(
				`{"v":1,"id":%q,"device":"knapp-hem-1","dty":"0003","stc":"0010","state":"pressed","ts":%q}`,
				id, time.Now().UTC().Format(time.RFC3339Nano))))
		}
	}
	// Streams: staff's frame carries the door code, the admin's does not.
	staffFrame := firstFrame(t, base, "natt1", press("ev-1"))
	if !strings.Contains(staffFrame, testDoorCode) || !strings.Contains(staffFrame, `"access":{`) {
		t.Errorf("staff stream frame lacks access: %s", staffFrame)
	}
	adminFrame := firstFrame(t, base, "admin", press("ev-2"))
	if strings.Contains(adminFrame, testDoorCode) || strings.Contains(adminFrame, testKeyBox) || strings.Contains(adminFrame, `"access"`) {
		t.Errorf("admin stream frame shows access: %s", adminFrame)
	}
	var id string
	for _, a := range rawAlarms(t, base, "natt1") {
		if a["device"] != "knapp-hem-1" {
			continue
		}
		id = a["id"].(string)
		acc, _ := a["access"].(map[string]any)
		if acc["door_code"] != testDoorCode || acc["key_box"] != testKeyBox || acc["note"] != "ring twice" {
			t.Errorf("staff list: access %v", a["access"])
		}
		w, _ := a["where"].(map[string]any)
		dt, _ := w["device_text"].(map[string]any)
		if w["site_name"] != "Hemtjänst Norr" || w["unit_name"] != "Gunnar Eks hem" || w["room_name"] != "Hallen" ||
			w["address"] != "Björkvägen 4, 123 45 Norrby" || dt["sv"] != "larmknapp på handleden" || dt["en"] != "call button on the wrist" {
			t.Errorf("staff list: where %v", a["where"])
		}
		if a["resident_name"] != "Gunnar Ek" {
			t.Errorf("staff list: resident_name %v", a["resident_name"])
		}
	}
	if id == "" {
		t.Fatal("no alarm of knapp-hem-1 in the list")
	}
	for _, role := range []string{"lead", "admin"} {
		for _, a := range rawAlarms(t, base, role) {
			if _, ok := a["access"]; ok {
				t.Errorf("%s sees access: %v", role, a["access"])
			}
			if w, _ := a["where"].(map[string]any); w == nil || w["unit_name"] == nil {
				t.Errorf("%s: no where: %v", role, a)
			}
		}
	}
	var one map[string]any
	testenv.GetJSON(t, base+"/api/v1/alarms/"+id, "admin", "admin", &one)
	if _, ok := one["access"]; ok || one["id"] != id {
		t.Errorf("admin one alarm: %v", one)
	}
	// Handle the alarm to the end, so the pilot exporter writes its record.
	for _, step := range []struct{ path, body string }{{"accept", ""}, {"presence", ""}, {"resolve", `{"outcome":"real_need","note":"ok"}`}} {
		var got map[string]any
		var body any
		if step.body != "" {
			_ = json.Unmarshal([]byte(step.body), &body)
		}
		if code := testenv.DoJSON(t, http.MethodPost, base+"/api/v1/alarms/"+id+"/"+step.path, "natt1", "natt1", body, &got); code != 200 {
			t.Fatalf("%s: %d %v", step.path, code, got)
		}
		if acc, _ := got["access"].(map[string]any); acc["door_code"] != testDoorCode {
			t.Errorf("%s answer: access %v", step.path, got["access"])
		}
	}
	metrics := getBody(t, base+"/metrics")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	leaks := func(where, text string) {
		for _, secret := range []string{testDoorCode, testKeyBox} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds %q", where, secret)
			}
		}
	}
	leaks("/metrics", metrics)
	if !strings.Contains(logs.String(), "alarm action") {
		t.Fatalf("the log captured nothing useful: %.300s", logs.String())
	}
	leaks("the log", logs.String())
	var files, pilotRecords int
	err := filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if filepath.Base(path) == "records.jsonl" {
			pilotRecords = bytes.Count(b, []byte("\n"))
		}
		leaks(path, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 || pilotRecords == 0 {
		t.Errorf("checked %d files, %d pilot records: the exporter wrote nothing to check", files, pilotRecords)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
