package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/testenv"
)

// lenientAlarms applies staff steps with alarm.Apply only, without the
// owner rule: the API in front of it must refuse on its own.
type lenientAlarms struct {
	queuedAlarms
	mu sync.Mutex
	a  *alarm.Alarm
}

func (l *lenientAlarms) Alarm(id string) (*alarm.Alarm, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id != l.a.ID {
		return nil, false
	}
	return l.a.Clone(), true
}

func (l *lenientAlarms) Act(id string, act alarm.Action, by string, o alarm.Outcome, note string) (*alarm.Alarm, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := alarm.Apply(l.a, alarm.Transition{Alarm: id, Action: act, By: by, Outcome: o, Note: note, At: time.Now()}); err != nil {
		return nil, err
	}
	return l.a.Clone(), nil
}

// The API refuses a step on an alarm someone else accepted with 409, a
// clear message and both names, until the take-over.
func TestActRefusedWithoutTakeOver(t *testing.T) {
	l := &lenientAlarms{a: alarm.New("A1", time.Now())}
	l.a.Kind = alarm.KindCall
	auth := NewAuth([]User{{Username: "natt1", Name: "Natt Ett", Role: RoleStaff, PasswordHash: testenv.Hash(t, "pw")},
		{Username: "natt2", Name: "Natt Två", Role: RoleStaff, PasswordHash: testenv.Hash(t, "pw")}}, time.Hour, nil)
	srv := httptest.NewServer(New(Options{Alarms: l, Auth: auth}))
	t.Cleanup(srv.Close)
	post := func(user, action, body string) (int, map[string]string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/alarms/A1/"+action, strings.NewReader(body))
		req.SetBasicAuth(user, "pw")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, _ := post("natt1", "accept", ""); code != 200 {
		t.Fatalf("accept: %d", code)
	}
	for _, step := range [][2]string{{"presence", ""}, {"resolve", `{"outcome":"false"}`}} {
		code, m := post("natt2", step[0], step[1])
		if code != http.StatusConflict || m["code"] != "owned_by_other" || m["accepted_by"] != "natt1" ||
			m["accepted_by_name"] != "Natt Ett" || !strings.Contains(m["error"], "take it over") {
			t.Errorf("natt2 %s on natt1's alarm: %d %v", step[0], code, m)
		}
	}
	if code, m := post("natt2", "take_over", ""); code != 200 {
		t.Fatalf("take over: %d %v", code, m)
	}
	if code, _ := post("natt2", "presence", ""); code != 200 {
		t.Errorf("presence by the new owner: %d", code)
	}
	if code, _ := post("natt1", "resolve", `{"outcome":"false"}`); code != http.StatusConflict {
		t.Errorf("the old owner resolving: %d, want 409", code)
	}
	last := l.a.History()[len(l.a.History())-1]
	if l.a.AcceptedBy() != "natt2" || last.Action != alarm.ActPresence {
		t.Errorf("alarm after: %s, last %+v", l.a.AcceptedBy(), last)
	}
	// A take-over of a raised alarm is refused: accept it instead.
	l.a = alarm.New("A1", time.Now())
	if code, _ := post("natt2", "take_over", ""); code != http.StatusConflict {
		t.Errorf("take-over of a raised alarm: %d, want 409", code)
	}
}
