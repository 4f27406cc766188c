package service

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
)

// tillsynView is the round view as the staff app gets it: the hub's round
// with residents' names for the roles in http.show_names_to.
type tillsynView struct {
	hub.Round
	Names map[string]string `json:"names,omitempty"` // "site/resident" → name
}

// visitRequest is the body of POST /api/v1/tillsyn/visits.
type visitRequest struct {
	Site     string    `json:"site"`
	Resident string    `json:"resident"`
	At       time.Time `json:"at"` // when the visit was made; default now
	Note     string    `json:"note"`
}

// parseVisit reads a visit request strictly: one JSON object, no unknown
// fields, site and resident present.
func parseVisit(r io.Reader) (visitRequest, error) {
	var req visitRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Site == "" || req.Resident == "" || dec.More() {
		return visitRequest{}, errors.New("want JSON {site, resident, at?, note?}")
	}
	return req, nil
}

// tillsynRoutes are the night round view's endpoints (docs/tillsyn.md):
// tonight's look-ins, and recording a physical visit.
func tillsynRoutes(h *hub.Hub) []httpapi.Route {
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: "/api/v1/tillsyn", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := tillsynView{Round: h.TillsynRound(h.Now())}
			cfg := h.Config()
			if u, ok := httpapi.UserFromRequest(r); ok && slices.Contains(cfg.HTTP.ShowNamesTo, u.Role) {
				all := cfg.ResidentNames()
				v.Names = map[string]string{}
				for _, e := range v.Entries {
					if n := all[e.Site+"/"+e.Resident]; n != "" {
						v.Names[e.Site+"/"+e.Resident] = n
					}
				}
			}
			writeJSON(w, http.StatusOK, v)
		})},
		{Method: http.MethodPost, Pattern: "/api/v1/tillsyn/visits", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, ok := httpapi.UserFromRequest(r)
			if !ok {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "login required"})
				return
			}
			req, err := parseVisit(http.MaxBytesReader(w, r.Body, 8<<10))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			now := h.Now()
			if req.At.IsZero() {
				req.At = now
			}
			if req.At.After(now.Add(time.Minute)) || now.Sub(req.At) > 24*time.Hour {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "at must be within the last 24 hours, not in the future"})
				return
			}
			v, err := h.RecordVisit(req.Site, req.Resident, u.Username, req.At, req.Note)
			switch {
			case errors.Is(err, hub.ErrNoPlan):
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			case err != nil:
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			default:
				writeJSON(w, http.StatusCreated, v)
			}
		})},
	}
}
