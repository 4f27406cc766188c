package notify

// Handing an alarm to an alarm receiving centre (larmcentral) over SCAIP,
// SS 91100:2014, as the standard's sender does:
//
//	tier alerted ──ME──▶ centre
//	   snu 0 ──────────▶ delivered (channel scaip): the centre has it
//	   snu 4 / 6 / no answer ─▶ the same ME again every resend (5–20 s)
//	   deadline (3–30 min) passed, or snu 5, or a refusal ─▶ RE, next tier
//	   repeat / restore while live ─▶ IN with the same ref
//	   staff accept / resolve before snu 0 ─▶ RE
//
// Every outcome is a transition on the alarm (handover, delivered,
// escalate), journaled by the hub, so a restart rebuilds the hand-over
// from the history: the same ref (derived from the alarm, tier and
// receiver), the same deadline (from when the tier was alerted), resends
// going on. Heartbeats (PI) to each centre supervise the line: a centre
// that stops answering raises a technical alarm, its answer restores it.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/event"
	"github.com/vaka-care/vaka/scaip"
)

// SCAIP is a receiver that is an alarm receiving centre speaking SCAIP.
type SCAIP struct {
	// To is the centre's SIP URI: sip:user@host[:port] (UDP or TCP,
	// port 5060 by default) or sips:… (TLS, 5061).
	To string `yaml:"to"`
	// Transport is udp (default for sip:), tcp or tls (default for sips:).
	Transport string `yaml:"transport"`
	// Username and PasswordFile are the Digest account the centre gave
	// Vaka; the file holds the password (Digest needs it, not a hash).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// CID is Vaka's account number at the centre (SCAIP cid, digits).
	CID string `yaml:"cid"`
	// Resend is the wait between sends of a request the centre holds
	// (snu 4) or does not answer: 5–20 s, default 10 s.
	Resend time.Duration `yaml:"resend"`
	// Deadline is how long after the tier was alerted the centre has to
	// answer snu 0 before Vaka sends RE and goes to the next tier:
	// 3–30 min, default 3 min.
	Deadline time.Duration `yaml:"deadline"`
	// Heartbeat sends PI to the centre this often (1 min–24 h; 0 off).
	// Two unanswered in a row raise alarm_centre_unreachable. The PI says
	// hbo 1, and an hbi (1–1440 min) in the centre's answer becomes the
	// interval from then on, unless IgnoreHbi.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// IgnoreHbi keeps Heartbeat whatever the centre asks: the PI then
	// says hbo 0, so a centre knows not to ask.
	IgnoreHbi bool `yaml:"ignore_hbi"`
	// Timeout is how long one send waits for the <mrs> (1 s up to
	// Resend, default 5 s).
	Timeout time.Duration `yaml:"timeout"`
	// CAFile verifies the centre's TLS certificate against this CA (PEM)
	// instead of the system's roots: a centre with a private CA. TLS only.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are Vaka's client certificate (PEM) for a
	// centre that asks for one. TLS only, both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Bounds and defaults of the standard's sender behaviour.
const (
	SCAIPResendMin, SCAIPResendMax, SCAIPResendDefault       = 5 * time.Second, 20 * time.Second, 10 * time.Second
	SCAIPDeadlineMin, SCAIPDeadlineMax, SCAIPDeadlineDefault = 3 * time.Minute, 30 * time.Minute, 3 * time.Minute
	SCAIPTimeoutDefault                                      = 5 * time.Second
	// SCAIPMissedHeartbeats unanswered PI in a row raise the technical alarm.
	SCAIPMissedHeartbeats = 2
	// RuleCentreUnreachable is the technical alarm of a silent centre.
	RuleCentreUnreachable = "alarm_centre_unreachable"
)

func (c *SCAIP) resend() time.Duration {
	if c.Resend == 0 {
		return SCAIPResendDefault
	}
	return c.Resend
}

func (c *SCAIP) deadline() time.Duration {
	if c.Deadline == 0 {
		return SCAIPDeadlineDefault
	}
	return c.Deadline
}

func (c *SCAIP) timeout() time.Duration {
	if c.Timeout == 0 {
		return min(SCAIPTimeoutDefault, c.resend())
	}
	return c.Timeout
}

// target splits To into host, port and transport.
func (c *SCAIP) target() (host, port, transport string, err error) {
	if transport, err = c.transport(); err != nil {
		return "", "", "", err
	}
	host, port, err = c.hostPort(transport)
	return host, port, transport, err
}

// transport is the configured transport, or the URI scheme's default.
func (c *SCAIP) transport() (string, error) {
	tp := strings.ToLower(c.Transport)
	sips := strings.HasPrefix(c.To, "sips:")
	switch {
	case tp == "" && sips:
		return "tls", nil
	case tp == "":
		return "udp", nil
	case tp != "udp" && tp != "tcp" && tp != "tls":
		return "", fmt.Errorf("%q: use udp, tcp or tls", c.Transport)
	case sips && tp != "tls":
		return "", errors.New("a sips: URI needs transport tls")
	}
	return tp, nil
}

func (c *SCAIP) hostPort(transport string) (host, port string, err error) {
	scheme, rest, ok := strings.Cut(c.To, ":")
	if !ok || (scheme != "sip" && scheme != "sips") {
		return "", "", errors.New("must be sip:user@host[:port] or sips:…")
	}
	rest, _, _ = strings.Cut(rest, ";") // URI parameters
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	host, port = rest, "5060"
	if transport == "tls" {
		port = "5061"
	}
	if h, p, err := net.SplitHostPort(rest); err == nil {
		host, port = h, p
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("port %q is not 1–65535", port)
	}
	if host == "" || strings.ContainsAny(host, " /?#@:") {
		return "", "", errors.New("no host")
	}
	return host, port, nil
}

func (c *SCAIP) password() (string, error) {
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("notify: scaip password_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// validate checks one scaip receiver; f is its field path.
func (c *SCAIP) validate(f string) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.Errorf(config.Field(f, field), format, args...))
	}
	tp, err := c.transport()
	if err != nil {
		add("transport", "%v", err)
		tp = "udp"
	}
	if c.To == "" {
		add("to", "missing: the centre's SIP URI, e.g. sip:larm@centre.example:5060")
	} else if _, _, err := c.hostPort(tp); err != nil {
		add("to", "%q: %v", c.To, err)
	}
	if c.Username == "" {
		add("username", "missing: the Digest account the centre gave Vaka")
	}
	if c.PasswordFile == "" {
		add("password_file", "missing: a file holding the Digest password")
	} else if _, err := c.password(); err != nil {
		add("password_file", "cannot read %s: %v", c.PasswordFile, errors.Unwrap(err))
	}
	if c.CID == "" || len(c.CID) > 32 || strings.Trim(c.CID, "0123456789") != "" {
		add("cid", "missing or not digits (≤ 32): Vaka's account number at the centre")
	}
	if c.Resend != 0 && (c.Resend < SCAIPResendMin || c.Resend > SCAIPResendMax) {
		add("resend", "%v: must be between 5s and 20s (SS 91100; default 10s)", c.Resend)
	}
	if c.Deadline != 0 && (c.Deadline < SCAIPDeadlineMin || c.Deadline > SCAIPDeadlineMax) {
		add("deadline", "%v: must be between 3m and 30m (SS 91100; default 3m)", c.Deadline)
	}
	if c.Heartbeat != 0 && (c.Heartbeat < time.Minute || c.Heartbeat > 24*time.Hour) {
		add("heartbeat", "%v: must be 0 (off) or between 1m and 24h", c.Heartbeat)
	}
	if c.Timeout != 0 && (c.Timeout < time.Second || c.Timeout > c.resend()) {
		add("timeout", "%v: must be between 1s and resend (%v)", c.Timeout, c.resend())
	}
	for _, fl := range []struct{ name, v string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
		if fl.v != "" && tp != "tls" {
			add(fl.name, "only with transport tls (a sips: URI)")
		}
	}
	if tp == "tls" {
		switch {
		case (c.CertFile == "") != (c.KeyFile == ""):
			add("cert_file", "set cert_file and key_file together, or neither")
		default:
			if _, err := c.tlsConfig(); err != nil {
				f := "ca_file"
				if !strings.Contains(err.Error(), "ca_file") {
					f = "cert_file"
				}
				add(f, "%v", err)
			}
		}
	}
	return errs
}

