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
// records. It is SimulateData's alarms.
func Simulate(t *Trial, from, to time.Time, loc *time.Location, seed uint64, ps *Pseudonymizer) []Record {
	return SimulateData(t, from, to, loc, seed, ps).Alarms
}

// SimulateData generates a trial's alarms and device outages (each
// outage also raises its device_silent alarm), and takes participants
// from the trial's consent records (see SimConsent). Figures follow the shared domain notes: most presses at night
// are toileting or care, many day presses are information requests, bed
// and door sensors add alarms and false alarms, and catch needs the
// resident did not press for. An arm whose id or name mentions "sensor"
// gets sensors; others have the call button only.
//
// Device outages follow the domain notes on supervision: a call button
// is supervised at minute level (found silent 2–3 min after its last
// radio test), battery sensors every 10–15 min; most outages end within
// the hour (a reconnect, a new battery), some wait for the day shift.
func SimulateData(t *Trial, from, to time.Time, loc *time.Location, seed uint64, ps *Pseudonymizer) Data {
	if loc == nil {
		loc = time.UTC
	}
	if ps == nil {
		ps = NewPseudonymizer([]byte("simulated"))
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []Record
	var outages []Outage
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
		residents, site, unit := simLayout(arm)
		acceptMedian := 42.0
		if sensors {
			acceptMedian = 26 // sensor alarms say who and where: staff accept faster
		}
		emit := func(res string, src Source, at time.Time, outcome string) *Record {
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
			if rng.Float64() < 0.3 {
				r.PhoneVia = "app" // the phone had the app open: no push needed
			} else {
				r.PhoneVia = "push"
			}
			out = append(out, r)
			return &out[len(out)-1]
		}
		// outage: device dev (of kind src) of resident res goes silent on day.
		outage := func(res string, src Source, day time.Time) {
			silent := day.Add(time.Duration(rng.Float64() * float64(24*time.Hour)))
			detect := 120 + rng.Float64()*60 // call button: minute-level supervision
			if src != SrcButton {
				detect = 600 + rng.Float64()*300 // battery sensors
			}
			detected := silent.Add(time.Duration(math.Round(detect*1000)) * time.Millisecond)
			down := lognorm(1800, 0.8)
			if rng.Float64() < 0.15 {
				down = lognorm(6*3600, 0.4) // waits for the day shift
			}
			r := emit(res, SrcTechnical, detected, "technical")
			r.Device = ps.ID(site, res+"-"+string(src))
			o := Outage{ID: r.Alarm, Trial: t.ID, Arm: arm.ID, Site: site, Unit: unit, Device: r.Device, Source: src,
				SilentFrom: silent, DetectedAt: detected, RestoredAt: detected.Add(time.Duration(math.Round(down)) * time.Second)}
			if rng.Float64() < 0.05 {
				o.SilentFrom = time.Time{} // the hub restarted while the device was silent
			}
			outages = append(outages, o)
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
			}
			// Supervised devices: the button, and the arm's sensors.
			for i := 0; i < residents; i++ {
				res := fmt.Sprintf("%s-r%02d", arm.ID, i+1)
				devs := []Source{SrcButton}
				if sensors {
					devs = append(devs, SrcBed, SrcDoor)
				}
				for _, src := range devs {
					if rng.Float64() < 0.012 {
						outage(res, src, day)
					}
				}
			}
		}
	}
	lookins, visits := simulateSupervision(t, from, to, loc, seed, ps)
	return Data{Alarms: out, Outages: outages, Participants: t.Participation(loc, nil), LookIns: lookins, Visits: visits}
}

