package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/gateway"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/mosquitto"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
	"github.com/vaka-care/vaka/tillsyn"
)

// tillsynHub starts a real hub whose clock runs in real time but shifted so
// that a whole minute M (the planned look-in) falls lead after now. The
// night window is M-1h to M+2h; r-7f3a has a bed monitor and a door sensor
// and a plan with one look-in at M, tolerance 1 min.
func tillsynHub(t *testing.T, lead, tolerance time.Duration) (*service.Hub, time.Time) {
	t.Helper()
	loc, _ := time.LoadLocation("Europe/Stockholm")
	real := time.Now()
	m := real.Add(lead).In(loc).Truncate(time.Minute).Add(time.Minute)
	offset := m.Sub(real.Add(lead))
	clock := func() time.Time { return time.Now().Add(offset) }
	hm := func(t time.Time) string { return t.In(loc).Format("15:04") }
	yaml := fmt.Sprintf(`data_dir: %s
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
users:
  - {username: natt1, name: Natt Ett, role: staff, password_hash: %q}
  - {username: tekn1, name: Tekniker, role: technician, password_hash: %q}
sites:
  - id: solrosen
    night: {start: %q, end: %q}
    units: [{id: avd-a}]
    residents:
      - id: r-7f3a
        unit: avd-a
        name: Astrid
        consent: {rules: [tillsyn], recorded_by: anna, recorded_at: "2026-11-01"}
        plan:
          tillsyn:
            times: [%q]
            tolerance: %s
            all_right: {in_bed: true, door_closed: true, no_alarm_open: true}
            not_all_right: {do: alarm, priority: 2}
            replaces: [%q]
    gateways:
      - id: avd-a
        password_hash: %q
        heartbeat: 30s
        devices:
          - {id: sang-12, type: bed_monitor, resident: r-7f3a, unit: avd-a, room: "12"}
          - {id: dorr-12, type: door_sensor, resident: r-7f3a, unit: avd-a, room: "12"}
`, t.TempDir(), testenv.Hash(t, staffPass), testenv.Hash(t, "tekn1-secret"), hm(m.Add(-time.Hour)), hm(m.Add(2*time.Hour)),
		hm(m), tolerance, hm(m), testenv.Hash(t, gwPass))
	var cfg hub.Config
	if err := config.Decode("hub.yaml", []byte(yaml), &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)), service.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, m
}

// waitRecord polls the hub for the look-in's record, bounded in time.
func waitRecord(t *testing.T, s *service.Hub, within time.Duration) tillsyn.Record {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if recs := s.Hub.TillsynRecords(); len(recs) > 0 {
			return recs[0]
		}
	}
	t.Fatalf("no supervision record within %s", within)
	return tillsyn.Record{}
}

