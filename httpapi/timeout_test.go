package httpapi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vaka-care/vaka/alarm"
	"github.com/vaka-care/vaka/internal/testenv"
)

// TrickleBody sends a request to addr whose body (declared 200 bytes)
// comes one byte every gap, and returns how many body bytes were sent
// before the server answered or closed. It stops after 200 bytes.
func trickleBody(t *testing.T, addr, path string, gap time.Duration) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: vaka\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		_ = c.SetReadDeadline(time.Now().Add(200 * gap))
		_, _ = io.Copy(io.Discard, c) // until the server closes (or the bound)
	}()
	for sent := 0; sent < 200; sent++ {
		select {
		case <-answered:
			return sent
		case <-time.After(gap):
		}
		if _, err := c.Write([]byte{' '}); err != nil {
			return sent
		}
	}
	return 200
}

// A body trickled a byte at a time is cut at the body bound, while a staff
// stream opened alongside keeps working for several times that bound.
func TestTrickledBodyCutStreamLives(t *testing.T) {
	const bound = 300 * time.Millisecond
	q := &queuedAlarms{ch: make(chan *alarm.Alarm)}
	srv := httptest.NewServer(New(Options{Alarms: q, BodyTimeout: bound, StreamKeepAlive: 50 * time.Millisecond,
		Auth: NewAuth([]User{{Username: "natt1", Role: RoleStaff, PasswordHash: testenv.Hash(t, "pw")}}, time.Hour, nil)}))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/stream", nil)
	req.SetBasicAuth("natt1", "pw")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pings := make(chan struct{}, 1024)
	go func() {
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				close(pings)
				return
			}
			if strings.HasPrefix(line, "event: ping") {
				pings <- struct{}{}
			}
		}
	}()

	// At 100 ms a byte, a 300 ms bound lets a handful through, never 200.
	if n := trickleBody(t, srv.Listener.Addr().String(), "/api/v1/login", 100*time.Millisecond); n >= 50 {
		t.Errorf("%d trickled bytes accepted: the body bound did not cut the request", n)
	}
	// The stream has now been open longer than the bound; it keeps
	// pinging for three times the bound more.
	deadline := time.Now().Add(3 * bound)
	for n := 0; time.Now().Before(deadline) || n < 3; n++ {
		select {
		case _, ok := <-pings:
			if !ok {
				t.Fatal("the stream ended: it must outlive the body bound")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no ping from the stream within 10 s")
		}
	}
}

// A handler that has read its whole body may work longer than the body
// bound without its request being cancelled.
func TestBodyBoundLiftedOnceRead(t *testing.T) {
	const bound = 200 * time.Millisecond
	s := &server{o: Options{BodyTimeout: bound}}
	errc := make(chan error, 1)
	srv := httptest.NewServer(s.bodyLimits(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			errc <- err
			return
		}
		select {
		case <-r.Context().Done():
			errc <- r.Context().Err()
		case <-time.After(4 * bound):
			errc <- nil
		}
	})))
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(`{"outcome":"false"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-errc; err != nil {
		t.Errorf("handler after its body was read: %v", err)
	}
}
