package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/vaka-care/vaka/trackers"
)

// trackerParams are query parameters only a tracker sends. A Traccar-style
// device is often set up with the server's address and no path, so it
// reports to "/" (Traccar's own port 5055 takes the protocol on every
// path, and Traccar Client adds a "/" to a bare server URL).
var trackerParams = []string{"id", "deviceid", "lat", "lon", "location", "alarm", "timestamp"}

// looksLikeTracker reports whether a request to "/" is a tracker report:
// any POST (the staff app never posts to "/") or a query with a tracker's
// parameters. The staff app itself is requested without a query.
func looksLikeTracker(r *http.Request) bool {
	if r.Method == http.MethodPost || trackers.IsJSON(r) {
		return true
	}
	q := r.URL.Query()
	for _, p := range trackerParams {
		if q.Has(p) {
			return true
		}
	}
	return false
}

// trackerAtRoot sends a tracker's request to "/" to the OsmAnd handler, so
// it is evaluated (an SOS raises) or refused with a 4xx. Answering it with
// the staff app's page would be a 200: the tracker would believe its SOS
// was delivered when nothing was raised.
func trackerAtRoot(next, osm http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && looksLikeTracker(r) {
			osm.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// startOsmAndListener serves the OsmAnd protocol alone, on every path, at
// addr (trackers.osmand_listen, e.g. ":5055", Traccar's port): a tracker
// set to Traccar's defaults then reaches Vaka unchanged. It returns the
// bound address and a function that stops the server.
func startOsmAndListener(addr string, osm http.Handler, log *slog.Logger) (string, func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("service: listen osmand: %w", err)
	}
	srv := &http.Server{Handler: osm, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("service: osmand listener stopped", "err", err)
		}
	}()
	stop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	}
	return ln.Addr().String(), stop, nil
}

// OsmAndAddr is the bound address of trackers.osmand_listen; empty when it
// is off.
func (s *Hub) OsmAndAddr() string { return s.osmAddr }
