package service

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
)

// groupRoutes serve a group alarm's members: a group alarm lists its first
// 50 on the stream and in the list; this lists all of them (docs/routing.md,
// "Grouping technical alarms"). Members are technical alarms, readable by
// every role that reads alarms.
func groupRoutes(h *hub.Hub) []httpapi.Route {
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: "/api/v1/alarms/{id}/members", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ms, ok := h.GroupMembers(chi.URLParam(r, "id"))
			if !ok {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such group alarm"})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"group": chi.URLParam(r, "id"), "count": len(ms), "members": ms})
		})},
	}
}
