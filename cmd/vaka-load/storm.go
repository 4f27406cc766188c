package main

// The alarm storm (issue 20): a region's supervised call buttons go silent
// together, as when a mobile network or a power feed fails. 50,000 of
// 250,000 buttons send their last radio test within 60 s, then the rest
// of the fleet within the next 60 s, each raising its device_silent alarm;
// meanwhile residents press their call buttons 5 times a second on buttons
// that still work. What matters is the one press among a quarter of a
// million technical alarms: its latency to the staff screen, that the
// staff stream is never cut, what the hub's heap and GC do, and how many
// cards and notifications staff get.
//
//	vaka-load storm [-devices 250000] [-silent 50000] [-spread 60s] [-stop-at 10s] [-all-at 90s]
//	                [-press-buttons 1000] [-press-rate 5] [-beat 60s] [-grace 10s] [-out FILE.json]
//
// Every flag scales, so the same scenario runs in seconds in a test.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StormFigures is what the storm reports beside the fleet's figures.
type StormFigures struct {
	Cards          int     `json:"cards"`           // distinct alarms staff saw on the stream
	CareCards      int     `json:"care_cards"`      // of which care alarms (call, fall, wander, hazard)
	Frames         int     `json:"frames"`          // alarm frames on the stream
	Notifications  float64 `json:"notifications"`   // notify steps the hub journaled (one per alarm, or per group)
	StreamCuts     float64 `json:"stream_cuts"`     // vaka_stream_subscribers_cut_total
	HeapPeakMiB    float64 `json:"heap_peak_mib"`   // highest vaka_go_heap_live_bytes sampled each second
	HeapEndMiB     float64 `json:"heap_end_mib"`    // at the end
	GCPauseP99Ms   float64 `json:"gc_pause_p99_ms"` // vaka_go_gc_pause_p99_seconds (since the hub started)
	GCCycles       float64 `json:"gc_cycles"`
	GCAssistCPUSec float64 `json:"gc_assist_cpu_s"` // CPU the hub's goroutines spent helping the GC mark
	OpenAlarms     float64 `json:"open_alarms"`     // vaka_alarms_open at the end
	// RaisedSilent is vaka_alarms_raised_total{rule="device_silent"}: the
	// silent buttons' alarms the hub raised, whether or not each reached
	// the stream as its own card (grouping may show them as one).
	RaisedSilent float64 `json:"raised_silent"`
	Goals        []Goal  `json:"goals"`
}

// Goal is one of the goals, with the figure and whether it was met.
type Goal struct {
	Text   string `json:"text"`
	Figure string `json:"figure"`
	Met    *bool  `json:"met,omitempty"` // nil: reported, not judged here
	// Why, when Met is nil, says why it is not judged (default: judged
	// against the grouping's own interval).
	Why string `json:"why,omitempty"`
}

// Storm defaults at full scale (make bench).
const (
	stormDevices    = 250_000
	stormSilent     = 50_000
	stormPressP99Ms = 50
	stormHeapGiB    = 1
)

