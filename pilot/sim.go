package pilot

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Simulate generates plausible pilot records for trial t over [from, to)
// from a fixed seed (the demo and tests): the same seed gives the same
// records. Figures follow the shared domain notes: most presses at night
// are toileting or care, many day presses are information requests, bed
// and door sensors add alarms and false alarms, and catch needs the
// resident did not press for. An arm whose id or name mentions "sensor"
// gets sensors; others have the call button only.
func Simulate(t *Trial, from, to time.Time, loc *time.Location, seed uint64, ps *Pseudonymizer) []Record {
	if loc == nil {
		loc = time.UTC
	}
	if ps == nil {
		ps = NewPseudonymizer([]byte("simulated"))
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []Record
	n := 0
	lognorm := func(median, sigma float64) float64 { return median * math.Exp(sigma*rng.NormFloat64()) }
	pick := func(weights map[string]float64, order []string) string {
		x := rng.Float64()
		for _, k := range order {
			x -= weights[k]
			if x < 0 {
				return k
			}
		}
		return order[len(order)-1]
	}
	outcomeOrder := []string{"real_need", "false", "technical", "information", "test"}
	for _, arm := range t.Arms {
		sensors := containsFold(arm.ID, "sensor") || containsFold(arm.Name, "sensor")
		residents := arm.ResidentCount
		if residents == 0 {
			residents = len(arm.Residents)
		}
		if residents == 0 {
			residents = 6
		}
		site, unit := "sim", arm.ID
		if len(arm.Units) > 0 {
			site, unit, _ = cut(arm.Units[0])
		}
		acceptMedian := 42.0
		if sensors {
			acceptMedian = 26 // sensor alarms say who and where: staff accept faster
		}
		emit := func(res string, src Source, at time.Time, outcome string) {
			n++
			r := Record{Alarm: fmt.Sprintf("S%06d", n), Trial: t.ID, Arm: arm.ID, Site: site, Unit: unit,
				Resident: ps.ID(site, res), Device: ps.ID(site, res+"-"+string(src)), Source: src,
				Kind: "call", Rule: "call_button", RaisedAt: at, Outcome: outcome,
				ToPhone: math.Round((0.3+rng.Float64()*1.5)*1000) / 1000}
			switch src {
			case SrcBed:
				r.Kind, r.Rule = "wander", "bed_exit"
			case SrcDoor:
				r.Kind, r.Rule = "wander", "room_door_at_night"
			case SrcTechnical:
				r.Kind, r.Rule = "technical", "device_silent"
			}
			h := at.In(loc).Hour()
			r.Night = h >= 22 || h < 7
			acc := lognorm(acceptMedian, 0.55)
			if rng.Float64() < 0.03 {
				acc = 180 + rng.Float64()*240 // unaccepted until escalation
				r.Escalated = true
			}
			r.ToAccept = math.Round(acc*10) / 10
			if outcome != "technical" && outcome != "test" && outcome != "information" {
				r.ToPresence = math.Round((acc+lognorm(240, 0.5))*10) / 10
			} else {
				r.ToPresence = Missing
			}
			r.ToResolve = math.Round((max(acc, r.ToPresence)+lognorm(420, 0.5))*10) / 10
			out = append(out, r)
		}
		for day := from; day.Before(to); day = day.AddDate(0, 0, 1) {
			for i := 0; i < residents; i++ {
				res := fmt.Sprintf("%s-r%02d", arm.ID, i+1)
				evening := time.Date(day.Year(), day.Month(), day.Day(), 22, 0, 0, 0, loc)
				night := func() time.Time { return evening.Add(time.Duration(rng.Float64() * float64(9*time.Hour))) }
				// Night button presses: toileting, care.
				if rng.Float64() < 0.22 {
					emit(res, SrcButton, night(), pick(map[string]float64{"real_need": 0.6, "false": 0.12, "technical": 0.04, "information": 0.19, "test": 0.05}, outcomeOrder))
				}
				// Day presses peak 08–11, often information requests.
				if rng.Float64() < 0.12 {
					at := time.Date(day.Year(), day.Month(), day.Day(), 8, 0, 0, 0, loc).Add(time.Duration(rng.Float64() * float64(3*time.Hour)))
					emit(res, SrcButton, at, pick(map[string]float64{"real_need": 0.35, "false": 0.1, "technical": 0.03, "information": 0.47, "test": 0.05}, outcomeOrder))
				}
				if !sensors {
					continue
				}
				// Bed exit and room door at night.
				if rng.Float64() < 0.30 {
					at := night()
					src := SrcBed
					if rng.Float64() < 0.4 {
						src = SrcDoor
					}
					o := pick(map[string]float64{"real_need": 0.55, "false": 0.33, "technical": 0.07, "information": 0.0, "test": 0.05}, outcomeOrder)
					emit(res, src, at, o)
					// Sometimes the resident also presses: both caught it.
					if o == "real_need" && rng.Float64() < 0.2 {
						emit(res, SrcButton, at.Add(time.Duration(1+rng.IntN(8))*time.Minute), "real_need")
					}
				}
				if rng.Float64() < 0.01 {
					emit(res, SrcTechnical, night(), "technical")
				}
			}
		}
	}
	return out
}

func containsFold(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }

func cut(s string) (string, string, bool) { return strings.Cut(s, "/") }
