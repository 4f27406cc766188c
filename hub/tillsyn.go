package hub

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/rules"
	"github.com/vaka-care/vaka/store"
	"github.com/vaka-care/vaka/tillsyn"
)

// Journal record types of digital night supervision (store.Record.Type).
const (
	RecTillsyn = "tillsyn"
	RecVisit   = "visit"
)

// tillsynState is the hub's digital night supervision: each resident's
// plan, the look-ins queued for tonight, and the supervision records and
// visits of the last two nights (for the round view; the journal keeps
// them all).
type tillsynState struct {
	mu      sync.Mutex
	loc     *time.Location
	plans   map[string]*tillsyn.Plan // site/resident
	order   []string                 // plan keys, sorted
	q       tillsyn.Queue
	nights  map[string]string          // site/resident → night already scheduled
	records map[string]*tillsyn.Record // by look-in key
	visits  []tillsyn.Visit
	// asked are the look-ins whose visit request is not yet answered or
	// escalated (keys into records), checked every tick.
	asked map[string]bool
	// inflight are the look-ins taken from q and being judged: a plan
	// reload meanwhile must not queue them a second time.
	inflight map[lookKey]bool
	// cut is the oldest night kept, as last applied by schedule.
	cut string
	// looks are look-ins whose state is read, waiting to be judged, in
	// chunks as they were taken from the queue (a region's 10,000 in one
	// growing slice made twice their size in garbage); only the tick's
	// goroutine touches them.
	looks []*lookBatch
	// free are judged batches kept for reuse (putBatch).
	free []*lookBatch
	// made and again are tillsynJudge's scratch, reused.
	made  []judged
	again []tillsynLook
	// budget bounds the judging per tick (tillsynBudget; tests shorten it).
	budget time.Duration
	// Scratch of the tick's goroutine, reused chunk after chunk: the
	// engine queries of a chunk, and its records' JSON and journal items.
	qs    []rules.TillsynQuery
	due   []tillsyn.LookIn
	body  []byte
	items []store.EncodedItem

	lookins   *prometheus.CounterVec
	visitsN   prometheus.Counter
	journalNG prometheus.Counter
	escalated prometheus.Counter
	late      prometheus.Counter
	laneWait  prometheus.Counter
}

func (h *Hub) initTillsyn(o Options) error {
	ts := &tillsynState{loc: o.Config.Loc, nights: map[string]string{}, records: map[string]*tillsyn.Record{}, asked: map[string]bool{}, inflight: map[lookKey]bool{}, budget: tillsynBudget,
		lookins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vaka_tillsyn_lookins_total",
			Help: "Digital night look-ins made, by outcome and cannot-tell cause."}, []string{"outcome", "cause"}),
		visitsN: prometheus.NewCounter(prometheus.CounterOpts{Name: "vaka_tillsyn_visits_total",
			Help: "Physical night visits staff recorded."}),
		journalNG: prometheus.NewCounter(prometheus.CounterOpts{Name: "vaka_tillsyn_journal_failures_total",
			Help: "Supervision records or visits the journal could not write (kept in memory, shown, logged)."}),
		escalated: prometheus.NewCounter(prometheus.CounterOpts{Name: "vaka_tillsyn_visits_overdue_total",
			Help: "Requested night visits not recorded by their deadline, raised as tillsyn alarms."}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Name: "vaka_tillsyn_lookins_late_total",
			Help: "Look-ins judged more than 30 s after they fell due (they yield to alarms; a hub this far behind is overloaded)."}),
		laneWait: prometheus.NewCounter(prometheus.CounterOpts{Name: "vaka_tillsyn_alarm_lane_wait_seconds_total",
			Help: "Time look-ins spent waiting for alarms on their way through the hub to pass."}),
	}
	if ts.loc == nil {
		ts.loc = time.UTC
	}
	for _, c := range []prometheus.Collector{ts.lookins, ts.visitsN, ts.journalNG, ts.escalated, ts.late, ts.laneWait} {
		if err := o.Registry.Register(c); err != nil {
			return err
		}
	}
	ts.setPlans(o.Config.TillsynPlans())
	for _, r := range o.Journal.Records() {
		switch r.Type {
		case RecTillsyn:
			var rec tillsyn.Record
			if json.Unmarshal(r.Body, &rec) == nil {
				ts.records[rec.Key()] = &rec
				// A request still open at a restart is checked again: a
				// second alarm is better than a visit nobody made.
				if !rec.VisitBy.IsZero() && o.Now().Sub(rec.VisitBy) < 12*time.Hour {
					ts.asked[rec.Key()] = true
				}
			}
		case RecVisit:
			var v tillsyn.Visit
			if json.Unmarshal(r.Body, &v) == nil {
				ts.visits = append(ts.visits, v)
			}
		}
	}
	h.ts = ts
	return nil
}

