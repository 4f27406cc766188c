package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/event"
)

// Recorder commits a notification transition on an alarm (the hub). It
// is declared here, where it is used.
type Recorder interface {
	Record(t alarm.Transition) error
}

// ErrNotKept is what a Recorder returns (wrapped) when a step could not be
// journaled now and was not applied: the hub of a redundant group whose
// replicated journal did not take it. Nobody is alerted; the step is tried
// again after stepRetry. Any other error stops the escalation.
var ErrNotKept = errors.New("notify: step not journaled; nobody alerted, try again")

// stepRetry is how long a step not journaled waits before it is tried again.
const stepRetry = time.Second

// Message is what a phone is told. It carries no resident name: it is
// shown on a locked screen.
type Message struct {
	Alarm    string       `json:"alarm"`
	Step     alarm.Action `json:"step"` // notify, escalate or reminder
	Kind     alarm.Kind   `json:"kind"`
	Site     string       `json:"site"`
	Unit     string       `json:"unit,omitempty"`
	Room     string       `json:"room,omitempty"`
	Priority int          `json:"priority"`
	Tier     int          `json:"tier"`
	// Rule and DeviceType let the phone name the alarm in words on the
	// lock screen ("Lämnat sängen", not "Vandring"); codes, never names.
	Rule       string `json:"rule,omitempty"`
	DeviceType string `json:"dty,omitempty"`
	Count      int    `json:"count,omitempty"` // a group alarm: its members so far
}

// Pusher alerts one staff member's phones (Web Push) and returns how many
// phones the push service accepted the message for.
type Pusher interface {
	Push(ctx context.Context, user string, m Message) (int, error)
}

// PhoneChecker is what a Pusher may also offer: whether a user has any
// phone to push to. The dispatcher then starts no send (a goroutine with
// its timeout) for a user whose Push could only return 0: in a storm of
// care alarms that is work on the alarm path's core for nothing.
type PhoneChecker interface {
	HasPhones(user string) bool
}

// Options configure a Dispatcher.
type Options struct {
	Tree   *Tree
	Pusher Pusher // nil: staff are alerted only through the live app
	Logger *slog.Logger
	Now    func() time.Time // the hub's clock; nil means time.Now
	// Webhook posts to webhook receivers; nil uses a default client.
	Webhook *WebhookSender
	// SCAIP exchanges SCAIP messages with alarm receiving centres; nil
	// uses SIP (scaipsip.Send). Tests give an in-process centre.
	SCAIP SCAIPExchanger
}

// Dispatcher runs the route tree and the escalation state machines. It
// observes the hub's transitions (hub.Observer) and records its own steps
// through a Recorder. Its queue never blocks the alarm path and never
// drops: ObserveTransition appends under a mutex and signals the loop.
type Dispatcher struct {
	log     *slog.Logger
	now     func() time.Time
	pusher  Pusher
	webhook *WebhookSender

	mu   sync.Mutex
	tree *Tree
	care lane // care alarms' transitions: always handled first
	tech lane // technical alarms' transitions: in bounded chunks
	wake chan struct{}
	// pre and groupPlans are set by OnRaise under mu (grouping.go).
	pre        map[string]preplan
	groupPlans map[string][]Plan

	groups map[string]*groupTrack // loop goroutine only: group alarm id → notification state

	lmu    sync.Mutex
	labels map[string]string // under lmu: matchRaise's labels

	scaipX   SCAIPExchanger
	hand     map[string]*handover // loop goroutine only: live hand-overs to centres (scaip.go)
	handLive map[string]int       // under mu: alarms with a live hand-over (their repeats are sent as IN)
	results  []handResult         // under mu: answers from centres for the loop

	// SCAIP hand-over counters (exported in /metrics by the service).
	SCAIPSent, SCAIPFailed, SCAIPAborted atomic.Int64
	// SCAIPTLSRefused counts hand-overs given up because TLS to the
	// centre did not verify (scaip.go).
	SCAIPTLSRefused atomic.Int64
	centres         centreStates // scaip.go: which centres' technical alarm is raised
	hbs             heartbeats   // scaip.go: the centres' heartbeat loops

	// tracks holds each alarm's first track, the others chained by next:
	// a slice per open alarm was 8 bytes more and a map value of 24, not 8
	// (issue 20). Loop goroutine only.
	tracks map[string]*Track
	due    dueHeap // loop goroutine only: when each track next wants a look
	rec    Recorder
	stop   chan struct{}
	done   chan struct{}
	sends  sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc

	PushFailures atomic.Int64
	Sent         atomic.Int64
	// NotKept counts steps the Recorder could not journal (ErrNotKept),
	// each tried again.
	NotKept atomic.Int64
	// GroupNotifications counts notify and reminder steps on group alarms.
	GroupNotifications atomic.Int64
}