func runStorm(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vaka-load storm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := supOptions{Storm: true, Notify: true}
	fs.IntVar(&o.Devices, "devices", stormDevices, "supervised call buttons; every one falls silent")
	fs.IntVar(&o.Gateways, "gateways", 500, "MQTT connections the buttons report through")
	fs.DurationVar(&o.Beat, "beat", 60*time.Second, "radio test interval of every button")
	fs.DurationVar(&o.Grace, "grace", 10*time.Second, "supervision period = beat + grace")
	fs.IntVar(&o.Silent, "silent", stormSilent, "buttons that fall silent first, their last radio tests spread over -spread from -stop-at")
	fs.DurationVar(&o.StopAt, "stop-at", 10*time.Second, "when the first silent button sends its last radio test")
	fs.DurationVar(&o.Spread, "spread", 60*time.Second, "each wave of silence spreads its buttons' last radio tests over this")
	fs.DurationVar(&o.AllAt, "all-at", 90*time.Second, "when the rest of the fleet starts falling silent (over -spread)")
	fs.IntVar(&o.PressButtons, "press-buttons", 0, "more buttons that keep working and take the presses (0: one per press, so each press raises its own alarm)")
	fs.Float64Var(&o.PressRate, "press-rate", 5, "call-button presses per second during the storm")
	fs.DurationVar(&o.WriteEvery, "write-every", 0, "each gateway connection writes the radio tests due once per this, in one write, the connections staggered evenly (0: min(1s, beat/10, grace/4))")
	fs.StringVar(&o.pressDump, "press-dump", "", "write one CSV line per press (scheduled, written, raised, on screen; ms) to this file")
	fs.BoolVar(&o.Notify, "notify", true, "route every alarm to the staff user (notifications counted)")
	fs.StringVar(&o.Label, "label", "", "free text stored with the result")
	out := fs.String("out", "", "write the machine-readable result to this JSON file")
	fs.StringVar(&o.HubBin, "hub-bin", "", "run the hub as its own process, this `vaka` binary (default: in this process)")
	fs.StringVar(&o.PinGen, "pin-gen", "", "pin this process to these CPUs (taskset)")
	fs.StringVar(&o.PinSUT, "pin-sut", "", "with -hub-bin: pin the hub process to these CPUs")
	report := fs.Bool("report", false, "write the storm's markdown section from the JSON result files given as arguments")
	doc := fs.Bool("report-doc", false, "write docs/benchmarks-storm.md (markdown) from storm and all-alarm ramp result files given as arguments")
	commands := fs.String("commands", "", "with -report-doc: file listing the exact commands that were run")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process for the whole run (the generator and stream reader; with the hub in this process, the hub too)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *doc {
		if err := writeStormDoc(stdout, fs.Args(), *commands); err != nil {
			fmt.Fprintln(stderr, "vaka-load storm:", err)
			return 1
		}
		return 0
	}
	if *report {
		if err := writeStormReport(stdout, fs.Args()); err != nil {
			fmt.Fprintln(stderr, "vaka-load storm:", err)
			return 1
		}
		return 0
	}
	if o.PressButtons == 0 {
		o.PressButtons = max(1, o.presses())
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "vaka-load storm:", err)
		return 2
	}
	o.Command = "vaka-load storm " + strings.Join(args, " ")
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "vaka-load storm:", err)
			return 1
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			fmt.Fprintln(stderr, "vaka-load storm:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	return runFleet("storm", o, *out, stdout, stderr, (*SupResult).stormSummary)
}

// silentCount is how many buttons fall silent: -silent, or with -all-at
// the whole fleet (the press buttons excepted).
func (o *supOptions) silentCount() int {
	if o.AllAt > 0 {
		return o.Devices
	}
	return o.Silent
}

// stopAt is when button i sends its last radio test (ns from the start of
// the measured phase); math.MaxInt64 for a button that keeps working.
func (o *supOptions) stopAt(i int) int64 {
	spread := func(k, n int) int64 {
		if n <= 1 {
			return 0
		}
		return int64(k) * o.Spread.Nanoseconds() / int64(n-1)
	}
	switch {
	case i < o.Silent:
		return o.StopAt.Nanoseconds() + spread(i, o.Silent)
	case o.AllAt > 0 && i < o.Devices:
		return o.AllAt.Nanoseconds() + spread(i-o.Silent, o.Devices-o.Silent)
	}
	return math.MaxInt64
}

// lastStop is when the last silent button sends its last radio test.
func (o *supOptions) lastStop() time.Duration {
	if o.AllAt > 0 {
		return o.AllAt + o.Spread
	}
	return o.StopAt + o.Spread
}

// presses is how many presses the run sends.
func (o *supOptions) presses() int {
	return int(o.PressRate * (o.lastStop() + o.Beat + o.Grace).Seconds())
}

// pressButton is the button press p goes to: one that keeps working.
func (o *supOptions) pressButton(p int) int {
	if o.PressButtons > 0 {
		return o.Devices + p%o.PressButtons
	}
	return o.Silent + p%(o.Devices-o.Silent)
}

