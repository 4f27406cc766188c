package service

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/broker"
	"github.com/vaka-care/vaka/devhealth"
	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/trackers"
)

// OsmAndPath is where OsmAnd/Traccar-protocol trackers report (GET or
// POST). Traccar serves this protocol on its own port 5055; Vaka serves it
// on the hub's web server, which should be behind HTTPS (docs/trackers.md).
const OsmAndPath = "/osmand"

// publicRoutes are mounted without login: the OsmAnd endpoint (trackers
// cannot log in; the device id is the secret) and the device-health page
// shell (no data; its API is behind login and roles).
func publicRoutes(osm *trackers.Handler) []httpapi.Route {
	routes := []httpapi.Route{
		{Method: http.MethodGet, Pattern: OsmAndPath, Handler: osm},
		{Method: http.MethodPost, Pattern: OsmAndPath, Handler: osm},
	}
	return append(routes, devhealth.PageRoutes()...)
}

// newOsmAnd is the one OsmAnd handler of a hub, shared by /osmand, the
// root guard and the optional own listener, so the failure budget per
// address is one budget.
func newOsmAnd(h *hub.Hub, reg prometheus.Registerer) *trackers.Handler {
	osm := trackers.NewHandler(h, trackers.HandlerOptions{})
	_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vaka_osmand_rate_limited_total",
		Help: "OsmAnd requests answered 429: the address made too many failed (400/404) requests."},
		func() float64 { return float64(osm.Limited()) }))
	return osm
}

// ownTracksLogins are the broker credentials of OwnTracks clients.
func ownTracksLogins(cfg *hub.Config) []broker.OwnTracksCredential {
	var out []broker.OwnTracksCredential
	for _, l := range cfg.OwnTracksLogins() {
		out = append(out, broker.OwnTracksCredential{Username: l.Username, PasswordHash: l.PasswordHash})
	}
	return out
}
