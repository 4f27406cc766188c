package service

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaka-care/vaka/broker"
	"github.com/vaka-care/vaka/extbroker"
	"github.com/vaka-care/vaka/hub"
)

// mqttFront is where gateway traffic enters the hub: the embedded broker
// or the session on an external one.
type mqttFront interface {
	Start() error
	Close() error
	Dropped() int64
}

var (
	_ mqttFront = (*extbroker.Consumer)(nil)
	_ mqttFront = (*broker.Broker)(nil)
)

// newExternal builds the hub's consumer on an external broker
// (mqtt.broker: external). It subscribes to the configured sites only, so
// hubs for different sites can share one broker cluster.
func newExternal(cfg *hub.Config, h *hub.Hub, log *slog.Logger, reg prometheus.Registerer) (*extbroker.Consumer, error) {
	e := cfg.MQTT.External
	pw, err := e.Secret()
	if err != nil {
		return nil, fmt.Errorf("service: mqtt.external.password_file: %w", err)
	}
	var sites []string
	for _, s := range cfg.Sites {
		sites = append(sites, s.ID)
	}
	if cfg.Demo {
		sites = nil // demo: any site
	}
	return extbroker.New(extbroker.Options{URL: e.URL, Username: e.Username, Password: pw, CAFile: e.CAFile,
		ClientID: e.ClientID, Sites: sites, Handler: h, Logger: log, Registry: reg})
}