func (o *supOptions) checkStorm() error {
	switch {
	case !o.Storm:
		return nil
	case o.PressButtons < 0 || o.PressButtons > 100_000:
		return errors.New("-press-buttons must be 0..100000")
	case o.Spread < 0 || o.Spread > 10*time.Minute:
		return errors.New("-spread must be 0..10m")
	case o.AllAt > 0 && o.AllAt < o.StopAt:
		return errors.New("-all-at must not come before -stop-at")
	case o.AllAt > 10*time.Minute:
		return errors.New("-all-at must be at most 10m")
	}
	return nil
}

// cardCount counts the distinct alarms on the staff stream.
type cardCount struct {
	mu     sync.Mutex
	ids    map[string]bool // id → care alarm
	frames int
}

func newCardCount() *cardCount { return &cardCount{ids: map[string]bool{}} }

var kindKey = []byte(`"kind":"`) // idKey is load.go's

// see counts one alarm frame. The alarm's own fields come first in its
// JSON, so the first "id" and "kind" are the alarm's.
func (c *cardCount) see(line []byte) {
	id := field(line, idKey)
	if len(id) == 0 {
		return
	}
	kind := string(field(line, kindKey))
	c.mu.Lock()
	c.frames++
	if _, ok := c.ids[string(id)]; !ok {
		c.ids[string(id)] = kind != "technical"
	}
	c.mu.Unlock()
}

func (c *cardCount) counts() (cards, care, frames int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, isCare := range c.ids {
		cards++
		if isCare {
			care++
		}
	}
	return cards, care, c.frames
}

