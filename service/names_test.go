package service_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

// A resident's name reaches only the roles allowed to see it (default:
// staff and lead), on the list, the single alarm and the live stream;
// the journal never holds it.
func TestIntegrationResidentNameOnlyForAllowedRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	dir := t.TempDir()
	y := string(hubYAML(t, filepath.Join(dir, "data")))
	y = strings.Replace(y, "users:\n", fmt.Sprintf("users:\n  - {username: adm, name: Admin, role: admin, password_hash: %q}\n", testenv.Hash(t, "adm-secret")), 1)
	y = strings.Replace(y, "    gateways:\n      - id: avd-a",
		"    residents:\n      - {id: r-7f3a, name: Karin Andersson, unit: avd-a}\n    gateways:\n      - id: avd-a", 1)
	var cfg hub.Config
	if err := config.Decode("hub.yaml", []byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.HTTPAddr()
	staff := testenv.OpenStream(t, base, staffUser, staffPass)
	admin := testenv.OpenStream(t, base, "adm", "adm-secret")
	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "solrosen-avd-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("n-1")); err != nil {
		t.Fatal(err)
	}
	isCall := func(a *alarm.Alarm) bool { return a.Kind == alarm.KindCall }
	if a := staff.Next(t, time.Second, isCall); a.ResidentName() != "Karin Andersson" {
		t.Errorf("staff stream: resident_name %q", a.ResidentName())
	}
	if a := admin.Next(t, time.Second, isCall); a.ResidentName() != "" {
		t.Errorf("admin stream shows the name %q", a.ResidentName())
	}
	var list struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, base+"/api/v1/alarms", staffUser, staffPass, &list)
	if len(list.Alarms) != 1 || list.Alarms[0].ResidentName() != "Karin Andersson" {
		t.Errorf("staff list: %+v", list.Alarms)
	}
	var adminList struct{ Alarms []*alarm.Alarm }
	testenv.GetJSON(t, base+"/api/v1/alarms", "adm", "adm-secret", &adminList)
	if len(adminList.Alarms) != 1 || adminList.Alarms[0].ResidentName() != "" {
		t.Errorf("admin list shows the name: %+v", adminList.Alarms[0])
	}
	s.Close()
	b, _ := filepathReadFile(filepath.Join(dir, "data", "alarms.journal"))
	if strings.Contains(b, "Karin") {
		t.Error("the journal holds the resident's name")
	}
}

func filepathReadFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
