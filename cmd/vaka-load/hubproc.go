package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/freeport"
)

// The hub as its own process (-hub-bin PATH): `vaka hub --config FILE` with
// the bench's config written as YAML into the run's temp dir, exactly as an
// operator runs it. Its CPU is then read apart from the generator's, and
// it can be pinned to its own core (-pin-sut), away from the generator
// (-pin-gen).

// inventoryAbove is how many devices a generated config keeps in YAML;
// past it they go into a CSV inventory per site (sites[].devices_file),
// as a region keeps them: the all-alarm ramp registers one button per
// event, 100,000 at 20,000/s, past the hub's 4 MiB limit on a YAML file.
const inventoryAbove = 2000

// writeHubConfig writes cfg as YAML (large device lists as a CSV
// inventory beside it) and checks that the hub's own loader reads it
// back. cfg itself is not changed.
func writeHubConfig(cfg *hub.Config, path string) error {
	out := *cfg
	n := 0
	for _, s := range cfg.Sites {
		for _, g := range s.Gateways {
			n += len(g.Devices)
		}
	}
	if n > inventoryAbove {
		out.Sites = slices.Clone(cfg.Sites)
		for i := range out.Sites {
			s := &out.Sites[i]
			var c bytes.Buffer
			c.WriteString("gateway,id,type,resident,unit,room,exit\n")
			s.Gateways = slices.Clone(s.Gateways)
			for j := range s.Gateways {
				g := &s.Gateways[j]
				for _, d := range g.Devices {
					fmt.Fprintf(&c, "%s,%s,%s,%s,%s,%s,%t\n", g.ID, d.ID, d.Type, d.Resident, d.Unit, d.Room, d.Exit)
				}
				g.Devices = nil
			}
			s.DevicesFile = "devices-" + s.ID + ".csv"
			if err := os.WriteFile(filepath.Join(filepath.Dir(path), s.DevicesFile), c.Bytes(), 0o600); err != nil {
				return err
			}
		}
	}
	b, err := yaml.Marshal(&out)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	var back hub.Config
	if err := config.Load(path, &back); err != nil {
		return fmt.Errorf("generated hub config does not load: %w", err)
	}
	return nil
}

// startHubProcess starts `vaka hub` for cfg and waits until its web server
// and (embedded) broker answer.
func (p *peer) startHubProcess(o options, cfg *hub.Config, tmp string) error {
	var err error
	if p.httpAddr, err = freeport.Addr(); err != nil {
		return err
	}
	cfg.HTTP.Address = p.httpAddr
	if !cfg.MQTT.IsExternal() {
		if p.mqttAddr, err = freeport.Addr(); err != nil {
			return err
		}
		cfg.MQTT.TCP = p.mqttAddr
	}
	if err := p.withCluster(o, cfg, tmp); err != nil { // cluster.go: -cluster
		return err
	}
	path := filepath.Join(tmp, "hub.yaml")
	if err := writeHubConfig(cfg, path); err != nil {
		return err
	}
	hc := exec.Command(o.HubBin, "hub", "--config", path)
	if o.HubProfile != "" {
		hc.Env = append(os.Environ(), hubProfileEnv+"="+o.HubProfile)
	}
	cmd := pinned(hc, o.PinSUT)
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: &logBuf}, &lockedWriter{w: &logBuf}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("hub process: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.pids = append(p.pids, cmd.Process.Pid)
	p.hubPid = cmd.Process.Pid
	p.closers = append(p.closers, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("hub process exited: %s", tail(logBuf.String(), 2000))
		default:
		}
		ok := httpUp("http://" + p.httpAddr + "/metrics")
		if ok && p.mqttAddr != "" {
			c, err := net.DialTimeout("tcp", p.mqttAddr, time.Second)
			ok = err == nil
			if c != nil {
				c.Close()
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hub process not up within 20 s: %s", tail(logBuf.String(), 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func httpUp(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// scrapeMetric sums the samples of one metric from a /metrics page.
func scrapeMetric(url, name string) float64 {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var v float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if x, err := strconv.ParseFloat(f[0], 64); err == nil {
			v += x
		}
	}
	return v
}

// parseCPUs reads a CPU list such as "0", "1", "0-1" or "0,2".
func parseCPUs(s string) (unix.CPUSet, int, error) {
	var set unix.CPUSet
	n := 0
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return set, 0, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return set, 0, fmt.Errorf("bad CPU list %q", s)
			}
		}
		if b >= runtime.NumCPU() || a < 0 {
			return set, 0, fmt.Errorf("CPU list %q: this machine has CPUs 0-%d", s, runtime.NumCPU()-1)
		}
		for c := a; c <= b; c++ {
			if !set.IsSet(c) {
				set.Set(c)
				n++
			}
		}
	}
	return set, n, nil
}

// pinPid sets the CPU affinity of every thread of pid (threads created
// later inherit it from their creator).
func pinPid(pid int, cpus string) error {
	if cpus == "" {
		return nil
	}
	set, _, err := parseCPUs(cpus)
	if err != nil {
		return err
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pinSelf pins this process (the generator and stream reader) and sizes
// GOMAXPROCS to the CPUs it may use.
func pinSelf(cpus string) error {
	if cpus == "" {
		return nil
	}
	_, n, err := parseCPUs(cpus)
	if err != nil {
		return err
	}
	if err := pinPid(os.Getpid(), cpus); err != nil {
		return err
	}
	runtime.GOMAXPROCS(n)
	return nil
}

// pinned runs cmd under taskset when cpus is set.
func pinned(cmd *exec.Cmd, cpus string) *exec.Cmd {
	if cpus == "" {
		return cmd
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return cmd
	}
	c := exec.Command(ts, append([]string{"-c", cpus, cmd.Path}, cmd.Args[1:]...)...)
	c.Dir, c.Env = cmd.Dir, cmd.Env
	return c
}
