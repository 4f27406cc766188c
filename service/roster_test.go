package service_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

// notified waits (bounded) for the alarm's first notify step and returns
// whom it alerted.
func notified(t *testing.T, s *service.Hub, device string) []string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, a := range s.Hub.Alarms() {
			if a.Device != device {
				continue
			}
			for _, tr := range a.History() {
				if tr.Action == alarm.ActNotify {
					return tr.To
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no notify step for %s within 3 s", device)
	return nil
}

// With no routing section, a call alarm wakes the staff on duty by the
// roster file, not the other staff, the lead or the admin; shifts a lead
// sets through the API take effect at once, survive a restart, and staff
// may not set them.
func TestIntegrationRosterRoutingAndAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	dir := t.TempDir()
	y := string(hubYAML(t, filepath.Join(dir, "data")))
	extra := ""
	for _, u := range [][2]string{{"natt2", "staff"}, {"lead", "lead"}, {"adm", "admin"}} {
		extra += fmt.Sprintf("  - {username: %s, name: %s, role: %s, password_hash: %q}\n", u[0], u[0], u[1], testenv.Hash(t, u[0]+"-secret"))
	}
	y = strings.Replace(y, "users:\n", "roster: {file: roster.csv}\nusers:\n"+extra, 1)
	roster := "user,site,unit,date,start,end\nnatt1,solrosen,,daily,00:00,12:00\nnatt1,solrosen,,daily,12:00,00:00\n"
	if err := os.WriteFile(filepath.Join(dir, "roster.csv"), []byte(roster), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *service.Hub {
		var cfg hub.Config
		if err := config.Load(path, &cfg); err != nil {
			t.Fatal(err)
		}
		s, err := service.Start(&cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	press := func(s *service.Hub, id, device string) {
		s.Hub.HandleEvent("solrosen", "avd-a", []byte(fmt.Sprintf(`{"v":1,"id":%q,"device":%q,"dty":"0003","stc":"0010","state":"pressed","ts":%q}`,
			id, device, time.Now().UTC().Format(time.RFC3339Nano))))
	}
	s := start()
	base := "http://" + s.HTTPAddr()
	press(s, "e-1", "knapp-12")
	if to := notified(t, s, "knapp-12"); !slices.Equal(to, []string{"natt1"}) {
		t.Errorf("first alarm alerted %v, want natt1 (on duty) only", to)
	}
	// Staff may not edit the roster; a lead may.
	shifts := map[string]any{"shifts": []map[string]string{{"user": "natt2", "site": "solrosen", "date": "daily", "start": "00:00", "end": "23:59"}}}
	if code := testenv.DoJSON(t, http.MethodPut, base+"/api/v1/roster", staffUser, staffPass, shifts, nil); code != http.StatusForbidden {
		t.Errorf("staff PUT roster: %d", code)
	}
	if code := testenv.DoJSON(t, http.MethodPut, base+"/api/v1/roster", "lead", "lead-secret", shifts, nil); code != 200 {
		t.Fatalf("lead PUT roster: %d", code)
	}
	// Close the first alarm, so the next press raises a new one.
	var first string
	for _, a := range s.Hub.Alarms() {
		first = a.ID
	}
	for _, act := range []alarm.Action{alarm.ActAccept, alarm.ActPresence} {
		if _, err := s.Hub.Act(first, act, staffUser, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Hub.Act(first, alarm.ActResolve, staffUser, alarm.OutcomeTest, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = start()
	defer s.Close()
	base = "http://" + s.HTTPAddr()
	var got struct{ File, API []map[string]string }
	if code := testenv.GetJSON(t, base+"/api/v1/roster", "adm", "adm-secret", &got); code != 200 || len(got.File) != 2 || len(got.API) != 1 || got.API[0]["user"] != "natt2" {
		t.Errorf("roster after restart: %d %+v", code, got)
	}
	s.Hub.HandleEvent("hem-norr", "hem-1", []byte(fmt.Sprintf(`{"v":1,"id":"e-3","device":"knapp-1","dty":"0003","stc":"0010","state":"pressed","ts":%q}`,
		time.Now().UTC().Format(time.RFC3339Nano))))
	// hem-norr has no roster rows: every staff member (natt1, natt2), still not lead or admin.
	if to := notified(t, s, "knapp-1"); !slices.Equal(slices.Sorted(slices.Values(to)), []string{"natt1", "natt2"}) {
		t.Errorf("hem-norr alarm alerted %v, want all staff (nobody on duty there)", to)
	}
	press(s, "e-4", "knapp-12")
	deadline := time.Now().Add(3 * time.Second)
	var to []string
	for time.Now().Before(deadline) {
		for _, a := range s.Hub.Alarms() {
			if a.Device == "knapp-12" && a.Open() {
				for _, tr := range a.History() {
					if tr.Action == alarm.ActNotify {
						to = tr.To
					}
				}
			}
		}
		if to != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !slices.Equal(to, []string{"natt1", "natt2"}) {
		t.Errorf("after the lead's shift: alerted %v, want natt1 and natt2", to)
	}
}
