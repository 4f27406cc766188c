package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// hubProfileEnv is the variable `vaka hub` reads (cmd/vaka/cpuprofile.go):
// with it set, SIGUSR1 starts a CPU profile and SIGUSR2 writes it there.
const hubProfileEnv = "VAKA_CPUPROFILE"

// startHubProfile starts the hub process's CPU profile for the measured
// phase (-hub-cpuprofile); the returned stop writes it and waits until the
// file is complete. Without the flag both are no-ops.
func startHubProfile(o options, pid int) (stop func() error, err error) {
	if o.HubProfile == "" {
		return func() error { return nil }, nil
	}
	if pid == 0 {
		return nil, errors.New("-hub-cpuprofile: no hub process")
	}
	_ = os.Remove(o.HubProfile)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return nil, fmt.Errorf("-hub-cpuprofile: signal hub: %w", err)
	}
	return func() error {
		if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
			return fmt.Errorf("signal hub: %w", err)
		}
		// The hub renames the finished profile into place.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if _, err := os.Stat(o.HubProfile); err == nil {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return fmt.Errorf("hub wrote no profile to %s within 10 s", o.HubProfile)
	}, nil
}
