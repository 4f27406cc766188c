package service_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// appSession logs in as a browser does: a session cookie and a CSRF token.
func appSession(t *testing.T, base, user, pass string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body, _ := json.Marshal(map[string]string{"username": user, "password": pass})
	resp, err := c.Post(base+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login %s: %v %v", user, err, resp)
	}
	defer resp.Body.Close()
	var me struct {
		CSRF string `json:"csrf"`
	}
	json.NewDecoder(resp.Body).Decode(&me)
	return c, me.CSRF
}

func postShown(t *testing.T, c *http.Client, base, id, csrf string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/alarms/"+id+"/shown", bytes.NewReader([]byte(`{"tier":0}`)))
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The staff app's receipt ("the card is on my screen") is journaled as a
// delivered transition with channel app, once per session and tier; it
// needs a logged-in session with its CSRF token, a role that answers
// alarms, and an alarm that was sent to the user.
func TestIntegrationAppReceiptIsJournaledCheckedAndCSRFSafe(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a whole hub over loopback TCP")
	}
	routing := `routing:
  receivers:
    - {name: natt, users: [natt1]}
  route: {receiver: natt}
`
	dir := t.TempDir()
	s := startStaffHub(t, dir, routing)
	base := "http://" + s.HTTPAddr()
	c, err := connect(t, s.MQTTAddr(), "solrosen/avd-a", gwPass, "app-receipt-gw")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(t, c, event.EventTopic("solrosen", "avd-a"), callEvent("b-app")); err != nil {
		t.Fatal(err)
	}
	// The alarm and its notify step (natt1 alerted).
	var id string
	for i := 0; i < 200 && id == ""; i++ {
		for _, a := range s.Hub.Alarms() {
			if slices.ContainsFunc(a.History(), func(h alarm.Transition) bool { return h.Action == alarm.ActNotify }) {
				id = a.ID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if id == "" {
		t.Fatal("no notified alarm")
	}
	natt1, csrf := appSession(t, base, "natt1", "natt1-secret")
	if code := postShown(t, natt1, base, id, ""); code != http.StatusForbidden {
		t.Errorf("without the CSRF token: %d, want 403", code)
	}
	// Basic auth is an API client, not a phone's app session.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/alarms/"+id+"/shown", nil)
	req.SetBasicAuth("natt1", "natt1-secret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("basic auth: %v %v", err, resp)
	}
	// natt2 was not alerted (the route names natt1 only).
	natt2, csrf2 := appSession(t, base, "natt2", "natt2-secret")
	if code := postShown(t, natt2, base, id, csrf2); code != http.StatusConflict {
		t.Errorf("natt2, not alerted: %d, want 409", code)
	}
	if code := postShown(t, natt1, base, id, csrf); code != http.StatusOK {
		t.Fatalf("natt1: %d", code)
	}
	if code := postShown(t, natt1, base, id, csrf); code != http.StatusOK {
		t.Fatalf("natt1 again: %d", code)
	}
	a, _ := s.Hub.Alarm(id)
	var app []alarm.Delivery
	for _, d := range a.Deliveries {
		if d.Via() == alarm.ChannelApp {
			app = append(app, d)
		}
	}
	if len(app) != 1 || app[0].User != "natt1" || app[0].Tier != 0 || app[0].Channel != alarm.ChannelApp {
		t.Fatalf("app deliveries %+v (all %+v)", app, a.Deliveries)
	}
	n := 0
	for _, h := range a.History() {
		if h.Action == alarm.ActDelivered && h.Channel == alarm.ChannelApp && h.By == "natt1" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d delivered transitions with channel app in the history", n)
	}
	if _, err := s.Hub.Act(id, alarm.ActAccept, "natt1", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Hub.Act(id, alarm.ActResolve, "natt1", alarm.OutcomeRealNeed, ""); err != nil {
		t.Fatal(err)
	}
	if code := postShown(t, natt1, base, id, csrf); code != http.StatusConflict {
		t.Errorf("after resolve: %d, want 409", code)
	}
	// The journal has it: a restarted hub still knows the receipt's channel.
	s.Close()
	s2 := startStaffHub(t, dir, routing)
	a2, ok := s2.Hub.Alarm(id)
	if !ok || !slices.ContainsFunc(a2.Deliveries, func(d alarm.Delivery) bool { return d.User == "natt1" && d.Channel == alarm.ChannelApp }) {
		t.Errorf("after a restart: %+v", a2)
	}
}
