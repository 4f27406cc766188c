package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/gateway"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/service"
)

func runHub(ctx context.Context, args []string, log *slog.Logger) error {
	path, err := configFlag("hub", args)
	if err != nil {
		return err
	}
	var cfg hub.Config
	if err := config.Load(path, &cfg); err != nil {
		return err
	}
	if cfg.Demo {
		log.Warn("demo mode: anonymous MQTT is allowed; never use demo mode with real residents")
	}
	hub.ApplyRuntime(cfg.Runtime, log) // the GC's settings (hub/config_runtime.go)
	if cfg.Cluster != nil {
		return runClusterHub(ctx, path, &cfg, log) // hub_cluster.go: a redundant group
	}
	pp, popts, err := startPilot(&cfg, log)
	if err != nil {
		return err
	}
	s, err := service.Start(&cfg, log, popts...)
	if err != nil {
		pp.close()
		return err
	}
	pp.attach(s)
	s.WatchConfig(ctx, path, 5*time.Second)
	// Under systemd: READY now that broker and web server listen; the
	// watchdog is fed while the hub's state answers (sdnotify.go).
	sd := newNotifier(log)
	sd.ready()
	go sd.watchdog(ctx, func() { _ = s.Hub.Health() })
	<-ctx.Done()
	sd.stopping()
	log.Info("hub stopping")
	return s.Close()
}

// runCheck validates a hub or a gateway config, telling which by its keys:
// a gateway config names its one site and its broker; anything else is
// checked as a hub config. With --zigbee-devices it also checks each
// zigbee2mqtt device of a gateway config against zigbee2mqtt's own device
// list (zigbee_check.go).
func runCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file (YAML)")
	zigbee := fs.String("zigbee-devices", "", "zigbee2mqtt's retained bridge/devices message saved to a file\n(mosquitto_sub -t zigbee2mqtt/bridge/devices -C 1 > devices.json): check each\nzigbee2mqtt device of a gateway config against it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	path := *cfgPath
	if path == "" {
		return errors.New("check: --config FILE is required")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	var probe map[string]any
	_ = yaml.Unmarshal(data, &probe)
	_, site := probe["site"]
	_, brk := probe["broker"]
	if !site && !brk {
		if *zigbee != "" {
			return fmt.Errorf("check: --zigbee-devices checks a gateway config; %s is a hub config (it has no site and broker keys)", path)
		}
		var cfg hub.Config
		if err := config.Decode(path, data, &cfg); err != nil {
			return err
		}
		n := 0
		for _, s := range cfg.Sites {
			n += len(s.Trackers)
			for _, g := range s.Gateways {
				n += len(g.Devices)
			}
		}
		fmt.Fprintf(stdout, "%s: OK – hub config, %d sites, %d devices, %d users\n", path, len(cfg.Sites), n, len(cfg.Users))
		return nil
	}
	var cfg gateway.Config
	if err := config.Decode(path, data, &cfg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK – gateway config, site %s, gateway %s, %d devices\n", path, cfg.Site, cfg.ID, len(cfg.Devices))
	if *zigbee != "" {
		return checkZigbeeDevices(stdout, path, data, &cfg, *zigbee)
	}
	return nil
}

func runHashPassword(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("hash-password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return errors.New("hash-password: give a password of at least 8 characters on stdin")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	fmt.Fprintln(stdout, string(h))
	return nil
}

// defaultSpool turns the disk spool on for `vaka gateway` when the config
// names none: under systemd (StateDirectory=vaka-gateway) it goes to
// $STATE_DIRECTORY/spool, i.e. /var/lib/vaka-gateway/spool. Without either,
// events live in memory only, which is said loudly at start.
func defaultSpool(cfg *gateway.Config, log *slog.Logger) {
	if cfg.Spool != nil || cfg.SpoolDir != "" {
		return
	}
	sd := os.Getenv("STATE_DIRECTORY")
	if sd == "" {
		log.Warn("gateway: no spool configured: events are held in memory only and lost on a restart or power cut; set spool: {dir: /var/lib/vaka-gateway/spool}")
		return
	}
	cfg.Spool = &gateway.SpoolConfig{Dir: filepath.Join(strings.Split(sd, ":")[0], "spool")}
	log.Info("gateway: spool not configured; using the service's state directory", "dir", cfg.Spool.Dir)
}