// SCAIPExchanger sends one <mrq> to a centre and returns its <mrs> (an
// error when none came within ctx).
type SCAIPExchanger interface {
	Exchange(ctx context.Context, c *SCAIP, body []byte) (*scaip.Response, error)
}

// HandoverRef is the ref of the hand-over of alarm id at tier to the
// centre named receiver: derived, not drawn, so a restart resends the same
// request and an IN or RE names the same event.
func HandoverRef(id string, tier int, receiver string) string {
	sum := sha256.Sum256([]byte(id + "/" + strconv.Itoa(tier) + "/" + receiver))
	return "V" + hex.EncodeToString(sum[:])[:15]
}

// Request builds the <mrq> for alarm a: the Vaka → SCAIP mapping of
// docs/scaip.md. Every value is within the standard's character sets and
// lengths (the strict parser takes it back: TestRequestFromAlarm).
func Request(a *alarm.Alarm, c *SCAIP, ref string, mty scaip.MessageType) scaip.Request {
	r := scaip.Request{Ref: ref, Mty: mty, Cid: c.CID}
	r.Dty = code(string(a.DeviceType), 4)
	r.Stc = code(string(a.Status), 4)
	switch a.Kind {
	case alarm.KindCall:
		r.Dty = or(r.Dty, string(event.PersonalTrigger))
		r.Stc = or(r.Stc, string(event.ManualAlarm))
	case alarm.KindFall:
		r.Dty, r.Stc = or(r.Dty, string(event.FallDetector)), or(r.Stc, string(event.AutomaticAlarm))
	case alarm.KindWander:
		if a.Location == event.LocGeofence {
			r.Dty = or(r.Dty, string(event.Tracker))
		}
		r.Dty = or(r.Dty, string(event.DoorSensor))
	case alarm.KindHazard:
		// Vaka's own V001–V003 are not the standard's: a fixed trigger with
		// an automatic alarm until the standard's code is verified.
		r.Dty, r.Stc = string(event.FixedTrigger), or(r.Stc, string(event.AutomaticAlarm))
	}
	r.Dty = or(r.Dty, string(event.CommLink))
	if a.Kind == alarm.KindTechnical && r.Stc == "" {
		r.Stc = string(event.IPConnectionFailed)
	}
	// Vaka's priority 1 is the most urgent; SCAIP's 9 is.
	switch a.Priority {
	case 1:
		r.Pri = 9
	case 2:
		r.Pri = 6
	case 3:
		r.Pri = 3
	}
	if d := a.Device; d != "" && len(d) <= 16 && printableASCII(d) && valid(scaip.Request{Did: d}) {
		r.Did = d
	}
	r.Lco = code(string(a.Location), 3)
	if valid(scaip.Request{Crd: a.CallerID()}) {
		r.Crd = a.CallerID()
	}
	// The first position of the alarm (the oldest of its track) keeps the
	// ME the same on every resend; IN carries the latest.
	p := a.Position()
	if mty == scaip.Message && len(a.Track()) > 0 {
		p = &a.Track()[0]
	}
	if p != nil && !p.Invalid && p.Lat >= -90 && p.Lat <= 90 && p.Lon >= -180 && p.Lon <= 180 {
		r.Lge = &scaip.Position{Geo: strconv.FormatFloat(p.Lat, 'f', 6, 64) + "," + strconv.FormatFloat(p.Lon, 'f', 6, 64)}
		if p.LastKnown != nil {
			r.Lge.Tim = p.LastKnown.Format(time.RFC3339)
		}
	}
	return r
}

