package service

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/notify"
	"github.com/vaka-care/vaka/roster"
	"github.com/vaka-care/vaka/webpush"
)

// PushSubject is the default VAPID contact the push services see; set
// http.push_contact to the operator's own (mailto: or https:).
const PushSubject = "https://github.com/vaka-care/vaka"

// WithLoopbackPush lets phones subscribe with plain-http push endpoints on
// loopback addresses: for tests with a local push service only.
func WithLoopbackPush() Option {
	return func(op *options) { op.loopbackPush = true }
}

// pushParts are the notifier's parts: the route tree's dispatcher and Web Push.
type pushParts struct {
	tree     *notify.Tree
	disp     *notify.Dispatcher
	vapid    *webpush.VAPID
	store    *webpush.Store
	sender   *webpush.Sender
	roster   *roster.Roster
	loopback bool
}

func newPushParts(cfg *hub.Config, op *options) (*pushParts, error) {
	tree, err := cfg.RouteTree()
	if err != nil {
		return nil, err
	}
	p := &pushParts{loopback: op.loopbackPush}
	// Receivers with roster: on_duty resolve through the shift roster.
	if p.roster, err = cfg.OpenRoster(); err != nil {
		return nil, err
	}
	p.tree = tree.WithRoster(p.roster)
	if cfg.DataDir != "" {
		if p.vapid, err = webpush.LoadOrCreateVAPID(filepath.Join(cfg.DataDir, "vapid.pem")); err != nil {
			return nil, err
		}
		if p.store, err = webpush.OpenStore(filepath.Join(cfg.DataDir, "push-subscriptions.json")); err != nil {
			return nil, err
		}
	} else {
		if p.vapid, err = webpush.NewVAPID(); err != nil {
			return nil, err
		}
		p.store, _ = webpush.OpenStore("")
	}
	subject := PushSubject
	if cfg.HTTP.PushContact != "" {
		subject = cfg.HTTP.PushContact
	}
	p.sender = &webpush.Sender{VAPID: p.vapid, Subject: subject, Store: p.store,
		Client: &http.Client{Timeout: 10 * time.Second}}
	return p, nil
}

// routes are the push and routing endpoints behind login.
func (p *pushParts) routes(h *hub.Hub) []httpapi.Route {
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: "/api/v1/push/key", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"key": p.vapid.PublicKey()})
		})},
		{Method: http.MethodPost, Pattern: "/api/v1/push/subscriptions", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<10))
			sb, err := webpush.ParseSubscription(body, p.loopback)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			u, _ := httpapi.UserFromRequest(r)
			sub, err := p.store.Add(u.Username, sb, time.Now())
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "could not store the subscription"})
				return
			}
			writeJSON(w, http.StatusCreated, map[string]string{"id": sub.ID})
		})},
		// The staff app's receipt: the alarm card it got over the live
		// stream is on a logged-in phone's screen (for phones without
		// push). Behind login and the CSRF check; only users the alarm was
		// alerted to, and roles that answer alarms (httpapi's policy table).
		{Method: http.MethodPost, Pattern: "/api/v1/alarms/{id}/shown",
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { appReceipt(h, w, r) })},
		// Admin only: who an alarm with these labels reaches now (or at
		// ?at=RFC3339), tier by tier, as `vaka routes test` prints it.
		{Method: http.MethodGet, Pattern: "/api/v1/admin/routing", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			at := time.Now()
			if s := q.Get("at"); s != "" {
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					writeJSON(w, http.StatusBadRequest, map[string]string{"error": "at must be an RFC 3339 time"})
					return
				}
				at = t
			}
			labels := map[string]string{}
			for _, l := range notify.Labels {
				labels[l] = q.Get(l)
			}
			type plan struct {
				Route    string            `json:"route"`
				Schedule []notify.Schedule `json:"schedule"`
				notify.Plan
			}
			var out []plan
			for _, pl := range p.disp.Tree().Match(labels, at) {
				out = append(out, plan{Route: pl.Route, Schedule: pl.Schedule(), Plan: pl})
			}
			writeJSON(w, http.StatusOK, map[string]any{"labels": labels, "at": at, "plans": out})
		})},
	}
}

