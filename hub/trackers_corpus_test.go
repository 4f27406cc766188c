package hub

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/store"
	"github.com/vaka-care/vaka/trackers"
	"github.com/vaka-care/vaka/trackers/trackerstest"
)

// corpusSample is one sample of trackers/testdata (see its README).
type corpusSample = trackerstest.Sample

const (
	corpusID      = "corpusWatch0123456789"
	corpusUnknown = "unregisteredWatch0000"
)

// corpusYAML: one tracker with no gateway, reachable by both protocols
// (so an OsmAnd SOS without a fix can probe what the tracker's last
// known position is after an OwnTracks sample).
func corpusYAML(key string) string {
	k := ""
	if key != "" {
		k = fmt.Sprintf(", owntracks_key: %q", key)
	}
	return `demo: true
timezone: Europe/Stockholm
mqtt: {tcp: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
sites:
  - id: s
    night: {start: "22:00", end: "06:30"}
    residents:
      - {id: r-a}
    trackers:
      - {id: t-1, resident: r-a, osmand_id: ` + corpusID + `, owntracks: jjolie/phone` + k + `}
`
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func corpusHub(t *testing.T, key string, c *clock) (*Hub, *prometheus.Registry, *syncBuf) {
	t.Helper()
	j, _, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	reg := prometheus.NewRegistry()
	logs := &syncBuf{}
	h, err := New(Options{Config: loadConfig(t, corpusYAML(key)), Journal: j, Now: c.Now, Registry: reg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return h, reg, logs
}

func loadHubCorpus(t *testing.T, name string) []corpusSample {
	return trackerstest.Load(t, "../trackers/testdata", name)
}

// triggerAlarms are the call and fall alarms in the hub.
func triggerAlarms(h *Hub) []*alarm.Alarm {
	var out []*alarm.Alarm
	for _, a := range h.Alarms() {
		if a.Rule == "call_button" || a.Rule == "fall" {
			out = append(out, a)
		}
	}
	return out
}

const priorLat, priorLon = 58.35, 11.93

// checkNurse asserts what the nurse gets: the alarm and its position, or,
// without an alarm, what the tracker's last known position now is (probed
// with an SOS that has no fix: a used fix is the last known one, a fix
// that is not valid is not).
func checkNurse(t *testing.T, h *Hub, c *clock, s corpusSample) {
	t.Helper()
	e := s.Expect
	as := triggerAlarms(h)
	if e.Alarm != "" {
		if len(as) != 1 || as[0].Rule != e.Alarm {
			t.Fatalf("alarms %v, want one %s", rulesOf(as), e.Alarm)
		}
		p := as[0].Position()
		switch e.Position {
		case "fix":
			if p == nil || p.Invalid || p.LastKnown != nil || !near(p.Lat, *e.Lat) || !near(p.Lon, *e.Lon) {
				t.Errorf("alarm position %+v, want the report's fix %v,%v", p, *e.Lat, *e.Lon)
			}
		case "not_valid":
			if p == nil || !p.Invalid || !strings.Contains(as[0].Note, "marks this position not valid") {
				t.Errorf("alarm position %+v note %q, want the fix marked and noted not valid", p, as[0].Note)
			}
		case "last_known":
			if p == nil || p.LastKnown == nil || !near(p.Lat, *e.Lat) || !near(p.Lon, *e.Lon) || !strings.Contains(as[0].Note, "last known position at") {
				t.Errorf("alarm position %+v note %q, want the last known fix, marked and noted", p, as[0].Note)
			}
		case "none":
			if p != nil {
				t.Errorf("alarm position %+v, want none", p)
			}
		}
		return
	}
	if len(as) != 0 {
		t.Fatalf("alarms %v, want none", rulesOf(as))
	}
	c.Add(time.Minute)
	if err := h.HandleOsmAnd(url.Values{"id": {corpusID}, "alarm": {"sos"}}); err != nil {
		t.Fatal(err)
	}
	as = triggerAlarms(h)
	if len(as) != 1 {
		t.Fatalf("probe SOS: alarms %v", rulesOf(as))
	}
	p := as[0].Position()
	switch {
	case e.Position == "fix":
		if p == nil || p.LastKnown == nil || !near(p.Lat, *e.Lat) || !near(p.Lon, *e.Lon) {
			t.Errorf("after the sample the last known position is %+v, want its fix %v,%v (used as a real position)", p, *e.Lat, *e.Lon)
		}
	case s.PriorFix:
		if p == nil || !near(p.Lat, priorLat) {
			t.Errorf("after the sample the last known position is %+v, want the earlier fix", p)
		}
	default:
		if p != nil {
			t.Errorf("after the sample the last known position is %+v, want none (the sample's fix must not be used)", p)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func rulesOf(as []*alarm.Alarm) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Rule)
	}
	return out
}

func checkBattery(t *testing.T, h *Hub, want *int) {
	t.Helper()
	if want == nil {
		return
	}
	for _, d := range h.Health().Devices {
		if d.Device == "t-1" && d.Battery != *want {
			t.Errorf("battery %d, want %d", d.Battery, *want)
		}
	}
}

// The OsmAnd/Traccar corpus end to end: the real HTTP handler and hub,
// each sample's status, alarm and position as the nurse must get them.
func TestCorpusOsmAndNurse(t *testing.T) {
	for _, s := range loadHubCorpus(t, "osmand.json") {
		t.Run(s.Name, func(t *testing.T) {
			c := newClock(time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC))
			h, reg, logs := corpusHub(t, "", c)
			if s.PriorFix {
				if err := h.HandleOsmAnd(url.Values{"id": {corpusID}, "lat": {fmt.Sprint(priorLat)}, "lon": {fmt.Sprint(priorLon)},
					"accuracy": {"10"}, "timestamp": {fmt.Sprint(c.Now().Add(-5 * time.Minute).Unix())}}); err != nil {
					t.Fatal(err)
				}
			}
			id := corpusID
			if s.Expect.Status == http.StatusNotFound {
				id = corpusUnknown
			}
			sub := func(x string) string {
				if s.UpstreamID == "" {
					return x
				}
				return strings.ReplaceAll(x, s.UpstreamID, id)
			}
			target := "/"
			if s.Query != "" {
				target += "?" + sub(s.Query)
			}
			req := httptest.NewRequest(s.Method, target, strings.NewReader(sub(s.Body)))
			if s.ContentType != "" {
				req.Header.Set("Content-Type", s.ContentType)
			}
			w := httptest.NewRecorder()
			trackers.NewHandler(h, trackers.HandlerOptions{}).ServeHTTP(w, req)
			if w.Code != s.Expect.Status {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), s.Expect.Status)
			}
			if n := s.Expect.Reports; n > 0 {
				if got := counter(t, reg, "vaka_tracker_reports_total", "source", "osmand", "result", "ok"); got != float64(n+btoi(s.PriorFix)) {
					t.Errorf("reports ok %v, want %d", got, n)
				}
			}
			checkNurse(t, h, c, s)
			checkBattery(t, h, s.Expect.Battery)
			if strings.Contains(logs.String(), corpusID) {
				t.Error("the OsmAnd id reached the log")
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The OwnTracks corpus end to end, encrypted payloads included: decrypted
// with the device's owntracks_key, counted and logged without content when
// it has none.
func TestCorpusOwnTracksNurse(t *testing.T) {
	for _, s := range loadHubCorpus(t, "owntracks.json") {
		t.Run(s.Name, func(t *testing.T) {
			c := newClock(time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC))
			h, reg, logs := corpusHub(t, s.Key, c)
			tp, ok := trackers.ParseOwnTracksTopic(s.Topic)
			if !ok {
				t.Fatalf("topic %q", s.Topic)
			}
			err := h.HandleOwnTracks(tp.User, tp.Device, tp.Leaf, []byte(s.Payload))
			var te *trackers.Error
			switch s.Expect.Result {
			case "ok", "ignored":
				if err != nil {
					t.Fatalf("err %v", err)
				}
			case "no_key":
				if !errors.Is(err, trackers.ErrNoKey) {
					t.Fatalf("err %v, want ErrNoKey", err)
				}
				if got := counter(t, reg, "vaka_tracker_reports_total", "source", "owntracks", "result", "encrypted_no_key"); got != 1 {
					t.Errorf("encrypted_no_key %v, want 1", got)
				}
				if !strings.Contains(logs.String(), "no owntracks_key") {
					t.Errorf("not logged: %s", logs.String())
				}
			case "refused":
				if !errors.As(err, &te) || errors.Is(err, trackers.ErrNoKey) {
					t.Fatalf("err %v, want a refusal", err)
				}
			}
			for _, leak := range []string{"58.35", "11.93", "mysecreTpass01"} {
				if strings.Contains(logs.String(), leak) {
					t.Errorf("the log holds %q: %s", leak, logs.String())
				}
			}
			checkNurse(t, h, c, s)
			checkBattery(t, h, s.Expect.Battery)
		})
	}
}