// valid reports whether the optional tags set in probe pass the strict
// parser (the receiver's own rules are the sender's): a value that would
// not is left out rather than have the centre refuse the whole alarm.
func valid(probe scaip.Request) bool {
	probe.Ref, probe.Cid, probe.Dty = "P", "1", "0003"
	_, err := scaip.Parse(probe.Marshal())
	return err == nil
}

func code(v string, width int) string {
	if v == "" || len(v) > width || strings.Trim(v, "0123456789") != "" {
		return ""
	}
	return strings.Repeat("0", width-len(v)) + v
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// handover is one alarm offered to one centre (loop goroutine only).
type handover struct {
	key, alarm string
	tr         *Track
	tier       int
	r          *Receiver
	ref        string
	me         []byte // the ME, the same bytes on every resend
	snap       *alarm.Alarm
	deadline   time.Time
	next       time.Time // when to send again
	inflight   bool
	held       bool // the centre answered snu 4 (journaled once)
	done       bool // the centre answered snu 0: it has the alarm
	untrusted  bool // TLS to the centre refused: no RE either
}

type handResult struct {
	h    *handover
	mty  scaip.MessageType
	resp *scaip.Response
	err  error
}

// CentreAlarms is what the recorder (the hub) offers for a centre's line
// supervision: raise or restore alarm_centre_unreachable.
type CentreAlarms interface {
	CentreUnreachable(receiver string, down bool, note string)
}

func (d *Dispatcher) startHandover(a *alarm.Alarm, tr *Track, tier int, r *Receiver, since, now time.Time) *handover {
	key := a.ID + "/" + r.Name
	if old := d.hand[key]; old != nil {
		return old
	}
	snap := a
	if tr.snap.taken() {
		snap = tr.snap.alarm(tr.Alarm)
	}
	ref := HandoverRef(a.ID, tier, r.Name)
	req := Request(snap, r.SCAIP, ref, scaip.Message)
	h := &handover{key: key, alarm: a.ID, tr: tr, tier: tier, r: r, ref: ref, me: req.Marshal(), snap: snap,
		deadline: since.Add(r.SCAIP.deadline()), next: now}
	d.hand[key] = h
	d.mu.Lock()
	d.handLive[a.ID]++
	d.mu.Unlock()
	return h
}

func (d *Dispatcher) endHandover(h *handover) {
	delete(d.hand, h.key)
	d.mu.Lock()
	if d.handLive[h.alarm]--; d.handLive[h.alarm] <= 0 {
		delete(d.handLive, h.alarm)
	}
	d.mu.Unlock()
}

// runHandovers takes the centres' answers, sends what is due, gives up
// on what passed its deadline, and returns when to look again.
func (d *Dispatcher) runHandovers(now time.Time) time.Time {
	d.mu.Lock()
	res := d.results
	d.results = nil
	d.mu.Unlock()
	for _, x := range res {
		d.handAnswer(x, now)
	}
	var wake time.Time
	for _, h := range d.hand {
		if !d.active(h.tr) {
			d.endHandover(h) // the escalation stopped (its step could not be recorded)
			continue
		}
		if h.done || h.inflight {
			continue
		}
		if !now.Before(h.deadline) {
			d.abortHandover(h, "no snu 0 within "+h.r.SCAIP.deadline().String(), now)
			continue
		}
		if !now.Before(h.next) {
			h.inflight = true
			h.next = now.Add(h.r.SCAIP.resend())
			d.exchange(h, scaip.Message, h.me)
			continue
		}
		w := h.next
		if h.deadline.Before(w) {
			w = h.deadline
		}
		if wake.IsZero() || w.Before(wake) {
			wake = w
		}
	}
	return wake
}

// exchange sends body to h's centre off the loop; the answer comes back
// through d.results. ME answers drive the hand-over; IN and RE are sent
// once, their answers logged.
func (d *Dispatcher) exchange(h *handover, mty scaip.MessageType, body []byte) {
	c := h.r.SCAIP
	d.sends.Add(1)
	d.SCAIPSent.Add(1)
	go func() {
		defer d.sends.Done()
		ctx, cancel := context.WithTimeout(d.ctx, c.timeout())
		resp, err := d.scaipX.Exchange(ctx, c, body)
		cancel()
		if err != nil || resp.SNU != scaip.OK {
			d.SCAIPFailed.Add(1)
		}
		d.mu.Lock()
		d.results = append(d.results, handResult{h: h, mty: mty, resp: resp, err: err})
		d.mu.Unlock()
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}()
}

func (d *Dispatcher) handAnswer(x handResult, now time.Time) {
	h := x.h
	if x.mty != scaip.Message {
		if x.err != nil || x.resp.SNU != scaip.OK {
			d.log.Warn("notify: alarm centre did not take an update", "alarm", h.alarm, "receiver", h.r.Name, "mty", x.mty, "err", x.err, "snu", snuOf(x.resp))
		}
		return
	}
	if d.hand[h.key] != h {
		return // stopped or given up meanwhile
	}
	h.inflight = false
	snu := snuOf(x.resp)
	switch {
	case x.err == nil && x.resp.SNU == scaip.OK:
		h.done = true
		d.record(alarm.Transition{Alarm: h.alarm, Action: alarm.ActDelivered, At: now, By: "scaip:" + h.r.Name,
			Phone: "scaip:" + h.r.Name, Channel: alarm.ChannelSCAIP, Tier: h.tier, Receiver: h.r.Name, Note: "snu 0"})
		h.tr.Receipt("scaip:" + h.r.Name)
		d.schedule(h.tr, now)
		d.log.Info("notify: alarm centre has the alarm", "alarm", h.alarm, "receiver", h.r.Name, "ref", h.ref)
		d.centreAnswers(h.r.Name)
	case x.err != nil && IsTLSRefused(x.err):
		// The centre's certificate does not verify (or it refused ours):
		// no resend mends that, and nothing, not even RE, goes over a line
		// Vaka does not trust. The next tier now, with the reason.
		d.SCAIPTLSRefused.Add(1)
		h.untrusted = true
		d.abortHandover(h, "TLS refused ("+tlsReason(x.err)+")", now)
		d.centreUnreachable(h.r.Name, centreTLSNote(h.r.Name, x.err))
	case x.err == nil && x.resp.SNU != scaip.Hold && x.resp.SNU != scaip.Busy:
		// snu 5 (not treated: the next action) or a refusal of the request
		// itself, which the same request will not mend.
		d.abortHandover(h, "snu "+snu, now)
	default:
		if x.err == nil && x.resp.SNU == scaip.Hold && !h.held {
			h.held = true
			d.record(alarm.Transition{Alarm: h.alarm, Action: alarm.ActHandover, At: now, By: "notify", Tier: h.tier,
				Receiver: h.r.Name, Channel: alarm.ChannelSCAIP, To: []string{"scaip:" + h.r.Name}, Note: "snu 4"})
		}
		if x.err != nil {
			d.log.Warn("notify: alarm centre did not answer; sending again", "alarm", h.alarm, "receiver", h.r.Name, "err", x.err)
		}
		if !now.Before(h.deadline) {
			d.abortHandover(h, "no snu 0 within "+h.r.SCAIP.deadline().String(), now)
		}
	}
}

func snuOf(r *scaip.Response) string {
	if r == nil {
		return ""
	}
	return strconv.Itoa(int(r.SNU))
}

// abortHandover sends RE with the hand-over's ref, records it and moves
// the track to the next tier.
func (d *Dispatcher) abortHandover(h *handover, reason string, now time.Time) {
	d.SCAIPAborted.Add(1)
	note := "RE: " + reason
	if h.untrusted {
		note = "RE not sent: " + reason
	} else {
		re := Request(h.snap, h.r.SCAIP, h.ref, scaip.Reset)
		d.exchange(h, scaip.Reset, re.Marshal())
	}
	d.endHandover(h)
	d.record(alarm.Transition{Alarm: h.alarm, Action: alarm.ActHandover, At: now, By: "notify", Tier: h.tier,
		Receiver: h.r.Name, Channel: alarm.ChannelSCAIP, To: []string{"scaip:" + h.r.Name}, Note: note})
	d.log.Error("notify: alarm centre did not take the alarm; next tier", "alarm", h.alarm, "receiver", h.r.Name, "reason", reason, "re_sent", !h.untrusted)
	h.tr.Force = "alarm centre " + h.r.Name + ": " + reason
	d.schedule(h.tr, now)
}

// updateHandovers sends a repeat or restore of a handed-over alarm as IN.
// Before the centre answered at all the ME is still being resent as it
// was (the standard's "same request"); the IN follows once it answers.
func (d *Dispatcher) updateHandovers(a *alarm.Alarm, t alarm.Transition, now time.Time) {
	for _, h := range d.hand {
		if h.alarm != a.ID || !(h.done || h.held) {
			continue
		}
		snap := *a
		if t.Pos != nil {
			snap.SetPosition(t.Pos)
		}
		in := Request(&snap, h.r.SCAIP, h.ref, scaip.Info)
		d.exchange(h, scaip.Info, in.Marshal())
		d.record(alarm.Transition{Alarm: h.alarm, Action: alarm.ActHandover, At: now, By: "notify", Tier: h.tier,
			Receiver: h.r.Name, Channel: alarm.ChannelSCAIP, To: []string{"scaip:" + h.r.Name}, Note: "IN: " + string(t.Action)})
	}
}

// stopHandovers ends an alarm's hand-overs when staff accept or resolve
// it: a centre still holding it is told RE.
func (d *Dispatcher) stopHandovers(id string, t alarm.Transition, now time.Time) {
	for _, h := range d.hand {
		if h.alarm != id {
			continue
		}
		d.endHandover(h)
		if h.done {
			continue // the centre has it: staff and centre both know
		}
		re := Request(h.snap, h.r.SCAIP, h.ref, scaip.Reset)
		d.exchange(h, scaip.Reset, re.Marshal())
		d.record(alarm.Transition{Alarm: h.alarm, Action: alarm.ActHandover, At: now, By: "notify", Tier: h.tier,
			Receiver: h.r.Name, Channel: alarm.ChannelSCAIP, To: []string{"scaip:" + h.r.Name}, Note: "RE: " + string(t.Action) + " by staff"})
	}
}

func (d *Dispatcher) record(t alarm.Transition) {
	if d.rec == nil {
		return
	}
	if err := d.rec.Record(t); err != nil {
		d.log.Info("notify: hand-over step not recorded", "alarm", t.Alarm, "note", t.Note, "err", err)
	}
}

// resumeHandover rebuilds, after a restart, the hand-over of an alarm
// whose current tier is a centre, from the steps on it: given up (RE) →
// the next tier now; delivered (snu 0) → kept for IN; else resent at
// once with the deadline counted from when the tier was alerted.
func (d *Dispatcher) resumeHandover(a *alarm.Alarm, tr *Track, r *Receiver, now time.Time) {
	var held, done bool
	for _, h := range a.History() {
		if h.Tier != tr.Tier || h.At.Before(tr.Since) {
			continue
		}
		switch {
		case h.Action == alarm.ActDelivered && h.By == "scaip:"+r.Name:
			done = true
		case h.Action == alarm.ActHandover && h.Receiver == r.Name && strings.HasPrefix(h.Note, "RE"):
			tr.Force = "alarm centre " + r.Name + ": " + strings.TrimPrefix(strings.TrimPrefix(h.Note, "RE not sent: "), "RE: ")
			return
		case h.Action == alarm.ActHandover && h.Receiver == r.Name && h.Note == "snu 4":
			held = true
		}
	}
	h := d.startHandover(a, tr, tr.Tier, r, tr.Since, now)
	h.held, h.done = held, done
	if done {
		tr.Receipt("scaip:" + r.Name)
	}
}

// heartbeats are the running PI loops, by heartbeatKey.
type heartbeats struct {
	mu      sync.Mutex
	started bool
	running map[string]context.CancelFunc
}

// startHeartbeats runs a PI loop for every centre with a heartbeat.
func (d *Dispatcher) startHeartbeats() {
	d.hbs.mu.Lock()
	d.hbs.started = true
	d.hbs.mu.Unlock()
	d.syncHeartbeats(d.Tree())
}

// heartbeatKey is what makes a heartbeat loop the same after a reload:
// the receiver and everything about its line and interval.
func heartbeatKey(r *Receiver) string {
	c := r.SCAIP
	return fmt.Sprintf("%s\x00%s\x00%v\x00%s\x00%v\x00%v", r.Name, senderKey(c), c.Heartbeat, c.CID, c.IgnoreHbi, c.timeout())
}

// syncHeartbeats makes the running PI loops those of tree t (after
// Start): a reload that removes a centre, or changes its line or
// interval, stops its loop, and one that adds or changes it starts one.
// A loop for an unchanged centre runs on with its own interval and count
// of missed heartbeats.
func (d *Dispatcher) syncHeartbeats(t *Tree) {
	d.hbs.mu.Lock()
	defer d.hbs.mu.Unlock()
	if !d.hbs.started || d.ctx.Err() != nil {
		return
	}
	want := map[string]*Receiver{}
	if t != nil {
		for _, r := range t.Receivers() {
			if r.SCAIP != nil && r.SCAIP.Heartbeat > 0 {
				want[heartbeatKey(r)] = r
			}
		}
	}
	if d.hbs.running == nil {
		d.hbs.running = map[string]context.CancelFunc{}
	}
	for k, stop := range d.hbs.running {
		if want[k] == nil {
			stop()
			delete(d.hbs.running, k)
		}
	}
	for k, r := range want {
		if _, ok := d.hbs.running[k]; ok {
			continue
		}
		ctx, stop := context.WithCancel(d.ctx)
		d.hbs.running[k] = stop
		d.sends.Add(1)
		go d.heartbeat(ctx, r)
	}
}

// heartbeat sends PI every Heartbeat. SCAIPMissedHeartbeats unanswered in
// a row (no <mrs>, or not snu 0) raise alarm_centre_unreachable: at most
// 2 × heartbeat + timeout after the centre's last answer. A TLS refusal
// (the centre's certificate does not verify, or it refuses Vaka's) raises
// it at once: waiting for a second refusal tells nobody anything new. The
// next answer restores it.
//
// The centre may ask for another interval (hbi in its answer, SS 91100's
// 1–1440 minutes; the PI offers it with hbo 1): the next PI then comes
// that long after this one, and so on until it asks again. Outside the
// bounds, or with ignore_hbi, the configured interval stays.
func (d *Dispatcher) heartbeat(ctx context.Context, r *Receiver) {
	defer d.sends.Done()
	c := r.SCAIP
	interval := c.Heartbeat
	tick := time.NewTicker(interval)
	defer tick.Stop()
	hbo := "1"
	if c.IgnoreHbi {
		hbo = "0"
	}
	misses := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pi := scaip.Request{Ref: "P" + randomRef(), Mty: scaip.Heartbeat, Hbo: hbo, Cid: c.CID, Dty: string(event.CommLink)}
		xctx, cancel := context.WithTimeout(ctx, c.timeout())
		resp, err := d.scaipX.Exchange(xctx, c, pi.Marshal())
		cancel()
		if ctx.Err() != nil {
			return // closed, or a reload stopped this centre's loop
		}
		if err == nil && resp.SNU == scaip.OK {
			misses = 0
			if iv := centreInterval(c, resp); iv != 0 && iv != interval {
				d.log.Info("notify: alarm centre asks for another heartbeat interval", "receiver", r.Name, "from", interval, "to", iv)
				interval = iv
				tick.Reset(interval)
			}
			d.centreAnswers(r.Name)
			continue
		}
		d.SCAIPFailed.Add(1)
		misses++
		d.log.Warn("notify: alarm centre did not answer a heartbeat", "receiver", r.Name, "missed", misses, "err", err, "snu", snuOf(resp))
		switch {
		case err != nil && IsTLSRefused(err):
			// No later heartbeat can mend a certificate: say so now, not
			// two intervals from now.
			d.centreUnreachable(r.Name, centreTLSNote(r.Name, err))
		case misses >= SCAIPMissedHeartbeats:
			d.centreUnreachable(r.Name, fmt.Sprintf("larmcentralen svarar inte / the alarm centre does not answer: %s, %d heartbeats missed", r.Name, misses))
		}
	}
}