// public is the service worker's delivery receipt, authenticated by the
// subscription's token that only the phone could decrypt from the push.
func (p *pushParts) public(h *hub.Hub) []httpapi.Route {
	return []httpapi.Route{{Method: http.MethodPost, Pattern: "/api/v1/alarms/{id}/delivered", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<10))
		rc, err := webpush.ParseReceipt(body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		sub, ok := p.store.ByToken(rc.Receipt)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unknown receipt token"})
			return
		}
		a, ok := h.Alarm(chi.URLParam(r, "id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such alarm"})
			return
		}
		recordReceipt(h, w, a, alarm.Transition{By: sub.User, Phone: sub.ID, Tier: rc.Tier, Note: rc.Step, Channel: alarm.ChannelPush})
	})}}
}

// recordReceipt journals a phone's receipt of alarm a (a delivered
// transition: t's phone, tier, user and channel) once per phone and tier,
// and answers: recorded, already recorded, 409 for a resolved alarm, 400
// for anything else the hub refuses. Push and app receipts share it, so
// both count the same way in the pilot's time-to-phone.
func recordReceipt(h *hub.Hub, w http.ResponseWriter, a *alarm.Alarm, t alarm.Transition) {
	if slices.ContainsFunc(a.Deliveries, func(d alarm.Delivery) bool { return d.Phone == t.Phone && d.Tier == t.Tier }) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "already recorded"})
		return
	}
	t.Alarm, t.Action = a.ID, alarm.ActDelivered
	switch err := h.Record(t); {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"status": "recorded"})
	case errors.Is(err, alarm.ErrResolved):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}

// appReceipt records that the staff app showed an alarm's card: a
// delivered transition with channel app, for the tier of the latest alert
// that named the user, once per app session and tier. The phone id is a
// hash of the session, so a user's two phones are two receipts and the
// session token itself is never stored.
func appReceipt(h *hub.Hub, w http.ResponseWriter, r *http.Request) {
	a, ok := h.Alarm(chi.URLParam(r, "id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such alarm"})
		return
	}
	if httpapi.TechnicalOnly(r) && a.Kind != alarm.KindTechnical {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "your role handles technical alarms only"})
		return
	}
	u, _ := httpapi.UserFromRequest(r)
	c, err := r.Cookie(httpapi.CookieName)
	if u == nil || err != nil || c.Value == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a logged-in app session is needed"})
		return
	}
	if !a.Open() {
		writeJSON(w, http.StatusConflict, map[string]string{"error": alarm.ErrResolved.Error()})
		return
	}
	tier, alerted := -1, false
	for _, t := range a.History() {
		switch t.Action {
		case alarm.ActNotify, alarm.ActEscalate, alarm.ActReminder:
			if slices.Contains(t.To, u.Username) {
				tier, alerted = t.Tier, true
			}
		}
	}
	if !alerted {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "this alarm was not sent to you: no receipt"})
		return
	}
	sum := sha256.Sum256([]byte(c.Value))
	recordReceipt(h, w, a, alarm.Transition{By: u.Username, Phone: "app:" + hex.EncodeToString(sum[:6]), Tier: tier,
		Note: "app", Channel: alarm.ChannelApp})
}

func openAlarms(h *hub.Hub) []*alarm.Alarm {
	var out []*alarm.Alarm
	for _, a := range h.Alarms() {
		if !a.Open() {
			continue
		}
		if a.HistoryOmitted() > 0 {
			// The list carries the last steps; resuming escalation needs
			// every notify, escalate and receipt step (from the journal).
			if whole, ok := h.Alarm(a.ID); ok {
				a = whole
			}
		}
		out = append(out, a)
	}
	return out
}
