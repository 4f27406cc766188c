//go:build nocluster

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/vaka-care/vaka/hub"
)

// runClusterHub in a build without cluster support (-tags nocluster: the
// gateway's build for a Raspberry Pi, make build-pi). Why such a build:
// linking NATS JetStream into the one binary costs a gateway about 4 MB of
// resident memory it never uses (docs/benchmarks-gateway.md), against a
// 25 MB budget.
func runClusterHub(context.Context, string, *hub.Config, *slog.Logger) error {
	return errors.New("this vaka was built without hub redundancy (-tags nocluster): " +
		"remove cluster: from the config, or run a build without that tag (docs/scale-out.md)")
}