func (ts *tillsynState) setPlans(plans []*tillsyn.Plan) {
	ts.plans = map[string]*tillsyn.Plan{}
	ts.order = ts.order[:0]
	for _, p := range plans {
		k := p.Site + "/" + p.Resident
		ts.plans[k] = p
		ts.order = append(ts.order, k)
	}
	slices.Sort(ts.order)
	// A changed plan is scheduled afresh for the night under way; look-ins
	// already recorded are not made twice, queued ones are replaced.
	ts.nights = map[string]string{}
	var keep tillsyn.Queue
	for _, l := range ts.q.Pending() {
		p := ts.plans[l.Site+"/"+l.Resident]
		if p == nil {
			continue // the plan is gone (or its consent)
		}
		if m, err := tillsyn.ParseClock(l.Wall); err == nil && slices.Contains(p.Walls(), m) {
			keep.Again(l, l.Planned) // still planned: keep, due as before
		}
	}
	ts.q = keep
}

// reloadTillsyn swaps in a reloaded config's plans.
func (h *Hub) reloadTillsyn(cfg *Config) {
	h.ts.mu.Lock()
	defer h.ts.mu.Unlock()
	h.ts.setPlans(cfg.TillsynPlans())
}

// schedule queues each resident's look-ins of the night under way (the
// most recent night window to have begun), once per night, leaving out
// those already recorded (after a restart). Queuing a region's night is a
// burst of its own, so it is paced like the look-ins, letting go of ts.mu
// between slices (a reload meanwhile resets nights: the next tick
// schedules again, and a look-in is queued once).
//
// It runs every tick over every plan (most are already scheduled), so it
// gives way to the alarm lane like the look-ins (pc; nil: it does not),
// letting go of ts.mu while it waits.
func (ts *tillsynState) schedule(now time.Time, pc *pacer) {
	type night struct {
		n   time.Time
		day string
	}
	nightOf := map[int]night{}
	if pc == nil {
		pc = newPacer(tillsynSlice, tillsynPause)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for i := 0; i < len(ts.order); i++ {
		k := ts.order[i]
		p := ts.plans[k]
		nd, ok := nightOf[p.NightStart]
		if !ok {
			n := tillsyn.NightOf(now, ts.loc, p.NightStart)
			nd = night{n: n, day: n.Format("2006-01-02")}
			nightOf[p.NightStart] = nd
		}
		n, day := nd.n, nd.day
		if ts.nights[k] == day {
			continue
		}
		ts.nights[k] = day
		// A night already over when first scheduled (the hub started in
		// the day) is not made up; inside the night, a look-in whose time
		// passed while the hub was down is queued and comes out late.
		if !now.After(p.End(n, ts.loc)) {
			for _, l := range p.Schedule(n, ts.loc) {
				if ts.records[l.Key()] == nil && !ts.inflight[keyOfLook(&l)] {
					ts.q.Add(l)
				}
			}
		}
		if pc.over() {
			ts.mu.Unlock()
			pc.yield()
			ts.mu.Lock()
		} else if pc.h != nil && pc.h.alarmLaneBusy() {
			ts.mu.Unlock()
			pc.lane()
			ts.mu.Lock()
		}
	}
	// Forget what is older than the night before last (once per new
	// night, not every second over every record).
	if len(nightOf) > 0 {
		var oldest time.Time
		for _, nd := range nightOf {
			if oldest.IsZero() || nd.n.Before(oldest) {
				oldest = nd.n
			}
		}
		cut := oldest.AddDate(0, 0, -1).Format("2006-01-02")
		if cut == ts.cut {
			return
		}
		ts.cut = cut
		for k, r := range ts.records {
			if r.Night < cut {
				delete(ts.records, k)
			}
		}
		ts.visits = slices.DeleteFunc(ts.visits, func(v tillsyn.Visit) bool { return v.Night < cut })
	}
}

// tillsynTick schedules and settles the look-ins due at now. Tick calls
// it once a second; tests call it with their own clock.
//
// A region's look-ins share a planned instant, so the work is paced
// (tillsyn_pace.go) in two phases. First each due resident's state is
// read from the rule engine (its lock held per resident, a few
// microseconds) with their open alarms: that is the state as of now, the
// look-in's time. Then the look-ins are judged from those snapshots at
// that now, acted on and journaled slice by slice, with pauses between,
// for at most tillsynBudget per tick; what is left goes on at the next
// tick, still judged at its own instant. The result does not depend on
// when it is computed, and an event that arrives meanwhile belongs to the
// next look. TillsynPending reports what is left.
func (h *Hub) tillsynTick(now time.Time) {
	ts := h.ts
	pc := newLanePacer(h, time.Now().Add(tillsynScheduleYieldFor))
	ts.schedule(now, pc)
	ts.laneWait.Add(pc.waited.Seconds())
	ts.mu.Lock()
	overdue := ts.overdueLocked(now)
	next, ok := ts.q.Next()
	ts.mu.Unlock()
	for _, o := range overdue {
		h.escalateVisit(o.rec, o.plan, now)
	}
	if ok && !next.After(now) {
		h.tillsynSnap(now)
	}
	h.tillsynJudge(time.Now().Add(ts.budget))
}

// tillsynLook is a due look-in with the state it is judged on.
type tillsynLook struct {
	l    tillsyn.LookIn
	p    *tillsyn.Plan
	s    *tillsyn.Snapshot // nil: not read (no plan, or too late to)
	now  time.Time
	open map[string][]string
}

// lookBatch is a chunk of due look-ins with the state each is judged on,
// in arrays reused batch after batch (tillsynState.free): a region's
// instant read 30 new arrays per 16 look-ins, about 600 B of garbage per
// look-in, whose collections landed on alarms.
type lookBatch struct {
	looks   []tillsynLook
	snaps   []tillsyn.Snapshot
	sensors []tillsyn.Sensor
	// taken is when the batch fell due in the hub (the wall clock): its
	// yielding and its judging deadline count from here.
	taken time.Time
	// next is the first look-in not yet judged (a tick may stop inside a
	// batch while an alarm is on its way).
	next int
}

// tillsynFreeMax bounds the batches kept for reuse: a region's 10,000
// look-ins at one instant are 625 batches of about 7 KB.
const tillsynFreeMax = 1024

func (ts *tillsynState) getBatch() *lookBatch {
	if n := len(ts.free); n > 0 {
		b := ts.free[n-1]
		ts.free[n-1] = nil
		ts.free = ts.free[:n-1]
		return b
	}
	return &lookBatch{}
}

// putBatch takes a judged batch back; nothing in it is referenced any
// more (records copy their evidence), and it holds no plan or state.
func (ts *tillsynState) putBatch(b *lookBatch) {
	if len(ts.free) >= tillsynFreeMax {
		return
	}
	clear(b.looks)
	clear(b.snaps)
	clear(b.sensors)
	b.looks, b.snaps, b.sensors = b.looks[:0], b.snaps[:0], b.sensors[:0]
	b.next = 0
	ts.free = append(ts.free, b)
}

// tillsynSnap takes the look-ins due at now from the queue and reads each
// resident's state as of now (phase 1), a chunk at a time: the engine's
// lock is taken once for several residents, for at most tillsynHold
// (rules.Engine.TillsynSnapshots), and let go at once when an event
// wants it; before each hold the alarm lane goes first (pacer.lane), and
// slices are paced. Why pauses and not runtime.Gosched: a goroutine that
// yields goes back to the global run queue and is picked again at once,
// while an alarm waiting in the other core's queue (behind the garbage
// collector's worker) stays there; a pause lets that core's work be
// stolen.
func (h *Hub) tillsynSnap(now time.Time) {
	ts := h.ts
	open := h.openCareAlarms()
	taken := time.Now()
	pc := newLanePacer(h, taken.Add(tillsynSnapYieldFor))
	for {
		pc.lane()
		ts.mu.Lock()
		ts.due = ts.q.DueAppend(ts.due[:0], now, tillsynChunk)
		due := ts.due
		if len(due) == 0 {
			ts.mu.Unlock()
			break
		}
		for i := range due {
			ts.inflight[keyOfLook(&due[i])] = true
		}
		bt := ts.getBatch()
		bt.taken = taken
		for _, l := range due {
			bt.looks = append(bt.looks, tillsynLook{l: l, p: ts.plans[l.Site+"/"+l.Resident], now: now, open: open})
		}
		ts.mu.Unlock()
		// The chunk's snapshots are read in place, their sensors into one
		// array: a look-in's state costs no allocation of its own.
		ts.qs = ts.qs[:0]
		nsens := 0
		for i := range bt.looks {
			lk := &bt.looks[i]
			if lk.p != nil && tillsyn.NeedsSnapshot(lk.l, now) {
				ts.qs = append(ts.qs, rules.TillsynQuery{Site: lk.l.Site, Resident: lk.l.Resident, Sensors: lk.p.Sensors})
				nsens += len(lk.p.Sensors)
			}
		}
		bt.snaps = slices.Grow(bt.snaps[:0], len(ts.qs))[:len(ts.qs)]
		bt.sensors = slices.Grow(bt.sensors[:0], nsens)[:nsens]
		for i, off := 0, 0; i < len(ts.qs); i++ {
			n := len(ts.qs[i].Sensors)
			bt.snaps[i].Sensors = bt.sensors[off : off : off+n]
			off += n
		}
		for read := 0; read < len(ts.qs); {
			pc.lane()
			read += h.engine.TillsynSnapshots(ts.qs[read:], now, tillsynHold, pc.stop(), bt.snaps[read:])
			if pc.spent() {
				pc.yield()
			}
		}
		for i, k := 0, 0; i < len(bt.looks); i++ {
			lk := &bt.looks[i]
			if lk.p == nil || !tillsyn.NeedsSnapshot(lk.l, now) {
				continue
			}
			lk.s = &bt.snaps[k]
			k++
			lk.s.Consent = lk.s.Consent && lk.p.Consent
			lk.s.OpenAlarms = open[lk.l.Site+"/"+lk.l.Resident]
		}
		clear(ts.qs) // the plans' sensor lists are not held past the chunk
		clear(ts.due)
		ts.looks = append(ts.looks, bt)
	}
	ts.laneWait.Add(pc.waited.Seconds())
}

// lookKey identifies a look-in as LookIn.Key does, without building a
// string.
type lookKey struct{ site, resident, night, wall string }

func keyOfLook(l *tillsyn.LookIn) lookKey { return lookKey{l.Site, l.Resident, l.Night, l.Wall} }

// tillsynJudge judges the look-ins read so far (phase 2), acts on them
// and journals them slice by slice, pausing between slices, until none is
// left or the deadline has passed. It gives way to the alarm lane between
// residents and before each journal write, while the batch is younger
// than tillsynYieldFor; a batch judged past tillsynDeadline is counted
// late.
func (h *Hub) tillsynJudge(until time.Time) {
	ts := h.ts
	made := ts.made[:0]
	again := ts.again[:0]
	var pc *pacer
	late := 0
	for len(ts.looks) > 0 {
		bt := ts.looks[0]
		if pc == nil {
			pc = newLanePacer(h, bt.taken.Add(tillsynYieldFor))
			pc.until = until
		}
		pc.yieldUntil = bt.taken.Add(tillsynYieldFor)
		if !pc.lane() {
			break // the alarm lane is still busy and the tick's time is up
		}
		// The chunk's evidence in one array, which its records keep
		// (capped slices of it) for the round view.
		nev := 0
		for i := range bt.looks {
			if bt.looks[i].s != nil {
				nev += len(bt.looks[i].s.Sensors)
			}
		}
		ev := make([]tillsyn.Evidence, 0, nev)
		from, i := bt.next, bt.next
		stopped := false
		for ; i < len(bt.looks); i++ {
			lk := &bt.looks[i]
			if lk.p == nil {
				continue // the plan is gone (or its consent)
			}
			if !pc.lane() {
				stopped = true // the rest of the batch at the next tick
				break
			}
			var (
				s     tillsyn.Snapshot
				rec   tillsyn.Record
				final bool
			)
			if lk.s != nil {
				s = *lk.s
			}
			rec, final, ev = tillsyn.JudgeAppend(lk.l, lk.p, s, lk.now, ev)
			if final {
				made = append(made, judged{rec: rec, p: lk.p, open: lk.open})
			} else {
				again = append(again, *lk)
			}
		}
		if time.Since(bt.taken) > tillsynDeadline {
			late += len(made)
		}
		// A chunk at a time: act, journal, queue again, let go.
		h.followUp(made, pc)
		ts.mu.Lock()
		for _, lk := range again {
			ts.q.Again(lk.l, lk.now.Add(tillsyn.Recheck))
		}
		for k := from; k < i; k++ {
			delete(ts.inflight, keyOfLook(&bt.looks[k].l))
		}
		ts.mu.Unlock()
		clear(made)
		clear(again)
		made, again = made[:0], again[:0]
		if stopped {
			bt.next = i
			break
		}
		ts.looks[0] = nil
		ts.looks = ts.looks[1:]
		ts.putBatch(bt)
		if len(ts.looks) > 0 && !time.Now().Before(until) {
			break // the rest at the next tick
		}
		if pc.spent() {
			pc.yield()
		}
	}
	if len(ts.looks) == 0 {
		ts.looks = ts.looks[:0:0]
	}
	ts.made, ts.again = made, again
	if pc != nil {
		ts.laneWait.Add(pc.waited.Seconds())
	}
	if late > 0 {
		ts.late.Add(float64(late))
		h.log.Warn("hub: look-ins judged past their deadline", "lookins", late, "deadline", tillsynDeadline)
	}
}

// judged is a final look-in with its plan and the open alarms as of its
// instant.
type judged struct {
	rec  tillsyn.Record
	p    *tillsyn.Plan
	open map[string][]string
}

// TillsynPending is how many look-ins are read but not yet judged (left
// for the next tick). Call it from the goroutine that ticks.
func (h *Hub) TillsynPending() int {
	n := 0
	for _, c := range h.ts.looks {
		n += len(c.looks) - c.next
	}
	return n
}

// openCareAlarms lists each resident's open alarms that are not technical
// ("A000012 bed_exit"), by site/resident.
func (h *Hub) openCareAlarms() map[string][]string {
	out := map[string][]string{}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, a := range h.alarms {
		if a.Open() && a.Resident != "" && a.Kind != alarm.KindTechnical {
			k := a.Site + "/" + a.Resident
			out[k] = append(out[k], a.ID+" "+a.Rule)
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// followUp acts on final look-ins (an alarm when the plan says so and none
// is open), journals their records and keeps them for the round view. It
// acts at each look-in's own time (rec.At). The records go to the journal
// in writes of at most tillsynJournalBytes, each after the alarm lane is
// quiet (pc.lane; pc may be nil).
func (h *Hub) followUp(made []judged, pc *pacer) {
	if len(made) == 0 {
		return
	}
	recs := make([]tillsyn.Record, len(made))
	ts := h.ts
	ts.body, ts.items = ts.body[:0], ts.items[:0]
	var encErr error
	// outcome/cause counts: a few kinds per chunk, no map per chunk.
	type kind struct{ outcome, cause string }
	var kinds []kind
	var counts []int
	for i := range made {
		recs[i] = made[i].rec
		rec, p := &recs[i], made[i].p
		if p != nil && rec.Outcome != tillsyn.AllRight {
			switch {
			case len(made[i].open[rec.Site+"/"+rec.Resident]) > 0 && rec.Outcome == tillsyn.NotAllRight:
				// Staff are already called to the resident: no second alarm.
				rec.LedTo, rec.VisitBy = "open_alarm", time.Time{}
			case p.Action.Kind == tillsyn.DoAlarm:
				rec.Alarm = h.raiseTillsyn(rec, p, rec.At)
				if rec.LedTo == "" {
					rec.LedTo = "alarm"
				}
			}
		}
		k := kind{string(rec.Outcome), string(rec.Cause)}
		if x := slices.Index(kinds, k); x >= 0 {
			counts[x]++
		} else {
			kinds, counts = append(kinds, k), append(counts, 1)
		}
		// The JSON json.Marshal would write, into one reused buffer
		// (tillsyn.EncodeJSON): the journal copies it.
		n := len(ts.body)
		var err error
		if ts.body, err = tillsyn.EncodeJSON(ts.body, rec); err != nil && encErr == nil {
			encErr = err
		}
		ts.items = append(ts.items, store.EncodedItem{At: rec.At, Body: ts.body[n:len(ts.body):len(ts.body)]})
	}
	for x, k := range kinds {
		h.ts.lookins.WithLabelValues(k.outcome, k.cause).Add(float64(counts[x]))
	}
	// The items' bodies are fixed up after encoding: ts.body may have
	// moved as it grew.
	for i, off := 0, 0; i < len(ts.items); i++ {
		n := len(ts.items[i].Body)
		ts.items[i].Body = ts.body[off : off+n : off+n]
		off += n
	}
	err := encErr
	notJournaled := len(ts.items)
	for items := ts.items; err == nil && len(items) > 0; {
		n, size := 1, len(items[0].Body)
		for n < len(items) && size+len(items[n].Body) <= tillsynJournalBytes {
			size += len(items[n].Body)
			n++
		}
		if pc != nil {
			pc.lane()
		}
		if err = appendEncoded(h.journal, RecTillsyn, items[:n]); err == nil {
			notJournaled -= n
		}
		items = items[n:]
	}
	if err != nil {
		h.tillsynNotJournaled(notJournaled, err, h.now())
	}
	clear(ts.items) // no hold on the buffer's old arrays
	h.ts.mu.Lock()
	for i := range recs {
		k := recs[i].Key()
		h.ts.records[k] = &recs[i]
		if !recs[i].VisitBy.IsZero() {
			h.ts.asked[k] = true
		}
	}
	h.ts.mu.Unlock()
	for _, o := range h.observers {
		if to, ok := o.(TillsynObserver); ok {
			for i := range recs {
				to.ObserveLookIn(recs[i])
			}
		}
	}
}

// tillsynNotJournaled counts, logs and raises supervision records or
// visits the journal refused. They are still shown and acted on (the
// round view keeps them in memory); they are not held for a later write
// like alarm transitions, so a restart loses them: hub_integrity says so.
func (h *Hub) tillsynNotJournaled(n int, err error, now time.Time) {
	h.ts.journalNG.Add(float64(n))
	h.log.Error("hub: supervision records not journaled", "records", n, "err", err)
	h.apply(rules.Action{Kind: rules.Raise, Rule: rules.RuleHubIntegrity, Key: rules.RuleHubIntegrity,
		Alarm: alarm.KindTechnical, Priority: 2, Status: event.IPConnectionFailed, Site: "hub",
		Note: fmt.Sprintf("tillsynsposter ej sparade / supervision records not journaled (%d): %v", n, err)}, now)
}

// TillsynObserver is an Observer that also receives supervision records
// and visits (the pilot export). It must return at once.
type TillsynObserver interface {
	ObserveLookIn(r tillsyn.Record)
	ObserveVisit(v tillsyn.Visit)
}

// raiseTillsyn raises the plan's alarm for a look-in and returns its id.
func (h *Hub) raiseTillsyn(rec *tillsyn.Record, p *tillsyn.Plan, now time.Time) string {
	dev := "tillsyn-" + rec.Resident
	var room string
	var dty event.DeviceType
	if len(p.Sensors) > 0 {
		dev = p.Sensors[0].Device
		if d, ok := h.engine.Lookup(rec.Site, dev); ok {
			room, dty = d.Room, d.Type
		}
	}
	sv, en := rec.Outcome.Words()
	act := rules.Action{Kind: rules.Raise, Rule: rules.RuleTillsyn, Key: rules.RuleTillsyn + "/" + rec.Site + "/" + dev,
		Alarm: alarm.Kind(p.Action.AlarmKind), Priority: alarm.Priority(p.Action.Priority), Status: event.AutomaticAlarm,
		Site: rec.Site, Device: dev, Type: dty, Unit: rec.Unit, Room: room, Resident: rec.Resident,
		Note: "tillsyn " + rec.Wall + ": " + sv + " / " + en + ": " + strings.Join(rec.Reasons, "; ")}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.applyLocked(act, now)
	h.raiseStoreTroubleLocked(now)
	return h.openByKey[act.Key]
}

type overdueVisit struct {
	rec  tillsyn.Record
	plan *tillsyn.Plan
}

// overdueLocked takes the visit requests whose deadline has passed with no
// visit recorded: each is escalated once.
func (ts *tillsynState) overdueLocked(now time.Time) []overdueVisit {
	var out []overdueVisit
	for k := range ts.asked {
		r := ts.records[k]
		if r == nil || ts.visitedLocked(r) {
			delete(ts.asked, k)
			continue
		}
		if now.Before(r.VisitBy) {
			continue
		}
		delete(ts.asked, k)
		if p := ts.plans[r.Site+"/"+r.Resident]; p != nil {
			out = append(out, overdueVisit{rec: *r, plan: p})
		}
	}
	return out
}

// escalateVisit raises the plan's alarm for a requested visit nobody
// recorded by its deadline: a visit request must not fade from a screen
// nobody looked at.
func (h *Hub) escalateVisit(rec tillsyn.Record, p *tillsyn.Plan, now time.Time) {
	h.ts.escalated.Inc()
	h.log.Warn("hub: requested night visit not recorded by its deadline", "site", rec.Site, "resident", rec.Resident, "wall", rec.Wall)
	r := rec
	r.Reasons = append([]string{"begärt besök ej registrerat senast " + rec.VisitBy.In(h.ts.loc).Format("15:04") +
		" / requested visit not recorded by " + rec.VisitBy.In(h.ts.loc).Format("15:04")}, rec.Reasons...)
	id := h.raiseTillsyn(&r, p, now)
	h.ts.mu.Lock()
	if x := h.ts.records[rec.Key()]; x != nil && x.Alarm == "" {
		x.Alarm = id
	}
	h.ts.mu.Unlock()
}

// ErrNoPlan is returned for a visit to a resident without a tillsyn plan.
var ErrNoPlan = errors.New("hub: resident has no tillsyn plan")

// RecordVisit records a physical night visit staff made, journaled like
// a supervision record. It answers the night's earliest look-in that asked
// for a visit and has none yet.
func (h *Hub) RecordVisit(site, resident, by string, at time.Time, note string) (tillsyn.Visit, error) {
	if len(note) > 2000 {
		return tillsyn.Visit{}, errors.New("hub: note longer than 2000 characters")
	}
	ts := h.ts
	ts.mu.Lock()
	p := ts.plans[site+"/"+resident]
	if p == nil {
		ts.mu.Unlock()
		return tillsyn.Visit{}, ErrNoPlan
	}
	v := tillsyn.Visit{Site: site, Resident: resident, Unit: p.Unit, By: by, At: at, Note: note,
		Night: tillsyn.NightOf(at, ts.loc, p.NightStart).Format("2006-01-02")}
	var asked []*tillsyn.Record
	for _, r := range ts.records {
		if r.Site == site && r.Resident == resident && r.Night == v.Night && !r.VisitBy.IsZero() && !r.At.After(at) {
			asked = append(asked, r)
		}
	}
	slices.SortFunc(asked, func(a, b *tillsyn.Record) int { return a.Planned.Compare(b.Planned) })
	for _, r := range asked {
		if !ts.visitedLocked(r) {
			v.Wall = r.Wall
			break
		}
	}
	ts.visits = append(ts.visits, v)
	ts.mu.Unlock()
	ts.visitsN.Inc()
	if err := h.journal.AppendRecord(RecVisit, at, v); err != nil {
		h.tillsynNotJournaled(1, err, h.now())
	}
	for _, o := range h.observers {
		if to, ok := o.(TillsynObserver); ok {
			to.ObserveVisit(v)
		}
	}
	return v, nil
}

func (ts *tillsynState) visitedLocked(r *tillsyn.Record) bool {
	for _, v := range ts.visits {
		if v.Site == r.Site && v.Resident == r.Resident && v.Night == r.Night && v.Wall == r.Wall {
			return true
		}
	}
	return false
}

// RoundEntry is one look-in of the night round view.
type RoundEntry struct {
	tillsyn.LookIn
	// State is pending (not yet due), due (being looked at until its
	// deadline), or the outcome.
	State      string             `json:"state"`
	SV         string             `json:"sv"`
	EN         string             `json:"en"`
	Cause      tillsyn.Cause      `json:"cause,omitempty"`
	CauseWords string             `json:"cause_words,omitempty"`
	Reasons    []string           `json:"reasons,omitempty"`
	Evidence   []tillsyn.Evidence `json:"evidence,omitempty"`
	At         time.Time          `json:"at,omitzero"`
	LedTo      string             `json:"led_to,omitempty"`
	Alarm      string             `json:"alarm,omitempty"`
	VisitBy    time.Time          `json:"visit_by,omitzero"`
	// NeedsVisit: a visit was asked for and none is recorded yet.
	NeedsVisit bool            `json:"needs_visit"`
	Visits     []tillsyn.Visit `json:"visits,omitempty"`
	Room       string          `json:"room,omitempty"`
}

// Round is the night round view: tonight's look-ins, the ones needing a
// physical visit first (earliest deadline first), then in time order.
type Round struct {
	At      time.Time    `json:"at"`
	Zone    string       `json:"zone"` // the hub's time zone, for showing times`
	Entries []RoundEntry `json:"entries"`
}

// TillsynRound returns the round view of the night under way at now.
func (h *Hub) TillsynRound(now time.Time) Round {
	ts := h.ts
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := Round{At: now, Zone: ts.loc.String(), Entries: []RoundEntry{}}
	for _, k := range ts.order {
		p := ts.plans[k]
		var room string
		if len(p.Sensors) > 0 {
			if d, ok := h.engine.Lookup(p.Site, p.Sensors[0].Device); ok {
				room = d.Room
			}
		}
		for _, l := range p.Schedule(tillsyn.NightOf(now, ts.loc, p.NightStart), ts.loc) {
			e := RoundEntry{LookIn: l, State: "pending", Room: room}
			if now.After(l.Planned) || now.Equal(l.Planned) {
				e.State = "due"
			}
			for _, v := range ts.visits {
				if v.Site == l.Site && v.Resident == l.Resident && v.Night == l.Night && v.Wall == l.Wall {
					e.Visits = append(e.Visits, v)
				}
			}
			if r := ts.records[l.Key()]; r != nil {
				e.State, e.Cause, e.Reasons, e.Evidence = string(r.Outcome), r.Cause, r.Reasons, r.Evidence
				e.At, e.LedTo, e.Alarm, e.VisitBy = r.At, r.LedTo, r.Alarm, r.VisitBy
				e.SV, e.EN = r.Outcome.Words()
				e.CauseWords = tillsyn.CauseWords(r.Cause)
				e.NeedsVisit = !r.VisitBy.IsZero() && len(e.Visits) == 0
			} else if e.State == "due" {
				e.SV, e.EN = "Tittar nu", "Looking now"
			} else {
				e.SV, e.EN = "Planerad", "Planned"
			}
			out.Entries = append(out.Entries, e)
		}
	}
	slices.SortStableFunc(out.Entries, func(a, b RoundEntry) int {
		if a.NeedsVisit != b.NeedsVisit {
			if a.NeedsVisit {
				return -1
			}
			return 1
		}
		if a.NeedsVisit {
			return a.VisitBy.Compare(b.VisitBy)
		}
		return cmp.Or(a.Planned.Compare(b.Planned), cmp.Compare(a.Site, b.Site), cmp.Compare(a.Unit, b.Unit), cmp.Compare(a.Resident, b.Resident))
	})
	return out
}

// TillsynRecords returns the supervision records kept in memory (the
// night under way and the one before), in time order.
func (h *Hub) TillsynRecords() []tillsyn.Record {
	h.ts.mu.Lock()
	defer h.ts.mu.Unlock()
	out := make([]tillsyn.Record, 0, len(h.ts.records))
	for _, r := range h.ts.records {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b tillsyn.Record) int {
		return cmp.Or(a.Planned.Compare(b.Planned), cmp.Compare(a.Site, b.Site), cmp.Compare(a.Resident, b.Resident))
	})
	return out
}

// Now is the hub's clock (injected in tests), for the round view's "now".
func (h *Hub) Now() time.Time { return h.now() }
