package zigbee2mqtt

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vaka-care/vaka/devices"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
)

// sample is one entry of testdata/corpus.json (see testdata/README.md).
type sample struct {
	Name     string            `json:"name"`
	Source   string            `json:"source"`
	Type     string            `json:"type"`
	Options  map[string]string `json:"options"`
	Resident bool              `json:"resident"`
	Messages []struct {
		Topic   string `json:"topic"` // "" state, "/availability", "bridge/state"
		Payload string `json:"payload"`
	} `json:"messages"`
	After    string   `json:"after"` // run supervision this long after the last message
	Nurse    []string `json:"nurse"` // rules raised, in order; "restore:<rule>" for a restoral
	Alive    bool     `json:"alive"`
	Unmapped *int64   `json:"unmapped"`
}

// TestCorpus runs every sample of the conformance corpus through the
// driver and the real rule engine, and checks what a nurse gets.
func TestCorpus(t *testing.T) {
	raw, err := os.ReadFile("testdata/corpus.json")
	if err != nil {
		t.Fatal(err)
	}
	var corpus []sample
	if err := json.Unmarshal(raw, &corpus); err != nil {
		t.Fatal(err)
	}
	if len(corpus) < 37 {
		t.Fatalf("corpus has %d samples, want at least the issue's 37", len(corpus))
	}
	loc, _ := time.LoadLocation("Europe/Stockholm")
	for _, s := range corpus {
		t.Run(s.Name, func(t *testing.T) {
			if s.Source == "" {
				t.Fatal("sample without its upstream source")
			}
			got, alive, unmapped := runSample(t, s, loc)
			want := s.Nurse
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("nurse gets %q, want %q (source: %s)", got, want, s.Source)
			}
			if s.Alive && !alive {
				t.Errorf("the hub never heard the device: supervision not refreshed")
			}
			if s.Unmapped != nil && unmapped != *s.Unmapped {
				t.Errorf("unmapped counted %d, want %d", unmapped, *s.Unmapped)
			}
		})
	}
}

func runSample(t *testing.T, s sample, loc *time.Location) (nurse []string, alive bool, unmapped int64) {
	t.Helper()
	dev := devices.Device{ID: "dev-1", Driver: Name, Type: s.Type, Options: map[string]string{"friendly_name": "rum-12/enhet"}}
	for k, v := range s.Options {
		dev.Options[k] = v
	}
	if s.Resident {
		dev.Resident = "r-1"
	}
	drv, err := New(DefaultOpts, []devices.Device{dev}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 02:00 in the night, Stockholm time: night rules apply.
	now := time.Date(2026, 11, 24, 2, 0, 0, 0, loc)
	drv.now = func() time.Time { return now }
	var evs []event.Event
	drv.mu.Lock()
	drv.emit = func(ev event.Event) { evs = append(evs, ev) }
	drv.mu.Unlock()

	typ, err := event.ParseDeviceType(s.Type)
	if err != nil {
		t.Fatal(err)
	}
	night, _ := rules.ParseWindow("22:00", "06:30")
	site := &rules.Site{ID: "s1", Night: night, Plan: rules.DefaultPlan(),
		Devices:   map[string]*rules.Device{"dev-1": {ID: "dev-1", Site: "s1", Gateway: "gw1", Type: typ, Resident: dev.Resident}},
		Gateways:  map[string]*rules.Gateway{"gw1": {ID: "gw1", Site: "s1"}},
		Residents: map[string]*rules.Resident{}}
	if s.Resident {
		site.Residents["r-1"] = &rules.Resident{ID: "r-1", Plan: rules.DefaultPlan(), Consent: map[string]bool{rules.RuleBedExit: true}}
	}
	eng := rules.New(rules.Config{Location: loc, Sites: map[string]*rules.Site{"s1": site}})
	raised := map[string]bool{}
	record := func(acts []rules.Action) {
		for _, a := range acts {
			switch {
			case a.Kind == rules.Raise:
				raised[a.Key] = true
				nurse = append(nurse, a.Rule)
			case a.Kind == rules.Restore && raised[a.Key]:
				// As the hub does: a restore applies to an open alarm.
				nurse = append(nurse, "restore:"+a.Rule)
			}
		}
	}
	seq := 0
	for _, m := range s.Messages {
		topic := "zigbee2mqtt/rum-12/enhet" + m.Topic
		if m.Topic == "bridge/state" {
			topic = "zigbee2mqtt/bridge/state"
		}
		evs = evs[:0]
		drv.Handle(topic, []byte(m.Payload))
		for _, ev := range evs {
			seq++
			ev.V, ev.ID, ev.Site, ev.Gateway = event.Version, fmt.Sprintf("b-%d", seq), "s1", "gw1"
			if err := ev.Validate(); err != nil {
				t.Fatalf("driver emitted an invalid event %+v: %v", ev, err)
			}
			acts, _ := eng.Eval(&ev, now, nil)
			record(acts)
		}
		now = now.Add(time.Minute)
	}
	if s.After != "" {
		d, err := time.ParseDuration(s.After)
		if err != nil {
			t.Fatal(err)
		}
		record(eng.Supervise(now.Add(d)))
	}
	devs, _ := eng.Health()
	for _, h := range devs {
		if h.Device == "dev-1" && !h.NeverHeard {
			alive = true
		}
	}
	if nurse == nil {
		nurse = []string{}
	}
	return nurse, alive, drv.Stats().Unmapped
}
