package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// cpuProfileEnv names the file a benchmark wants the hub's CPU profile in
// (vaka-load -hub-cpuprofile sets it). Only with it set does the hub listen
// for SIGUSR1 (start profiling) and SIGUSR2 (stop, then write FILE): the
// profile then covers the measured phase alone, not start-up, and a hub
// run without it keeps the default meaning of both signals. It opens no
// port: a profile is taken only by whoever may signal the process.
const cpuProfileEnv = "VAKA_CPUPROFILE"

func init() {
	path := os.Getenv(cpuProfileEnv)
	if path == "" {
		return
	}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	go serveCPUProfile(path, ch)
}

// serveCPUProfile profiles between a SIGUSR1 and the next SIGUSR2. The
// profile goes to path+".tmp" and is renamed to path when complete, so a
// reader waiting for path never reads half a profile.
func serveCPUProfile(path string, ch <-chan os.Signal) {
	var f *os.File
	for s := range ch {
		switch {
		case s == syscall.SIGUSR1 && f == nil:
			var err error
			if f, err = os.Create(path + ".tmp"); err != nil {
				fmt.Fprintln(os.Stderr, "vaka: cpu profile:", err)
				f = nil
				continue
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintln(os.Stderr, "vaka: cpu profile:", err)
				f.Close()
				f = nil
			}
		case s == syscall.SIGUSR2 && f != nil:
			pprof.StopCPUProfile()
			err := f.Close()
			if err == nil {
				err = os.Rename(path+".tmp", path)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "vaka: cpu profile:", err)
			}
			f = nil
		}
	}
}
