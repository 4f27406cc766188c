package service

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/rules"
)

// hubRoutes are the rule-facing endpoints: which rules watch a resident
// now, device health, and silences. Who may use each is decided by
// httpapi's policy table (docs/roles.md); the silence handlers add the one
// rule the table cannot see: a technician silences technical rules only.
func hubRoutes(h *hub.Hub, seen *seenStore) []httpapi.Route {
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: "/api/v1/sites/{site}/residents/{resident}/rules", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			at := time.Now()
			if q := r.URL.Query().Get("at"); q != "" {
				t, err := time.Parse(time.RFC3339, q)
				if err != nil {
					writeJSON(w, http.StatusBadRequest, map[string]string{"error": "at must be an RFC 3339 time"})
					return
				}
				at = t
			}
			x, err := h.Engine().Explain(chi.URLParam(r, "site"), chi.URLParam(r, "resident"), at)
			if errors.Is(err, rules.ErrUnknownResident) {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, x)
		})},
		{Method: http.MethodGet, Pattern: "/api/v1/devices", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, seen.merge(h.Health()))
		})},
		{Method: http.MethodGet, Pattern: "/api/v1/silences", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			list := h.Silences()
			if list == nil {
				list = []hub.Silence{}
			}
			if httpapi.TechnicalOnly(r) {
				list = slices.DeleteFunc(list, func(s hub.Silence) bool { return !TechnicalRules[s.Rule] })
			}
			writeJSON(w, http.StatusOK, map[string]any{"silences": list})
		})},
		{Method: http.MethodPost, Pattern: "/api/v1/silences", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				Site     string    `json:"site"`
				Resident string    `json:"resident"`
				Device   string    `json:"device"`
				Rule     string    `json:"rule"`
				End      time.Time `json:"end"`
				Reason   string    `json:"reason"`
			}
			dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON: site, resident, device, rule, end (RFC 3339), reason"})
				return
			}
			if httpapi.TechnicalOnly(r) && !TechnicalRules[in.Rule] {
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "your role may silence technical rules only (rule: device_silent, battery_low, tamper, gateway_offline, gateway_fault)"})
				return
			}
			u, _ := httpapi.UserFromRequest(r)
			s, err := h.AddSilence(hub.Silence{Site: in.Site, Resident: in.Resident, Device: in.Device, Rule: in.Rule,
				End: in.End, Reason: in.Reason, Author: u.Username})
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusCreated, s)
		})},
		{Method: http.MethodDelete, Pattern: "/api/v1/silences/{id}", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if httpapi.TechnicalOnly(r) {
				id := chi.URLParam(r, "id")
				list := h.Silences()
				if i := slices.IndexFunc(list, func(s hub.Silence) bool { return s.ID == id }); i >= 0 && !TechnicalRules[list[i].Rule] {
					writeJSON(w, http.StatusForbidden, map[string]string{"error": "your role may end silences of technical rules only"})
					return
				}
			}
			u, _ := httpapi.UserFromRequest(r)
			if err := h.EndSilence(chi.URLParam(r, "id"), u.Username); err != nil {
				code := http.StatusInternalServerError
				if errors.Is(err, hub.ErrNotFound) {
					code = http.StatusNotFound
				}
				writeJSON(w, code, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ended"})
		})},
	}
}

// TechnicalRules raise technical alarms about devices and gateways: the
// only rules a technician may silence (while a sensor is replaced). Not
// hub_integrity: the alarm server's own faults are for the admin.
var TechnicalRules = map[string]bool{rules.RuleDeviceSilent: true, rules.RuleBatteryLow: true, rules.RuleTamper: true,
	rules.RuleGatewayOffline: true, rules.RuleGatewayFault: true}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