// sampleHeap reads the hub's live heap every second until stopped and
// returns the highest value, in bytes.
func sampleHeap(reg func(string) float64) (stop func() float64) {
	done := make(chan struct{})
	peak := make(chan float64, 1)
	go func() {
		var top float64
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			top = max(top, reg("vaka_go_heap_live_bytes"))
			select {
			case <-done:
				peak <- top
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 { close(done); return <-peak }
}

// pressGoal judges the press goal, only when the generator kept its
// schedule: otherwise the figure measures the generator, and the goal
// says so instead of judging the hub by it.
func pressGoal(res *SupResult) Goal {
	g := Goal{Text: fmt.Sprintf("press p99 ≤ %d ms on the staff stream during the storm", stormPressP99Ms)}
	fig := fmt.Sprintf("p50 %.3g / p99 %.3g / max %.3g ms from the scheduled send, %d of %d presses arrived; "+
		"the generator's send lag p99 %.3g ms (max %.3g), the hub's part (written → on screen) p50 %.3g / p99 %.3g ms, of it written → raised p99 %.3g ms",
		res.PressLatency.P50, res.PressLatency.P99, res.PressLatency.Max, res.Presses-res.PressesLost, res.Presses,
		res.PressSendLag.P99, res.PressSendLag.Max, res.PressHub.P50, res.PressHub.P99, res.PressToRaise.P99)
	switch {
	case res.PressSendLag.N == 0:
		g.Why = "**not judged**: generator lag cannot be told from the hub's"
		g.Figure = fmt.Sprintf("p50 %.3g / p99 %.3g / max %.3g ms; this result does not record the generator's send lag",
			res.PressLatency.P50, res.PressLatency.P99, res.PressLatency.Max)
	case !res.GenValid:
		g.Why = "**not judged**: the figure measured the generator, not the hub"
		g.Figure = "not valid, the generator lagged (" + res.GenNote + "); " + fig
	default:
		g.Figure = fig
		ok := res.PressLatency.P99 <= stormPressP99Ms && res.PressesLost == 0
		g.Met = &ok
	}
	return g
}

// stormVerdict fills the storm's figures and judges its goals.
func stormVerdict(res *SupResult, f *fleet, reg func(string) float64, regL func(string, string) float64, heapPeak float64) {
	s := &StormFigures{
		Notifications:  regL("vaka_alarm_transitions_total", `action="notify"`),
		StreamCuts:     reg("vaka_stream_subscribers_cut_total"),
		HeapPeakMiB:    heapPeak / (1 << 20),
		HeapEndMiB:     reg("vaka_go_heap_live_bytes") / (1 << 20),
		GCPauseP99Ms:   reg("vaka_go_gc_pause_p99_seconds") * 1e3,
		GCCycles:       reg("vaka_go_gc_cycles_total"),
		GCAssistCPUSec: reg("vaka_go_gc_assist_cpu_seconds_total"),
		OpenAlarms:     reg("vaka_alarms_open"),
		RaisedSilent:   regL("vaka_alarms_raised_total", `rule="device_silent"`),
	}
	s.Cards, s.CareCards, s.Frames = f.cards.counts()
	res.Storm = s
	res.Scenario = "alarm storm"
	yes := func(b bool) *bool { return &b }
	s.Goals = []Goal{
		pressGoal(res),
		{Text: "0 stream cuts", Figure: fmt.Sprintf("%.0f cut%s", s.StreamCuts, cond(res.StreamCut != "", " ("+res.StreamCut+")", "")),
			Met: yes(s.StreamCuts == 0 && res.StreamCut == "")},
		{Text: fmt.Sprintf("heap ≤ %d GiB", stormHeapGiB), Figure: fmt.Sprintf("live heap peak %.0f MiB, at the end %.0f MiB; GC pause p99 %.3g ms", s.HeapPeakMiB, s.HeapEndMiB, s.GCPauseP99Ms),
			Met: yes(s.HeapPeakMiB > 0 && s.HeapPeakMiB <= stormHeapGiB*1024)},
		{Text: "≤ one notification per group per group interval",
			Figure: fmt.Sprintf("%d cards (%d care), %.0f notifications for %d silent buttons and %d presses", s.Cards, s.CareCards, s.Notifications, len(f.silentSeen), res.Presses)},
		{Text: "every silent button detected, no false alarm",
			Figure: fmt.Sprintf("%.0f device_silent alarms raised for %d silent buttons; %d seen on the stream as their own alarm (missed there %d), false %d; after the deadline p50 %.2f s, max %.2f s",
				s.RaisedSilent, len(f.silentSeen), res.Detected, res.Missed, res.FalseAlarms, res.DetectP50, res.DetectMax),
			Met: yes((res.Missed == 0 || s.RaisedSilent == float64(len(f.silentSeen))) && res.FalseAlarms == 0 && res.DetectEarly == 0)},
	}
	var bad []string
	for _, g := range s.Goals {
		if g.Met != nil && !*g.Met {
			bad = append(bad, g.Text+" not met")
		}
	}
	if !res.GenValid {
		bad = append(bad, "generator lagged: press figure not valid")
	}
	if res.PubErrors > 0 || res.MochiDropped > 0 {
		bad = append(bad, "loss")
	}
	res.Verdict = "ok"
	if len(bad) > 0 {
		res.Verdict = strings.Join(bad, "; ")
	}
}

func (r *SupResult) stormSummary() string {
	s := r.Storm
	if s == nil {
		return r.summary()
	}
	return fmt.Sprintf("%s: %d buttons (%d first, then all), %d press buttons: presses %d lost %d p50 %.3g p99 %.3g max %.3g ms "+
		"(generator send lag p99 %.3g ms, hub written→screen p99 %.3g ms, written→raised p99 %.3g ms; fleet write lag p99 %.3g ms; %s); "+
		"CPU wait for other processes: generator %.0f ms/s, hub %.0f ms/s (worst second %.0f ms); "+
		"cuts %.0f; heap peak %.0f MiB; GC pause p99 %.3g ms; cards %d (care %d), notifications %.0f; detected %d missed %d false %d: %s",
		r.Scenario, r.Options.Devices, r.Options.Silent, r.Options.PressButtons, r.Presses, r.PressesLost,
		r.PressLatency.P50, r.PressLatency.P99, r.PressLatency.Max,
		r.PressSendLag.P99, r.PressHub.P99, r.PressToRaise.P99, r.RadioLag.P99, cond(r.GenValid, "generator kept up", "GENERATOR LAGGED, press figure not valid"),
		r.GenRunWait*1e3, r.HubRunWait*1e3, r.HubRunWaitMaxMs, s.StreamCuts, s.HeapPeakMiB, s.GCPauseP99Ms,
		s.Cards, s.CareCards, s.Notifications, r.Detected, r.Missed, r.FalseAlarms, r.Verdict)
}

// writeStormReport writes the storm's section of a benchmark report.
func writeStormReport(w io.Writer, files []string) error {
	if len(files) == 0 {
		return errors.New("-report needs result files")
	}
	rs, err := readResults[SupResult](files)
	if err != nil {
		return err
	}
	for i, r := range rs {
		if r.Storm == nil {
			return fmt.Errorf("%s: not a storm result", files[i])
		}
	}
	o := rs[0].Options
	fmt.Fprintf(w, "\n## Alarm storm: %d supervised buttons fall silent\n\n", o.Devices)
	fmt.Fprintf(w, "`vaka-load storm` (issue 20) starts the hub%s on a region's config (gateways in YAML, buttons in a CSV inventory) "+
		"with every alarm routed to the staff user. %d call buttons report through %d gateway connections, each sending a radio test every %v "+
		"(supervision period %v). %d of them send their last radio test between %v and %v, then the other %d between %v and %v: each must "+
		"raise its `device_silent` alarm. Meanwhile %d more buttons keep working (on one more gateway connection of their own) and residents press them %.0f times a second, "+
		"timed from the scheduled send to the staff stream. **gen send lag** is how late the generator wrote a press (p99): above %.0f ms the "+
		"press figures measure the generator, not the hub, and are shown as not valid. Heap and GC come from the hub's `/metrics` (`vaka_go_*`, runtime/metrics), "+
		"the live heap sampled every second.\n\n",
		cond(o.HubBin != "", " as its own process (`vaka hub --config`)", " in the generator's process"),
		o.Devices, o.Gateways, o.Beat, o.Beat+o.Grace, o.Silent, o.StopAt, o.StopAt+o.Spread,
		o.Devices-o.Silent, o.AllAt, o.AllAt+o.Spread, o.PressButtons, o.PressRate, genLagValidMs)
	fmt.Fprintln(w, "| run | presses | lost | press p50 ms | press p99 ms | press max ms | gen send lag p99 ms | stream cuts | heap peak MiB | heap end MiB | GC pause p99 ms | GC cycles | GC assist CPU s | cards | care cards | notifications | detected | missed | false | verdict |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for i, r := range rs {
		s := r.Storm
		fmt.Fprintf(w, "| %d | %d | %d | %s | %s | %s | %s | %.0f | %.0f | %.0f | %.3g | %.0f | %.2f | %d | %d | %.0f | %d | %d | %d | %s |\n",
			i+1, r.Presses, r.PressesLost, pressCell(r, r.PressLatency.P50), pressCell(r, r.PressLatency.P99), pressCell(r, r.PressLatency.Max),
			lagCell(r), s.StreamCuts, s.HeapPeakMiB, s.HeapEndMiB, s.GCPauseP99Ms, s.GCCycles, s.GCAssistCPUSec, s.Cards, s.CareCards, s.Notifications,
			r.Detected, r.Missed, r.FalseAlarms, r.Verdict)
	}
	writeStormWhose(w, rs)
	fmt.Fprintln(w, "\n### Goals (issue 20, storm)")
	fmt.Fprintln(w)
	for i, r := range rs {
		for _, g := range r.Storm.Goals {
			v := "reported (judged against the grouping's own interval)"
			if g.Why != "" {
				v = g.Why
			}
			if g.Met != nil {
				v = cond(*g.Met, "**met**", "**not met**")
			}
			fmt.Fprintf(w, "- Run %d, %s: %s — %s.\n", i+1, g.Text, v, g.Figure)
		}
	}
	fmt.Fprintln(w)
	for i, r := range rs {
		fmt.Fprintf(w, "- Run %d: `%s`", i+1, r.Options.Command)
		if len(r.SlowPresses) > 0 {
			fmt.Fprintf(w, "; slowest presses: %s", strings.Join(r.SlowPresses, "; "))
		}
		fmt.Fprintln(w)
	}
	return nil
}

// labelledValue sums the series of name whose labels include label
// (`key="value"`), from an in-process registry.
func labelledValue(reg prometheus.Gatherer, name, label string) float64 {
	k, v, _ := strings.Cut(label, "=")
	v = strings.Trim(v, `"`)
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					if c := m.GetCounter(); c != nil {
						sum += c.GetValue()
					} else if g := m.GetGauge(); g != nil {
						sum += g.GetValue()
					}
				}
			}
		}
	}
	return sum
}

