package service

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/notify"
)

// groupRoutes serve a group alarm's members: a group alarm lists its first
// 50 on the stream and in the list; this lists all of them (docs/routing.md,
// "Grouping technical alarms"). Members are technical alarms, readable by
// every role that reads alarms.
func groupRoutes(h *hub.Hub) []httpapi.Route {
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: "/api/v1/alarms/{id}/members", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := chi.URLParam(r, "id")
			if a, ok := h.Alarm(id); ok && a.Kind != alarm.KindTechnical && httpapi.TechnicalOnly(r) {
				// As GET /api/v1/alarms/{id}: a technician reads technical alarms only.
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "your role handles technical alarms only"})
				return
			}
			// A page of members: ?offset=N&limit=M (limit 1–5000, default 500).
			offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
			limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
			if err != nil || limit <= 0 {
				limit = 500
			}
			limit = min(limit, 5000)
			ms, ok := h.GroupMembersPage(id, max(offset, 0), limit)
			if !ok {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such group alarm"})
				return
			}
			count := len(ms)
			if g, ok := h.Alarm(id); ok && g.Group() != nil {
				count = g.Group().Count
			}
			writeJSON(w, http.StatusOK, map[string]any{"group": id, "count": count, "offset": max(offset, 0), "members": ms})
		})},
	}
}

// registerLaneMetrics exports the notifier's two lanes and its group
// notifications: a technical backlog shows here, and care alarms do not
// wait behind it (notify.Dispatcher.drain).
func registerLaneMetrics(reg prometheus.Registerer, d *notify.Dispatcher) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vaka_notify_queue_care", Help: "Care alarm transitions waiting for the notifier (handled before any technical one)."},
			func() float64 { c, _ := d.QueueLen(); return float64(c) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vaka_notify_queue_technical", Help: "Technical alarm transitions waiting for the notifier."},
			func() float64 { _, t := d.QueueLen(); return float64(t) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_notify_group_notifications_total", Help: "Notification steps (notify, escalate, reminder) on group alarms: notify and reminder at most once per group per group_interval."},
			func() float64 { return float64(d.GroupNotifications.Load()) }),
	)
}
