package hub

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/vaka-care/vaka/config"
)

// MetricsConfig says where /metrics is served and who may read it
// (docs/config.md, docs/operations.md). Empty: on http.address, open, as
// the demo needs. A production hub sets a token, its own listen address
// (e.g. on the monitoring network or loopback), or both.
type MetricsConfig struct {
	// Listen serves /metrics on its own address and removes it from
	// http.address, e.g. 127.0.0.1:9464.
	Listen string `yaml:"listen"`
	// TokenFile holds a bearer token: then /metrics answers only requests
	// with "Authorization: Bearer <token>" (Prometheus: authorization:
	// {credentials_file: …}). Read at start.
	TokenFile string `yaml:"token_file"`
}

// Token reads the bearer token, or "" when none is set.
func (m MetricsConfig) Token() (string, error) {
	if m.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(m.TokenFile)
	if err != nil {
		return "", fmt.Errorf("metrics.token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", fmt.Errorf("metrics.token_file: %s holds %d characters; use at least 16 (e.g. openssl rand -hex 24)", m.TokenFile, len(tok))
	}
	return tok, nil
}

func (m MetricsConfig) validate() []error {
	var errs []error
	if m.Listen != "" {
		if _, _, err := net.SplitHostPort(m.Listen); err != nil {
			errs = append(errs, config.Errorf("metrics.listen", "not host:port: %v", err))
		}
	}
	if m.TokenFile != "" {
		if _, err := m.Token(); err != nil {
			errs = append(errs, config.Errorf("metrics.token_file", "%v", err))
		}
	}
	return errs
}