// centreRetainer is an exchanger that keeps per-centre state (SIPSender):
// told the centres of a reloaded tree, it lets go of the others.
type centreRetainer interface{ Retain(centres []*SCAIP) }

// retainCentres tells the exchanger which centres the tree t has.
func (d *Dispatcher) retainCentres(t *Tree) {
	r, ok := d.scaipX.(centreRetainer)
	if !ok || t == nil {
		return
	}
	var cs []*SCAIP
	for _, rc := range t.Receivers() {
		if rc.SCAIP != nil {
			cs = append(cs, rc.SCAIP)
		}
	}
	r.Retain(cs)
}

// centreStates is which centres' alarm_centre_unreachable is raised, so
// the heartbeat loop and the hand-overs raise and restore it once per
// change, whichever of them saw it first.
type centreStates struct {
	mu   sync.Mutex
	down map[string]bool
}

// set records a centre's state and reports whether it changed.
func (c *centreStates) set(name string, down bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down[name] == down {
		return false
	}
	if c.down == nil {
		c.down = map[string]bool{}
	}
	c.down[name] = down
	return true
}

// centreUnreachable raises the centre's technical alarm (once until it
// answers again).
func (d *Dispatcher) centreUnreachable(name, note string) {
	if !d.centres.set(name, true) {
		return
	}
	d.log.Error("notify: alarm centre unreachable", "receiver", name, "note", note)
	if ca, ok := d.rec.(CentreAlarms); ok {
		ca.CentreUnreachable(name, true, note)
	}
}

// centreAnswers restores the centre's technical alarm if it was raised.
func (d *Dispatcher) centreAnswers(name string) {
	if !d.centres.set(name, false) {
		return
	}
	d.log.Info("notify: alarm centre answers again", "receiver", name)
	if ca, ok := d.rec.(CentreAlarms); ok {
		ca.CentreUnreachable(name, false, "larmcentralen svarar igen / the alarm centre answers again: "+name)
	}
}

// centreTLSNote is the technical alarm's note for a TLS refusal.
func centreTLSNote(name string, err error) string {
	return "larmcentralen nekas av TLS / TLS to the alarm centre refused: " + name + ", " + tlsReason(err)
}

// centreInterval is the heartbeat interval a centre's answer asks for,
// when Vaka honours it: hbi within SS 91100's 1–1440 minutes, and not
// ignore_hbi. 0: keep the current one.
func centreInterval(c *SCAIP, resp *scaip.Response) time.Duration {
	if c.IgnoreHbi || resp.Hbi < 1 || resp.Hbi > 1440 {
		return 0
	}
	return time.Duration(resp.Hbi) * time.Minute
}

func randomRef() string {
	var b [7]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
