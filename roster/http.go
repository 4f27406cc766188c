package roster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/vaka-care/vaka/httpapi"
)

// MaxAPIShifts bounds the shifts one PUT may set.
const MaxAPIShifts = 5000

// Routes are the roster's API, for leads and admins (httpapi/policy.go):
// GET /api/v1/roster lists the file's and the API's shifts; PUT replaces
// the API's shifts (the file's stay: edit the file for those). known
// reports whether a username is a staff account.
func Routes(r *Roster, known func(string) bool, log *slog.Logger) []httpapi.Route {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	get := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		file, api := r.Shifts()
		writeJSON(w, http.StatusOK, map[string]any{"file": nonNil(file), "api": nonNil(api)})
	})
	put := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Shifts []Shift `json:"shifts"`
		}
		dec := json.NewDecoder(io.LimitReader(req.Body, 4<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: want {\"shifts\": [...]}"})
			return
		}
		if len(body.Shifts) > MaxAPIShifts {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("more than %d shifts", MaxAPIShifts)})
			return
		}
		for i, s := range body.Shifts {
			if f, msg := s.Check(); f != "" {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("shifts[%d].%s: %s", i, f, msg)})
				return
			}
			if known != nil && !known(s.User) {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("shifts[%d].user: no such account", i)})
				return
			}
		}
		if err := r.SetAPI(body.Shifts); errors.Is(err, ErrNotReplicated) {
			// Saved here, and used here; the lead is told the group
			// does not have it yet, and may simply send it again.
			log.Error("roster: shifts saved but not replicated to the group; a failover would route with the old ones", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "roster saved on this hub but not shared with the other hubs; send it again"})
			return
		} else if err != nil {
			log.Error("roster: not saved", "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "roster not saved"})
			return
		}
		by := ""
		if u, ok := httpapi.UserFromRequest(req); ok {
			by = u.Username
		}
		log.Info("roster: shifts replaced", "user", by, "shifts", len(body.Shifts))
		file, api := r.Shifts()
		writeJSON(w, http.StatusOK, map[string]any{"file": nonNil(file), "api": nonNil(api)})
	})
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: "/api/v1/roster", Handler: get},
		{Method: http.MethodPut, Pattern: "/api/v1/roster", Handler: put},
	}
}

func nonNil(s []Shift) []Shift {
	if s == nil {
		return []Shift{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