// scrapeLabelled is labelledValue over HTTP.
func scrapeLabelled(url, name, label string) float64 {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(name+"{")) || !bytes.Contains(line, []byte(label)) {
			continue
		}
		f := strings.Fields(string(line[bytes.LastIndexByte(line, '}')+1:]))
		if len(f) > 0 {
			if x, err := strconv.ParseFloat(f[0], 64); err == nil {
				sum += x
			}
		}
	}
	return sum
}

// pressCell is a press figure for the storm table: the number when the
// generator kept its schedule, else marked not valid (it measured the
// generator), or not measured for a result without send lag.
func pressCell(r *SupResult, v float64) string {
	switch {
	case r.PressSendLag.N == 0:
		return fmt.Sprintf("%.3g (send lag not recorded)", v)
	case !r.GenValid:
		return fmt.Sprintf("not valid (%.3g: generator lag)", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func lagCell(r *SupResult) string {
	if r.PressSendLag.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3g", r.PressSendLag.P99)
}

// writeStormWhose writes, per run, whose time a press spent: the
// generator's (its send lag, its fleet writes against their slots, its
// goroutines waiting for its one processor), the hub's (written → raised
// → on screen), and the machine's (either process waiting while the
// kernel ran other processes on its CPU).
func writeStormWhose(w io.Writer, rs []*SupResult) {
	fmt.Fprintln(w, "\n### Generator or hub: where a press's time went")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The generator (`vaka-load`, stormgen.go) writes each gateway connection's radio tests in one pre-encoded batch per write interval, "+
		"the connections staggered evenly, and the presses from their own goroutine and timer on their own connection. "+
		"**press send lag**: scheduled → written, the generator's lateness. **fleet write lag**: each batch against its slot (the storm offered is "+
		"lighter than stated when this exceeds the write interval). **gen sched p99**: how long the generator's runnable goroutines (the stream "+
		"reader among them) waited for its processor. **hub: written → screen** is the hub's part of a press (with the stream read in the "+
		"generator), split at the alarm's `raised_at` (the hub's clock when its rules ran: before it, MQTT read and decode; after it, "+
		"the hub's lock, journal, notify and stream). **CPU wait**: time a process was runnable while the kernel ran other processes on its CPU "+
		"(`/proc/PID/task/*/schedstat`), per second over the run and in the worst second; on a shared machine a press can wait there.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| run | press send lag p50 / p99 / max ms | fleet write lag p99 ms (interval) | radio tests/s | gen CPU cores | gen sched p99 ms | hub: written → screen p50 / p99 ms | written → raised p99 ms | raised → screen p99 ms | hub CPU cores | CPU wait gen / hub ms/s (worst s) | press figure |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---|---:|---:|---:|---|---|")
	for i, r := range rs {
		if r.PressSendLag.N == 0 {
			fmt.Fprintf(w, "| %d | not recorded | – | %.0f | – | – | – | – | – | %.2f | – | not judged |\n", i+1, r.BeatsPerSec, r.HubCPU)
			continue
		}
		valid := "valid: the generator kept its schedule"
		if !r.GenValid {
			valid = "**not valid**: " + r.GenNote
		}
		fmt.Fprintf(w, "| %d | %.3g / %.3g / %.3g | %.3g (%.0f) | %.0f | %.2f | %.3g | %.3g / %.3g | %.3g | %.3g | %.2f | %.0f / %.0f (%.0f / %.0f) | %s |\n",
			i+1, r.PressSendLag.P50, r.PressSendLag.P99, r.PressSendLag.Max, r.RadioLag.P99, r.WriteEveryMs, r.BeatsPerSec, r.GenCPU, r.GenSchedP99Ms,
			r.PressHub.P50, r.PressHub.P99, r.PressToRaise.P99, r.PressRaiseToScreen.P99, r.HubCPU,
			r.GenRunWait*1e3, r.HubRunWait*1e3, r.GenRunWaitMaxMs, r.HubRunWaitMaxMs, valid)
	}
}
