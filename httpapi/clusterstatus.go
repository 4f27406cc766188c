package httpapi

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HubURL is one hub's public address for the staff app.
type HubURL struct {
	Node string `json:"node"`
	URL  string `json:"url"`
}

// ClusterInfo tells the staff app which hub of a redundant group it is on
// (Options.Cluster; nil on a single hub, the default, and then nothing of
// this is served).
type ClusterInfo struct {
	// Node is this hub's cluster.node.
	Node string
	// Hubs are every hub's address (cluster.web_urls), in the order the
	// app tries them after its own origin.
	Hubs []HubURL
}

// HubStatus is the answer of GET /api/v1/hub: which hub this is, its role
// (active or standby; single on a hub without a group, where the app shows
// nothing), and, from a standby, which hub is active and where.
type HubStatus struct {
	Node      string   `json:"node,omitempty"`
	Role      string   `json:"role"` // single, active, standby
	Active    string   `json:"active,omitempty"`
	ActiveURL string   `json:"active_url,omitempty"`
	Hubs      []HubURL `json:"hubs"`
}

// Hub roles.
const (
	RoleSingle  = "single"
	RoleActive  = "active"
	RoleStandby = "standby"
)

// StandbyRetryAfter is the Retry-After a standby sends: about the time a
// takeover takes, so a client that waits that long is likely served.
const StandbyRetryAfter = 2 * time.Second

// origins are the hubs' origins other than self, for CORS and the CSP's
// connect-src: the app asks another hub whether it is active before it
// moves there.
func (c *ClusterInfo) origins() []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, h := range c.Hubs {
		if u, err := url.Parse(h.URL); err == nil && u.Host != "" {
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	return out
}

// allowOrigin lets another hub's page read this status (no credentials:
// the status holds no personal data, and cookies do not cross origins).
func (c *ClusterInfo) allowOrigin(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	if o := r.Header.Get("Origin"); o != "" && slices.Contains(c.origins(), o) {
		w.Header().Set("Access-Control-Allow-Origin", o)
	}
}

func (c *ClusterInfo) status(role, active string) HubStatus {
	st := HubStatus{Node: c.Node, Role: role, Active: active, Hubs: c.Hubs}
	if st.Hubs == nil {
		st.Hubs = []HubURL{}
	}
	for _, h := range c.Hubs {
		if active != "" && h.Node == active {
			st.ActiveURL = h.URL
		}
	}
	return st
}

// hubStatus serves GET /api/v1/hub on the active hub, and on a single
// hub says just that.
func (s *server) hubStatus(w http.ResponseWriter, r *http.Request) {
	c := s.o.Cluster
	if c == nil {
		writeJSON(w, http.StatusOK, HubStatus{Role: RoleSingle, Hubs: []HubURL{}})
		return
	}
	c.allowOrigin(w, r)
	writeJSON(w, http.StatusOK, c.status(RoleActive, c.Node))
}

// StandbyHandler is what a standby hub of a redundant group serves on the
// web address while it waits for the lease: every request is answered 503
// with Retry-After, so a load balancer's health check (/healthz) takes it
// out of rotation and the staff app retries; /api/v1/hub and every other
// API path answer JSON naming the active hub and its address (active
// reports it, "" if unknown), other paths a short page in Swedish and
// English linking to it. It serves no data and takes no login: sessions
// are the active hub's.
func StandbyHandler(c *ClusterInfo, active func() string) http.Handler {
	retry := strconv.Itoa(int(StandbyRetryAfter / time.Second))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := c.status(RoleStandby, active())
		hd := w.Header()
		hd.Set("Retry-After", retry)
		hd.Set("Cache-Control", "no-store")
		if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/healthz" {
			c.allowOrigin(w, r)
			writeJSON(w, http.StatusServiceUnavailable, struct {
				Status string `json:"status"`
				HubStatus
			}{"standby", st})
			return
		}
		hd.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		link := ""
		if st.ActiveURL != "" {
			u := html.EscapeString(st.ActiveURL)
			link = fmt.Sprintf(`<p><a href="%s/">Till aktiv hubb / To the active hub: %s</a></p>`, u, html.EscapeString(st.Active))
		}
		fmt.Fprintf(w, `<!doctype html><html lang="sv"><meta charset="utf-8"><title>Vaka – reservhubb</title>
<p>Den här hubben (%s) är reserv och tar inte emot larm just nu. Försök igen om en stund.</p>
<p lang="en">This hub (%s) is a standby and does not serve alarms now. Try again in a moment.</p>%s
`, html.EscapeString(c.Node), html.EscapeString(c.Node), link)
	})
	return securityHeaders(nil)(h)
}
