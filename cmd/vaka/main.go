// Command vaka is the one binary of Vaka: the hub, the edge gateway, the
// demo and the config checker.
//
//	vaka demo [--data DIR] [--http ADDR] [--mqtt ADDR]
//	vaka hub --config FILE
//	vaka gateway --config FILE
//	vaka check --config FILE [--zigbee-devices FILE]
//	vaka hash-password
//	vaka rules explain|replay
//	vaka routes test --config FILE [--at TIME] site=… unit=… kind=…
//	vaka backup --config FILE|--data DIR --out FILE
//	vaka restore --config FILE|--data DIR --from FILE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	keepSysmonAwake(os.Args) // sysmon.go: `vaka hub` only
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `vaka – trygghetslarm och nattillsyn / safety alarms and night supervision

Usage:
  vaka demo [--data DIR] [--http ADDR] [--mqtt ADDR]   hub + simulated gateways on embedded defaults
  vaka hub --config FILE                             run the hub (broker, rules, alarms, web)
  vaka gateway --config FILE                         run an edge gateway
  vaka check --config FILE                           validate a hub or gateway config,
      [--zigbee-devices FILE]                        and its zigbee2mqtt devices against zigbee2mqtt's list
  vaka hash-password                                 read a password on stdin, print its bcrypt hash
  vaka rules explain|replay …                        which rules watch a resident; replay an event log
  vaka routes test --config FILE site=… kind=…        who is alerted now and after each escalation step
  vaka scaip send|ha1 …                              send one SCAIP request as an alarm unit; make a Digest HA1
  vaka backup --config FILE --out FILE.tar.gz        consistent copy of the data directory, hub running
  vaka restore --config FILE --from FILE.tar.gz      into an empty data directory (docs/operations.md)
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, log)
	case "hub":
		err = runHub(ctx, args[1:], log)
	case "gateway":
		err = runGateway(ctx, args[1:], log)
	case "check":
		err = runCheck(args[1:], stdout)
	case "hash-password":
		err = runHashPassword(stdin, stdout)
	case "rules":
		err = runRules(args[1:], stdout)
	case "routes":
		err = runRoutes(args[1:], stdout)
	case "scaip":
		err = runSCAIP(ctx, args[1:], stdin, stdout)
	case "backup":
		err = runBackup(args[1:], stdout)
	case "restore":
		err = runRestore(args[1:], stdin, stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "vaka: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "vaka:", err)
		return 1
	}
	return 0
}

func configFlag(name string, args []string) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if *path == "" {
		return "", fmt.Errorf("%s: --config FILE is required", name)
	}
	return *path, nil
}