// The real path: mosquitto_pub plays zigbee2mqtt (payloads as
// zigbee-herdsman-converters' occupancy and contact converters publish
// them: occupancy true for a bed mat with someone on it, contact true for a
// closed door) → Mosquitto → the gateway's zigbee2mqtt driver → the hub,
// whose look-in at the planned minute comes out all right, journaled with
// the evidence of both sensors, shown in the round view API.
func TestIntegrationTillsynLookInFromZigbee2MQTT(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Mosquitto, a hub and a gateway")
	}
	if runtime.GOARCH == "386" {
		t.Skip("child processes crash under qemu-i386 user emulation")
	}
	mq, err := mosquitto.Start(mosquitto.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mq.Stop)
	send := testenv.MosquittoPub(t, mq.Addr)
	send("zigbee2mqtt/bridge/state", `{"state":"online"}`, true)

	// zigbee2mqtt's retained availability: the gateway's driver reports
	// both devices as soon as it subscribes, which tells the test when
	// state changes (not retained) will reach it.
	send("zigbee2mqtt/rum-12/sang/availability", `{"state":"online"}`, true)
	send("zigbee2mqtt/rum-12/dorr/availability", `{"state":"online"}`, true)
	s, planned := tillsynHub(t, 15*time.Second, time.Minute)
	cfg := gateway.Config{
		Site: "solrosen", ID: "avd-a", Heartbeat: time.Second,
		Broker: gateway.Broker{URL: "tcp://" + s.MQTTAddr(), Username: "solrosen/avd-a", Password: gwPass},
		Devices: []devices.Device{
			{ID: "sang-12", Driver: "zigbee2mqtt", Type: "bed_monitor", Options: map[string]string{"friendly_name": "rum-12/sang"}},
			{ID: "dorr-12", Driver: "zigbee2mqtt", Type: "door_sensor", Options: map[string]string{"friendly_name": "rum-12/dorr"}}},
		Drivers: map[string]map[string]string{"zigbee2mqtt": {"url": "tcp://" + mq.Addr, "liveness_interval": "1s"}},
	}
	gw, err := gateway.New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)), devices.NewRegistry(), gateway.WithReconnectMax(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	heard := func() bool {
		devs, _ := s.Hub.Engine().Health()
		n := 0
		for _, d := range devs {
			if !d.NeverHeard {
				n++
			}
		}
		return n == 2
	}
	for deadline := time.Now().Add(30 * time.Second); !heard(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hub never heard the sensors through the gateway")
		}
	}
	// A bed mat (occupancy) and a door contact, as zigbee2mqtt reports them.
	send("zigbee2mqtt/rum-12/sang", `{"occupancy":true,"battery":91,"linkquality":120}`, false)
	send("zigbee2mqtt/rum-12/dorr", `{"contact":true,"battery":88,"linkquality":97}`, false)

	rec := waitRecord(t, s, 90*time.Second)
	if rec.Outcome != tillsyn.AllRight || rec.Resident != "r-7f3a" || !rec.Planned.Equal(planned) || !rec.Replaces {
		t.Fatalf("look-in %+v", rec)
	}
	// At the planned time, or (on a loaded machine, the states reaching
	// the hub after it) when they came, within the 1 min tolerance.
	if d := rec.At.Sub(planned); d < 0 || d > time.Minute {
		t.Errorf("look-in made %s after its planned time", d)
	}
	t.Logf("look-in final %s after its planned time", rec.At.Sub(planned).Round(time.Millisecond))
	said := map[string]string{}
	for _, ev := range rec.Evidence {
		if !ev.Usable || ev.LastSeen.IsZero() {
			t.Errorf("evidence %+v", ev)
		}
		said[ev.Device] = ev.Said
	}
	if said["sang-12"] != string(event.StateOccupied) || said["dorr-12"] != string(event.StateClosed) {
		t.Errorf("evidence says %v", said)
	}
	base := "http://" + s.HTTPAddr()
	var round struct {
		Entries []struct {
			Resident, State, SV, EN string
		}
		Names map[string]string
	}
	if code := testenv.DoJSON(t, http.MethodGet, base+"/api/v1/tillsyn", staffUser, staffPass, nil, &round); code != http.StatusOK {
		t.Fatalf("round view: %d", code)
	}
	if len(round.Entries) != 1 || round.Entries[0].State != "all_right" || round.Entries[0].SV != "Allt väl" || round.Names["solrosen/r-7f3a"] != "Astrid" {
		t.Errorf("round view %+v", round)
	}
	if code := testenv.DoJSON(t, http.MethodGet, base+"/api/v1/tillsyn", "tekn1", "tekn1-secret", nil, nil); code != http.StatusForbidden {
		t.Errorf("technician got the round view: %d", code)
	}
}

// The round view in Chromium at phone size: with no tolerance and no
// sensor ever heard, the look-in cannot tell (not fitted) and is on top as
// needing a visit; the nurse records the visit with the button and the
// page shows it made.
func TestIntegrationBrowserTillsynRound(t *testing.T) {
	chrome := testenv.LookPath(t, "chromium")
	s, _ := tillsynHub(t, 2*time.Second, 0)
	rec := waitRecord(t, s, 60*time.Second)
	if rec.Outcome != tillsyn.CannotTell || rec.Cause != tillsyn.CauseNotFitted || rec.VisitBy.IsZero() {
		t.Fatalf("look-in %+v", rec)
	}
	base := "http://" + s.HTTPAddr()
	ctx := phoneBrowser(t, chrome)
	login(t, ctx, base, staffUser, staffPass)
	item := `#visit-list .item[data-resident="r-7f3a"][data-needs="true"]`
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/static/tillsyn.html"), chromedp.WaitVisible(chromedp.CSS(item))); err != nil {
		t.Fatalf("round view: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(item)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Astrid", "rum 12", "Kan inte avgöra", "Cannot tell", "Besök senast", "Besök gjort"} {
		if !strings.Contains(text, want) {
			t.Errorf("entry lacks %q: %q", want, text)
		}
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil || width > 360 {
		t.Errorf("page is %d px wide at a 360 px viewport (%v)", width, err)
	}
	screenshot(t, ctx, "tillsyn-round-360.png")
	done := `.item[data-resident="r-7f3a"][data-needs="false"] .done`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(item+` button.visit`)), chromedp.WaitVisible(chromedp.CSS(done))); err != nil {
		t.Fatalf("recording the visit: %v", err)
	}
	if got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(done))); err != nil || !strings.Contains(got, "natt1") {
		t.Errorf("visit shown as %q (%v)", got, err)
	}
	screenshot(t, ctx, "tillsyn-round-visited-360.png")
}
