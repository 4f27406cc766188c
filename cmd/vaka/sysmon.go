package main

import (
	"os"
	"strings"
)

// The hub keeps the Go runtime's sysmon thread out of its deep sleep.
//
// Why: sysmon (the runtime's watchdog thread) sleeps on a futex whenever
// every P is idle, and the first system call after that wakes it; it then
// polls every 20 µs until the process is idle again. A hub that is idle
// between alarms (1,000 SCAIP messages/s leave its core idle two thirds of
// the time) pays that for every message, and twice for SCAIP (the MESSAGE,
// then the unit's 200 to the <mrs>): `vaka-load scaip` at 1,000/s measured
// 4.4–5.2 context switches per message, and sysmon about 18 % of the hub's
// CPU in perf. The runtime skips the deep sleep only while GODEBUG
// schedtrace is set, and reads that only at start, so `vaka hub` starts
// itself again (the same process: execve keeps the PID, the CPU affinity,
// systemd's supervision) with schedtrace at its largest value. sysmon then
// backs off to a wake-up every 10 ms when the hub is idle (100 a second,
// about 0.1 % of a core) and is no longer woken per message: 1.1–1.3
// context switches per message, and 20 % less CPU per message, in the same
// runs. schedtrace's one-line scheduler summary goes to stderr once the
// machine has been up 24.8 days and every 24.8 days after (the interval is
// in ms, an int32, counted from boot); and, as with GODEBUG set by hand, a
// fatal runtime error prints the scheduler's state beside its stack.
//
// VAKA_SYSMON_SLEEP=1 turns this off; a GODEBUG that already sets
// schedtrace is left as it is.
const (
	sysmonSetting = "schedtrace=2147483647"
	sysmonOptOut  = "VAKA_SYSMON_SLEEP"
)

// sysmonEnv returns the environment `vaka hub` should run with, and
// whether that differs from env (then the hub starts itself again).
func sysmonEnv(args, env []string) ([]string, bool) {
	if len(args) < 2 || args[1] != "hub" {
		return env, false
	}
	godebug, at := "", -1
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case sysmonOptOut:
			if v == "1" {
				return env, false
			}
		case "GODEBUG":
			godebug, at = v, i
		}
	}
	for _, s := range strings.Split(godebug, ",") {
		if strings.HasPrefix(strings.TrimSpace(s), "schedtrace=") {
			return env, false
		}
	}
	out := append([]string(nil), env...)
	if at < 0 {
		return append(out, "GODEBUG="+sysmonSetting), true
	}
	if godebug != "" {
		godebug += ","
	}
	out[at] = "GODEBUG=" + godebug + sysmonSetting
	return out, true
}

// keepSysmonAwake starts `vaka hub` again with sysmonEnv's environment
// when it differs; on any error the hub goes on as it is.
func keepSysmonAwake(args []string) {
	env, again := sysmonEnv(args, os.Environ())
	if !again {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = execSelf(exe, args, env) // returns only on error
}
