package rules

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/vaka-care/vaka/event"
)

// ReplayAlarm is one alarm a rule would have raised.
type ReplayAlarm struct {
	At       time.Time `json:"at"`
	Rule     string    `json:"rule"`
	Site     string    `json:"site"`
	Unit     string    `json:"unit,omitempty"`
	Resident string    `json:"resident,omitempty"`
	Device   string    `json:"device,omitempty"`
}

// ReplayReport is what a rule set would have done over an event log.
type ReplayReport struct {
	Events   int            `json:"events"`
	Skipped  int            `json:"skipped"` // lines that were not valid events
	From     time.Time      `json:"from"`
	To       time.Time      `json:"to"`
	PerRule  map[string]int `json:"per_rule"`
	Restores map[string]int `json:"restores"`
	Alarms   []ReplayAlarm  `json:"alarms"`
}

// ReadEvents reads a JSON-lines event log (one event per line, in the MQTT
// payload format with "site" and "gateway" filled in). Lines that are not
// valid events are counted in skipped, never fatal: a month of logs should
// not be lost to one bad line.
func ReadEvents(r io.Reader) (evs []event.Event, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), event.MaxPayload+1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var where struct {
			Site    string `json:"site"`
			Gateway string `json:"gateway"`
		}
		if json.Unmarshal(line, &where) != nil || where.Site == "" || where.Gateway == "" {
			skipped++
			continue
		}
		ev, err := event.Decode(where.Site, where.Gateway, line)
		if err != nil {
			skipped++
			continue
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		return evs, skipped, fmt.Errorf("rules: read events: %w", err)
	}
	return evs, skipped, nil
}

// Replay runs cfg's rules over events in time order (by source time) and
// reports the alarms each rule would have raised. Timers fire at their own
// deadlines between events, so holds behave exactly as live. Gateways are
// not supervised in replay (an event log has no heartbeats).
func Replay(cfg Config, evs []event.Event) ReplayReport {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	e := New(cfg)
	e.live = map[string]*liveness{}
	rep := ReplayReport{Events: len(evs), PerRule: map[string]int{}, Restores: map[string]int{}}
	if len(evs) == 0 {
		return rep
	}
	rep.From, rep.To = evs[0].Time, evs[len(evs)-1].Time
	ended := false
	record := func(acts []Action, at time.Time) {
		for _, a := range acts {
			if ended && a.Rule == RuleDeviceSilent {
				continue // the log ended, not the device
			}
			if a.Kind == Update {
				continue // a position update of an alarm already counted
			}
			if a.Kind == Restore {
				rep.Restores[a.Rule]++
				continue
			}
			rep.PerRule[a.Rule]++
			rep.Alarms = append(rep.Alarms, ReplayAlarm{At: at, Rule: a.Rule, Site: a.Site, Unit: a.Unit, Resident: a.Resident, Device: a.Device})
		}
	}
	// Devices are expected from the first event on, as a live hub would.
	e.Expect(evs[0].Time)
	step := func(until time.Time) {
		for i := 0; i < 1_000_000; i++ {
			at, ok := e.NextDeadline()
			if !ok || at.After(until) {
				return
			}
			record(e.Supervise(at), at)
		}
	}
	var buf []Action
	for i := range evs {
		ev := evs[i]
		step(ev.Time)
		buf, _ = e.Eval(&ev, ev.Time, buf[:0])
		record(buf, ev.Time)
	}
	// Let holds that started before the log ended play out, up to a day.
	ended = true
	step(rep.To.Add(24 * time.Hour))
	return rep
}