// simulateSupervision generates the supervision records of sensor arms:
// two digital look-ins a night per resident (23:00 and 03:00), each
// standing in for a planned physical visit; most all right, some not (an
// alarm, an open alarm, or a visit), some unable to tell (a silent sensor
// most often), and the visits staff record for those that asked. Its own
// random stream, so the alarms above stay as they were.
func simulateSupervision(t *Trial, from, to time.Time, loc *time.Location, seed uint64, ps *Pseudonymizer) ([]LookIn, []Visit) {
	rng := rand.New(rand.NewPCG(seed^0x7111ab, seed+16))
	var ls []LookIn
	var vs []Visit
	for _, arm := range t.Arms {
		if !containsFold(arm.ID, "sensor") && !containsFold(arm.Name, "sensor") {
			continue
		}
		residents, site, unit := simLayout(arm)
		for day := from; day.Before(to); day = day.AddDate(0, 0, 1) {
			night := day.Format("2006-01-02")
			for i := 0; i < residents; i++ {
				res := ps.ID(site, fmt.Sprintf("%s-r%02d", arm.ID, i+1))
				for _, at := range []time.Time{time.Date(day.Year(), day.Month(), day.Day(), 23, 0, 0, 0, loc),
					time.Date(day.Year(), day.Month(), day.Day()+1, 3, 0, 0, 0, loc)} {
					l := LookIn{ID: site + "/" + res + "/" + night + "/" + at.Format("15:04"), Trial: t.ID, Arm: arm.ID,
						Site: site, Unit: unit, Resident: res, Night: night, Planned: at, Outcome: "all_right", Replaces: true}
					asked := false
					switch x := rng.Float64(); {
					case x < 0.045:
						l.Outcome = "not_all_right"
						switch y := rng.Float64(); {
						case y < 0.3:
							l.LedTo = "alarm"
						case y < 0.6:
							l.LedTo = "open_alarm"
						default:
							l.LedTo, asked = "visit", true
						}
					case x < 0.07:
						l.Outcome, l.LedTo, asked = "cannot_tell", "visit", true
						switch y := rng.Float64(); {
						case y < 0.6:
							l.Cause = "silent_sensor"
						case y < 0.8:
							l.Cause = "not_fitted"
						case y < 0.9:
							l.Cause = "no_consent"
						default:
							l.Cause = "late"
						}
					}
					ls = append(ls, l)
					if asked && rng.Float64() < 0.95 {
						v := at.Add(time.Duration(10+rng.IntN(20)) * time.Minute)
						vs = append(vs, Visit{ID: site + "/" + res + "/" + v.UTC().Format(time.RFC3339), Trial: t.ID, Arm: arm.ID,
							Site: site, Resident: res, Night: night, At: v, Asked: true})
					}
				}
			}
		}
	}
	return ls, vs
}

// SimDevices is how many supervised devices SimulateData gives an arm of
// n residents: a call button each, and a bed and a door sensor each in an
// arm with sensors.
func SimDevices(a Arm, n int) int {
	if containsFold(a.ID, "sensor") || containsFold(a.Name, "sensor") {
		return 3 * n
	}
	return n
}

// SimConsent makes consent records for the residents SimulateData
// invents ("<arm>-rNN" at the arm's first unit's site), recorded before
// the trial starts; a few withdraw before until (more in an arm with
// sensors, where some find them intrusive). The same seed gives the same
// records.
func SimConsent(t *Trial, loc *time.Location, until time.Time, seed uint64) []Consent {
	if loc == nil {
		loc = time.UTC
	}
	rng := rand.New(rand.NewPCG(seed^0x5851f42d4c957f2d, seed))
	from, to := t.Period(loc)
	if until.After(to) || until.IsZero() {
		until = to
	}
	var out []Consent
	for _, arm := range t.Arms {
		sensors := containsFold(arm.ID, "sensor") || containsFold(arm.Name, "sensor")
		residents := arm.ResidentCount
		if residents == 0 {
			residents = 6
		}
		site := "sim"
		if len(arm.Units) > 0 {
			site, _, _ = cut(arm.Units[0])
		}
		for i := 0; i < residents; i++ {
			c := Consent{Resident: fmt.Sprintf("%s/%s-r%02d", site, arm.ID, i+1), RecordedBy: "sjukskoterska",
				RecordedAt: from.AddDate(0, 0, -3-rng.IntN(12)).Format(time.DateOnly), Arm: arm.ID}
			p, why := 0.04, "flyttade till annat boende / moved"
			if sensors {
				p, why = 0.1, "upplevde sensorerna som störande / found the sensors intrusive"
			}
			if rng.Float64() < p {
				days := int(until.Sub(from).Hours() / 24)
				if days > 1 {
					c.WithdrawnAt = from.AddDate(0, 0, 1+rng.IntN(days-1)).Format(time.DateOnly)
					c.WithdrawnReason = why
				}
			}
			out = append(out, c)
		}
	}
	return out
}

// simLayout is where the simulator puts an arm's residents: how many
// (its resident_count, else its listed residents, else 6) and the site and
// unit (its first unit's, else site "sim" and the arm's id). The alarms and
// the look-ins must agree on it.
func simLayout(arm Arm) (residents int, site, unit string) {
	residents = arm.ResidentCount
	if residents == 0 {
		residents = len(arm.Residents)
	}
	if residents == 0 {
		residents = 6
	}
	site, unit = "sim", arm.ID
	if len(arm.Units) > 0 {
		site, unit, _ = cut(arm.Units[0])
	}
	return residents, site, unit
}

func containsFold(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }

func cut(s string) (string, string, bool) { return strings.Cut(s, "/") }
