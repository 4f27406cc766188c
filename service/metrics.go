package service

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vaka-care/vaka/httpapi"
	"github.com/vaka-care/vaka/hub"
)

// metricsEndpoint serves /metrics as metrics: in the config says: on the
// web address (the default, open for the demo) or on its own listener,
// with or without a bearer token.
type metricsEndpoint struct {
	handler http.Handler
	listen  string
	addr    string
	srv     *http.Server
}

func newMetricsEndpoint(c hub.MetricsConfig, reg *prometheus.Registry) (*metricsEndpoint, error) {
	tok, err := c.Token()
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	var h http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if tok != "" {
		h = bearer(tok, h)
	}
	return &metricsEndpoint{handler: h, listen: c.Listen}, nil
}

// routes is the /metrics route for the web address, unless it has its own.
func (m *metricsEndpoint) routes() []httpapi.Route {
	if m.listen != "" {
		return nil
	}
	return []httpapi.Route{{Method: http.MethodGet, Pattern: "/metrics", Handler: m.handler}}
}

// start opens the own listener, if one is set.
func (m *metricsEndpoint) start(log *slog.Logger) error {
	if m.listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.listen)
	if err != nil {
		return fmt.Errorf("service: listen metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.handler)
	m.addr = ln.Addr().String()
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("service: metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listener started", "addr", m.addr)
	return nil
}

func (m *metricsEndpoint) close() error {
	if m.srv == nil {
		return nil
	}
	return m.srv.Close()
}

// bearer answers 401 unless the request carries the token.
func bearer(tok string, next http.Handler) http.Handler {
	want := []byte("Bearer " + tok)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vaka metrics"`)
			http.Error(w, "metrics: bearer token required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