// New returns a Dispatcher; Start runs it.
func New(o Options) *Dispatcher {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Webhook == nil {
		o.Webhook = NewWebhookSender(nil)
	}
	if o.SCAIP == nil {
		o.SCAIP = NewSIPSender() // scaip_sender.go
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{log: o.Logger, now: o.Now, pusher: o.Pusher, webhook: o.Webhook, tree: o.Tree,
		scaipX: o.SCAIP, hand: map[string]*handover{}, handLive: map[string]int{},
		wake: make(chan struct{}, 1), tracks: map[string]*Track{}, stop: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel}
}

// SetTree swaps in a reloaded route tree. Running escalations keep the
// plan they started with; new alarms use the new tree.
func (d *Dispatcher) SetTree(t *Tree) {
	d.mu.Lock()
	d.tree = t
	d.groupPlans = nil // groups opened from now on use the new tree
	d.mu.Unlock()
	d.retainCentres(t)  // scaip.go
	d.syncHeartbeats(t) // scaip.go
}

// Tree returns the route tree in force.
func (d *Dispatcher) Tree() *Tree {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tree
}

// ObserveEvent is part of hub.Observer; events do not concern routing.
func (d *Dispatcher) ObserveEvent(*event.Event, time.Time) {}

// ObserveTransition queues a committed transition. It never blocks.
func (d *Dispatcher) ObserveTransition(a *alarm.Alarm, t alarm.Transition) {
	switch t.Action {
	case alarm.ActRaise, alarm.ActDelivered, alarm.ActAccept, alarm.ActPresence, alarm.ActResolve:
	case alarm.ActRepeat, alarm.ActRestore:
		// Updates matter only to an alarm a centre has or is being
		// offered: sent on as SCAIP IN (scaip.go).
		d.mu.Lock()
		live := d.handLive[a.ID] > 0
		d.mu.Unlock()
		if !live {
			return
		}
	default:
		return
	}
	snap := *a
	snap.Deliveries = nil
	snap.SetTrack(nil)
	snap.SetHistory(nil)
	if snap.Group() != nil {
		g := *snap.Group()
		g.Members = nil
		snap.SetGroup(&g)
	}
	d.mu.Lock()
	if a.Kind == alarm.KindTechnical {
		d.tech.push(snap, t)
	} else {
		d.care.push(snap, t)
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start runs the dispatcher, recording through rec. open are the alarms
// open at start (rebuilt from the journal): their escalations resume
// from the steps recorded on them.
func (d *Dispatcher) Start(rec Recorder, open []*alarm.Alarm) {
	d.rec = rec
	now := d.now()
	for _, a := range open {
		d.resume(a, now)
	}
	d.startHeartbeats() // scaip.go
	go d.loop()
}

// Close stops the loop and waits for sends in flight.
func (d *Dispatcher) Close() error {
	close(d.stop)
	<-d.done
	d.cancel()
	d.sends.Wait()
	if c, ok := d.scaipX.(io.Closer); ok {
		_ = c.Close() // the centres' long-lived senders (scaip_sender.go)
	}
	return nil
}

func (d *Dispatcher) loop() {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.drain()
		wake := d.runDue()
		if g := d.runGroups(d.now()); !g.IsZero() && (wake.IsZero() || g.Before(wake)) {
			wake = g
		}
		if h := d.runHandovers(d.now()); !h.IsZero() && (wake.IsZero() || h.Before(wake)) {
			wake = h
		}
		if d.due.Len() > 0 && (wake.IsZero() || d.due[0].at < wake.UnixNano()) {
			wake = d.due[0].time() // a hand-over given up just now moves its track on
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !wake.IsZero() {
			timer.Reset(max(wake.Sub(d.now()), 0))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-d.stop:
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// techChunk bounds the technical transitions handled per turn of the
// loop: between chunks, care transitions that arrived meanwhile go first.
const techChunk = 256

// drain handles every queued care transition, then at most techChunk
// technical ones, and wakes the loop again if technical work is left: a
// care alarm never waits behind a storm of technical ones.
func (d *Dispatcher) drain() {
	d.mu.Lock()
	tech := d.tech.take(techChunk)
	more := d.tech.len() > 0
	d.mu.Unlock()
	d.drainCare()
	for i := range tech.a {
		if i > 0 && i%32 == 0 {
			// Every 32 technical steps: give up the processor (with one,
			// GOMAXPROCS 1, a press's goroutine would otherwise wait for
			// this whole turn), then handle any care transition that
			// arrived meanwhile before the rest. Handled here, not by
			// putting the rest back in front of the lane: that copied the
			// whole technical backlog (a storm's, 640 bytes a snapshot)
			// at every care arrival.
			runtime.Gosched()
			d.drainCare()
		}
		d.handle(&tech.a[i], tech.t[i])
	}
	// Like care's: a storm's technical transitions otherwise grew a new
	// array (640 bytes a snapshot, doubling) every turn of the loop.
	d.mu.Lock()
	d.tech.recycle(tech)
	d.mu.Unlock()
	if more {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// drainCare handles every queued care transition.
func (d *Dispatcher) drainCare() {
	d.mu.Lock()
	care := d.care.take(-1)
	d.mu.Unlock()
	for i := range care.a {
		d.handle(&care.a[i], care.t[i])
	}
	// Nothing handle does keeps a pointer into care (it copies what it
	// keeps): its arrays go back to the lane for the next burst.
	d.mu.Lock()
	d.care.recycle(care)
	d.mu.Unlock()
}

// lane is a FIFO of observed transitions with their alarm snapshots.
type lane struct {
	a []alarm.Alarm
	t []alarm.Transition
	// spareA and spareT are the arrays of an earlier take, cleared, for
	// the next pushes: a burst of alarms would otherwise grow new arrays
	// (an alarm snapshot is 640 bytes) every time the loop takes them.
	spareA []alarm.Alarm
	spareT []alarm.Transition
}

// maxSpare bounds the snapshots a lane keeps arrays for between bursts.
const maxSpare = 4096

// recycle gives the arrays of out, taken and handled, back to the lane.
func (l *lane) recycle(out lane) {
	if cap(out.a) == 0 || cap(out.a) > maxSpare || l.spareA != nil {
		return
	}
	clear(out.a) // let the GC have what the snapshots pointed to
	clear(out.t)
	if len(l.a) == 0 && cap(l.a) < cap(out.a) {
		l.a, l.t = out.a[:0], out.t[:0]
		return
	}
	l.spareA, l.spareT = out.a[:0], out.t[:0]
}

func (l *lane) push(a alarm.Alarm, t alarm.Transition) { l.a, l.t = append(l.a, a), append(l.t, t) }
func (l *lane) len() int                               { return len(l.a) }

// take removes and returns up to n entries (n < 0: all).
func (l *lane) take(n int) lane {
	if n < 0 || n >= len(l.a) {
		out := lane{a: l.a, t: l.t}
		l.a, l.t, l.spareA, l.spareT = l.spareA, l.spareT, nil, nil
		return out
	}
	out := lane{a: slices.Clone(l.a[:n]), t: slices.Clone(l.t[:n])}
	l.a, l.t = l.a[n:], l.t[n:]
	return out
}

func (d *Dispatcher) handle(a *alarm.Alarm, t alarm.Transition) {
	switch t.Action {
	case alarm.ActRaise:
		if _, ok := d.tracks[a.ID]; ok {
			return
		}
		now := d.now()
		switch {
		case a.GroupID() != "":
			d.memberRaised(a, now) // the group is notified, not each member
			return
		case a.Group() != nil:
			d.groupRaised(a, now)
			return
		}
		d.mu.Lock()
		pre, recorded := d.pre[a.ID]
		delete(d.pre, a.ID)
		d.mu.Unlock()
		plans := pre.plans
		if !recorded {
			plans = d.Tree().Match(LabelsOf(a), now)
		}
		for _, p := range plans {
			if len(p.Tiers) == 0 {
				continue
			}
			tr := NewTrack(a.ID, p, now)
			d.addTrack(tr)
			// When the hub journaled the notify step with the raise
			// (OnRaise), only the phones are left to alert.
			s := Step{Action: alarm.ActNotify, Tier: 0, Receiver: p.Tiers[0], Reason: "raised", recorded: recorded}
			if !d.alert(a, tr, s, now) && !tr.Stopped {
				tr.retry = &s // not journaled: tried again by runDue
				d.schedule(tr, now.Add(stepRetry))
				continue
			}
			d.schedule(tr, now)
		}
	case alarm.ActDelivered:
		for tr := d.tracks[a.ID]; tr != nil; tr = tr.next {
			tr.Receipt(t.By)
			d.schedule(tr, d.now()) // a receipt changes which timeout applies
		}
	case alarm.ActRepeat, alarm.ActRestore:
		d.updateHandovers(a, t, d.now())
	case alarm.ActAccept, alarm.ActPresence, alarm.ActResolve:
		d.stopHandovers(a.ID, t, d.now())
		delete(d.tracks, a.ID)
		delete(d.groups, a.ID)
	}
}

// runDue performs every step due now and returns the earliest wake-up.
// Only tracks whose time has come are looked at (a min-heap of due times),
// so a wake costs O(log n) in the open alarms, not a scan of all of them.
func (d *Dispatcher) runDue() time.Time {
	now := d.now()
	for d.due.Len() > 0 && d.due[0].at <= now.UnixNano() {
		e := d.due.pop()
		if !d.active(e.tr) {
			continue // accepted, resolved or superseded since it was scheduled
		}
		for range 8 { // bounded: at most a few steps fall due at once
			s, ok, w := e.tr.Next(now)
			if !ok {
				if !w.IsZero() {
					d.due.push(dueEntry{at: w.UnixNano(), tr: e.tr})
				}
				break
			}
			if !d.alert(d.labelsAlarm(e.tr), e.tr, s, now) {
				if !e.tr.Stopped {
					// Not journaled, nobody alerted: the same step again later.
					e.tr.retry = &s
					d.due.push(dueEntry{at: now.Add(stepRetry).UnixNano(), tr: e.tr})
				}
				break
			}
			e.tr.Advance(s, now)
		}
	}
	if d.due.Len() == 0 {
		return time.Time{}
	}
	return d.due[0].time()
}

// schedule asks runDue to look at tr at (or after) at.
func (d *Dispatcher) schedule(tr *Track, at time.Time) {
	d.due.push(dueEntry{at: at.UnixNano(), tr: tr})
}

func (d *Dispatcher) active(tr *Track) bool {
	for t := d.tracks[tr.Alarm]; t != nil; t = t.next {
		if t == tr {
			return !tr.Stopped
		}
	}
	return false
}

// dueEntry is one track's next look. Its time is in unix nanoseconds:
// 16 bytes an entry where a time.Time made it 32, and the heap holds one
// per open alarm (issue 20).
// addTrack adds tr to its alarm's tracks, after those it has.
func (d *Dispatcher) addTrack(tr *Track) {
	last := d.tracks[tr.Alarm]
	if last == nil {
		d.tracks[tr.Alarm] = tr
		return
	}
	for last.next != nil {
		last = last.next
	}
	last.next = tr
}

type dueEntry struct {
	at int64
	tr *Track
}

func (e dueEntry) time() time.Time { return time.Unix(0, e.at) }

// dueHeap is a min-heap of due times. It is typed rather than driven
// through container/heap, whose Push and Pop box each entry in an
// interface: two allocations per alarm at every raise.
type dueHeap []dueEntry

func (h dueHeap) Len() int { return len(h) }

func (h *dueHeap) push(e dueEntry) {
	*h = append(*h, e)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[i].at >= q[p].at {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

// pop removes and returns the earliest entry; the heap must not be empty.
func (h *dueHeap) pop() dueEntry {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q[n] = dueEntry{} // let the GC have the track
	q = q[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q[r].at < q[l].at {
			m = r
		}
		if q[m].at >= q[i].at {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

// labelsAlarm returns the alarm snapshot kept for a track's messages.
func (d *Dispatcher) labelsAlarm(tr *Track) *alarm.Alarm {
	if tr.snap.taken() {
		return tr.snap.alarm(tr.Alarm)
	}
	return &alarm.Alarm{ID: tr.Alarm}
}

// alert records step s on the alarm and alerts the receivers it names,
// only once the step is recorded: it reports false, having alerted
// nobody, when the step was not recorded (tr.Stopped set unless the
// Recorder said ErrNotKept, to try again).
func (d *Dispatcher) alert(a *alarm.Alarm, tr *Track, s Step, now time.Time) bool {
	if !tr.snap.taken() {
		tr.snap = snapshotOf(a)
	}
	// Who: the tier's receiver on notify and escalate; on a reminder,
	// every staff member alerted so far.
	var targets []*Receiver
	if s.Action == alarm.ActReminder {
		targets = tr.Plan.Tiers[:tr.Tier+1]
	} else {
		targets = []*Receiver{s.Receiver}
	}
	if g := d.groups[a.ID]; g != nil {
		g.last = now
	}
	if d.rec != nil && !s.recorded {
		// Who was alerted is listed only for a step the hub has not
		// journaled already (a raise's first notify is journaled with
		// it, OnRaise): one slice fewer per alarm.
		t := alarm.Transition{Alarm: a.ID, Action: s.Action, At: now, By: "notify", Tier: s.Tier, To: stepTargets(targets, s.Action), Note: s.Reason}
		if s.Receiver != nil {
			t.Receiver = s.Receiver.Name
		}
		if err := d.rec.Record(t); err != nil {
			if errors.Is(err, ErrNotKept) {
				d.NotKept.Add(1)
				d.log.Warn("notify: step not journaled; nobody alerted, tried again", "alarm", a.ID, "action", s.Action, "in", stepRetry, "err", err)
				return false
			}
			// The alarm was resolved meanwhile, or is gone: stop.
			d.log.Info("notify: step not recorded; escalation stops", "alarm", a.ID, "action", s.Action, "err", err)
			tr.Stopped = true
			return false
		}
	}
	m := Message{Alarm: a.ID, Step: s.Action, Kind: a.Kind, Site: a.Site, Unit: a.Unit, Room: a.Room, Priority: int(a.Priority), Tier: s.Tier,
		Rule: a.Rule, DeviceType: string(a.DeviceType)}
	if g := d.groups[a.ID]; g != nil {
		m.Count = g.count
		d.GroupNotifications.Add(1)
	}
	if s.Receiver != nil && s.Receiver.SCAIP != nil && s.Action != alarm.ActReminder {
		d.startHandover(a, tr, s.Tier, s.Receiver, now, now) // scaip.go
	}
	for _, r := range targets {
		if r.SCAIP != nil {
			continue // the hand-over above speaks to the centre
		}
		if r.Webhook != nil {
			if s.Action == alarm.ActReminder {
				continue
			}
			d.sendWebhook(r, a, m)
			continue
		}
		if d.pusher == nil {
			continue
		}
		pc, _ := d.pusher.(PhoneChecker)
		for _, u := range r.Users {
			if pc != nil && !pc.HasPhones(u) {
				continue // Push would find no phone: no goroutine for it
			}
			d.sendPush(u, m)
		}
	}
	return true
}

func (d *Dispatcher) sendPush(user string, m Message) {
	d.sends.Add(1)
	go func() {
		defer d.sends.Done()
		ctx, cancel := context.WithTimeout(d.ctx, 15*time.Second)
		defer cancel()
		n, err := d.pusher.Push(ctx, user, m)
		d.Sent.Add(int64(n))
		if err != nil {
			d.PushFailures.Add(1)
			d.log.Warn("notify: push failed", "alarm", m.Alarm, "user", user, "phones", n, "err", err)
		}
	}()
}

func (d *Dispatcher) sendWebhook(r *Receiver, a *alarm.Alarm, m Message) {
	d.sends.Add(1)
	go func() {
		defer d.sends.Done()
		if err := d.webhook.Send(d.ctx, r, m); err != nil {
			d.log.Error("notify: webhook failed after retries", "alarm", m.Alarm, "receiver", r.Name, "err", err)
			return
		}
		if d.rec != nil {
			_ = d.rec.Record(alarm.Transition{Alarm: m.Alarm, Action: alarm.ActDelivered, At: d.now(),
				By: "webhook:" + r.Name, Phone: "webhook:" + r.Name, Tier: m.Tier})
		}
	}()
}

// resume rebuilds an open alarm's escalation from the steps on it after a
// restart. An alarm that was raised but never alerted is alerted now.
func (d *Dispatcher) resume(a *alarm.Alarm, now time.Time) {
	if a.State != alarm.Raised {
		return
	}
	var notified bool
	var since, last time.Time
	tier := 0
	delivered := map[string]bool{}
	for _, h := range a.History() {
		switch h.Action {
		case alarm.ActNotify:
			notified = true
			if since.IsZero() {
				since = h.At
			}
			last = h.At
		case alarm.ActEscalate:
			tier, since, last = h.Tier, h.At, h.At
			clear(delivered)
		case alarm.ActReminder:
			last = h.At
		case alarm.ActDelivered:
			delivered[h.By] = true
		}
	}
	if !notified {
		snap := *a
		snap.SetHistory(nil)
		d.handle(&snap, alarm.Transition{Alarm: a.ID, Action: alarm.ActRaise})
		return
	}
	if a.Group() != nil {
		// A group notified before the restart: notified again when it grows.
		d.groupRaised(a, now)
		if g := d.groups[a.ID]; g != nil {
			g.notified, g.last, g.due = g.count, last, time.Time{}
		}
	}
	// The plan is matched again at the alarm's raise time.
	for _, p := range d.Tree().Match(LabelsOf(a), a.RaisedAt) {
		if len(p.Tiers) == 0 {
			continue
		}
		tr := &Track{Alarm: a.ID, Plan: internPlan(p), Tier: min(tier, len(p.Tiers)-1), Since: since, LastAlert: last}
		for u := range delivered {
			tr.Receipt(u)
		}
		tr.snap = snapshotOf(a)
		d.addTrack(tr)
		if r := p.Tiers[tr.Tier]; r.SCAIP != nil {
			d.resumeHandover(a, tr, r, now) // scaip.go
		}
		d.schedule(tr, now)
	}
}

// QueueLen returns the care and technical transitions waiting for the
// dispatcher's loop.
func (d *Dispatcher) QueueLen() (care, technical int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.care.len(), d.tech.len()
}

// stepTargets is targets, for alert, whose receivers shadow its name.
func stepTargets(rs []*Receiver, act alarm.Action) []string { return targets(rs, act) }
