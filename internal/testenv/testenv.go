// Package testenv holds helpers for Vaka's integration tests: free loopback
// ports, password hashes, a metrics scraper and an SSE alarm reader. It is
// internal so it never becomes part of the product.
package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/freeport"
)

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for a server started later (see package freeport for why not 0).
func FreeAddr(t testing.TB) string {
	t.Helper()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return a
}

// Hash returns a cheap bcrypt hash of pw (tests only: MinCost).
func Hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// LookPath finds a program the tests need. `make test` installs them, so a
// missing one is a failure with the fix in the message, not a silent skip.
// Under -short (the fast loop, make test-short) it skips the test instead:
// every test that needs an outside program starts it.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: needs %s; make test runs it", name)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin/", "/usr/local/sbin/"} {
			if p, err2 := exec.LookPath(dir + name); err2 == nil {
				return p
			}
		}
		t.Fatalf("testenv: %s not found: run `make test-deps` (or `make test`, which does it)", name)
	}
	return p
}

// Metric scrapes a Prometheus text endpoint and returns the value of the
// sample whose name and labels match, e.g. Metric(t, url, `vaka_mqtt_refused_total{reason="auth"}`).
func Metric(t testing.TB, url, sample string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("testenv: scrape: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, sample+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(sample):]), 64)
			if err != nil {
				t.Fatalf("testenv: metric %s: %v", sample, err)
			}
			return v
		}
	}
	t.Fatalf("testenv: metric %s not exported", sample)
	return 0
}

// Stream reads alarm changes from a hub's /api/v1/stream.
type Stream struct {
	C      <-chan *alarm.Alarm
	Ready  <-chan struct{} // closed when the "hello" event arrived
	cancel context.CancelFunc
}

// OpenStream connects to base+/api/v1/stream with HTTP Basic credentials.
func OpenStream(t testing.TB, base, user, pass string) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/stream", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("testenv: stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("testenv: stream: %s", resp.Status)
	}
	ch := make(chan *alarm.Alarm, 1024)
	ready := make(chan struct{})
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		r := bufio.NewReader(resp.Body)
		var ev string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if err != io.EOF && ctx.Err() == nil {
					t.Logf("testenv: stream ended: %v", err)
				}
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = line[len("event: "):]
				if ev == "hello" {
					close(ready)
				}
			case strings.HasPrefix(line, "data: ") && ev == "alarm":
				var a alarm.Alarm
				if json.Unmarshal([]byte(line[len("data: "):]), &a) == nil {
					select {
					case ch <- &a:
					default:
						t.Errorf("testenv: stream reader buffer full")
					}
				}
			}
		}
	}()
	s := &Stream{C: ch, Ready: ready, cancel: cancel}
	t.Cleanup(s.Close)
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("testenv: stream sent no hello within 5 s")
	}
	return s
}

// Next waits up to d for an alarm matching ok.
func (s *Stream) Next(t testing.TB, d time.Duration, ok func(*alarm.Alarm) bool) *alarm.Alarm {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case a, open := <-s.C:
			if !open {
				t.Fatal("testenv: stream closed")
			}
			if ok(a) {
				return a
			}
		case <-deadline:
			t.Fatalf("testenv: no matching alarm on the stream within %v", d)
			return nil
		}
	}
}

// Close ends the stream.
func (s *Stream) Close() { s.cancel() }

// GetJSON fetches base+path with Basic auth into v and returns the status.
func GetJSON(t testing.TB, url, user, pass string, v any) int {
	t.Helper()
	return DoJSON(t, http.MethodGet, url, user, pass, nil, v)
}

// DoJSON sends body (JSON-encoded unless nil) with Basic auth and decodes
// the response into v.
func DoJSON(t testing.TB, method, url, user, pass string, body, v any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, url, rd)
	req.SetBasicAuth(user, pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testenv: %s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if v != nil {
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("testenv: %s %s: decode %q: %v", method, url, b, err)
		}
	}
	return resp.StatusCode
}
