// Package devhealth is the technicians' device-health page: every gateway
// and device with last seen, battery, driver state and spool depth, the
// silent, never-paired and low-battery devices first. Swedish first with
// English, usable on a 360 px phone, no inline script or style (the hub's
// CSP is default-src 'self').
//
// The page itself (HTML, script, style) holds no data and is served without
// login, so a technician who is not logged in gets a link to the login
// instead of a bare error; the data comes from GET /api/v1/devices, which
// requires a session and one of the roles given to the API route.
package devhealth

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/vaka-care/vaka/httpapi"
)

//go:embed static
var static embed.FS

// PageRoutes returns the page and its assets, for mounting without login.
func PageRoutes() []httpapi.Route {
	sub, _ := fs.Sub(static, "static")
	serve := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, sub, name)
		})
	}
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: "/devices", Handler: serve("devices.html")},
		{Method: http.MethodGet, Pattern: "/devices/static/devices.js", Handler: serve("devices.js")},
		{Method: http.MethodGet, Pattern: "/devices/static/devices.css", Handler: serve("devices.css")},
	}
}
