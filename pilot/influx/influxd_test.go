package influx

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/pilot"
)

// influxd is a real InfluxDB 1.8.10 for a test: built by `make test-deps`
// into <repo>/.cache/bin, started on loopback ports with its data in a
// temp dir, stopped by its own PID.
type influxd struct {
	t    testing.TB
	bin  string
	conf string
	url  string
	cmd  *exec.Cmd
	log  *os.File
}

func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("influxd: repo root (go.mod) not found")
		}
		dir = up
	}
}

func startInfluxd(t testing.TB) *influxd {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts InfluxDB 1.8.10")
	}
	bin := filepath.Join(repoRoot(t), ".cache", "bin", "influxd")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("influxd 1.8.10 not found at %s: run `make test-deps` (or `make test`, which does it)", bin)
	}
	dir := t.TempDir()
	httpAddr, metaAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	conf := filepath.Join(dir, "influxd.conf")
	body := fmt.Sprintf(`reporting-disabled = true
bind-address = %q
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = %q
  flux-enabled = true
  log-enabled = false
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`, metaAddr, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpAddr)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &influxd{t: t, bin: bin, conf: conf, url: "http://" + httpAddr}
	d.start()
	t.Cleanup(d.stop)
	form := url.Values{"q": {"CREATE DATABASE pilot"}}
	resp, err := http.PostForm(d.url+"/query", form)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("influxd: create database: %v %v", err, resp)
	}
	resp.Body.Close()
	return d
}

func (d *influxd) start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.conf+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	d.log = logf
	d.cmd = exec.Command(d.bin, "-config", d.conf)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("influxd: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(d.url + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(d.conf + ".log")
	d.t.Fatalf("influxd did not answer /ping within 30 s:\n%s", b)
}

// stop ends this test's influxd (by its PID) and waits for it.
func (d *influxd) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
	d.log.Close()
}

func (d *influxd) config() *pilot.InfluxConfig {
	return &pilot.InfluxConfig{URL: d.url, Bucket: "pilot/autogen"}
}

func (d *influxd) logTail() string {
	b, _ := os.ReadFile(d.conf + ".log")
	s := string(b)
	if i := strings.LastIndex(s[:max(0, len(s)-2000)], "\n"); i > 0 {
		s = s[i:]
	}
	return s
}
