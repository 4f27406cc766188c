package main

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/internal/testenv"
)

func TestSysmonEnv(t *testing.T) {
	for _, c := range []struct {
		name      string
		args, env []string
		again     bool
		godebug   string
	}{
		{"hub, no GODEBUG", []string{"vaka", "hub", "--config", "x"}, []string{"HOME=/h"}, true, sysmonSetting},
		{"hub, other GODEBUG kept", []string{"vaka", "hub"}, []string{"GODEBUG=gctrace=1", "HOME=/h"}, true, "gctrace=1," + sysmonSetting},
		{"operator's schedtrace left alone", []string{"vaka", "hub"}, []string{"GODEBUG=gctrace=1,schedtrace=1000"}, false, "gctrace=1,schedtrace=1000"},
		{"already started again", []string{"vaka", "hub"}, []string{"GODEBUG=" + sysmonSetting}, false, sysmonSetting},
		{"opted out", []string{"vaka", "hub"}, []string{sysmonOptOut + "=1"}, false, ""},
		{"not the hub", []string{"vaka", "scaip", "send"}, nil, false, ""},
		{"no subcommand", []string{"vaka"}, nil, false, ""},
	} {
		env, again := sysmonEnv(c.args, c.env)
		var godebug string
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
				godebug = v
			}
		}
		if again != c.again || godebug != c.godebug {
			t.Errorf("%s: again %v GODEBUG %q, want %v %q", c.name, again, godebug, c.again, c.godebug)
		}
		if again && !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) && slices.Contains(c.env, "HOME=/h") {
			t.Errorf("%s: the rest of the environment was lost: %q", c.name, env)
		}
	}
}

// The real binary: `vaka hub` runs on with schedtrace set, in the same
// process (the PID its starter knows), and healthy; VAKA_SYSMON_SLEEP=1
// leaves it unset.
func TestIntegrationHubKeepsSysmonAwake(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/PID/environ is Linux")
	}
	bin := buildVaka(t)
	for _, optOut := range []bool{false, true} {
		dir := t.TempDir()
		httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
		cfg := writeHubConfig(t, dir, httpAddr, mqttAddr)
		if optOut {
			t.Setenv(sysmonOptOut, "1")
		}
		hub := startHubProcess(t, bin, cfg, httpAddr) // waits for /healthz
		b, err := os.ReadFile("/proc/" + strconv.Itoa(hub.Process.Pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		has := strings.Contains(string(b), "GODEBUG="+sysmonSetting)
		if has == optOut {
			t.Fatalf("opt-out %v: schedtrace in the hub's environment: %v", optOut, has)
		}
		hub.Process.Kill()
		hub.Wait()
	}
}
