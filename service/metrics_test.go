package service_test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/config"
	"github.com/vaka-care/vaka/hub"
	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/service"
)

func getMetrics(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func startMetricsHub(t *testing.T, metricsYAML string) *service.Hub {
	t.Helper()
	var cfg hub.Config
	if err := config.Decode("hub.yaml", append(hubYAML(t, t.TempDir()), metricsYAML...), &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := service.Start(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Without a metrics: section, /metrics is open on the web address (the demo).
func TestMetricsOpenByDefault(t *testing.T) {
	s := startMetricsHub(t, "")
	code, body := getMetrics(t, "http://"+s.HTTPAddr()+"/metrics", "")
	if code != 200 || !strings.Contains(body, "vaka_alarms_open") {
		t.Fatalf("GET /metrics: %d, vaka_alarms_open in body: %v", code, strings.Contains(body, "vaka_alarms_open"))
	}
}

// With a token, /metrics answers 401 without it or with a wrong one.
func TestMetricsToken(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "metrics.token")
	const tok = "0123456789abcdef0123"
	if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startMetricsHub(t, "metrics: {token_file: "+tokFile+"}\n")
	url := "http://" + s.HTTPAddr() + "/metrics"
	for _, bad := range []string{"", "wrong-token-wrong-token", tok + "x"} {
		if code, body := getMetrics(t, url, bad); code != http.StatusUnauthorized || strings.Contains(body, "vaka_") {
			t.Fatalf("token %q: %d, want 401 and no metrics", bad, code)
		}
	}
	if code, body := getMetrics(t, url, tok); code != 200 || !strings.Contains(body, "vaka_alarms_open") {
		t.Fatalf("right token: %d", code)
	}
}

// With its own listen address, /metrics leaves the web address.
func TestMetricsOwnListener(t *testing.T) {
	addr := testenv.FreeAddr(t)
	s := startMetricsHub(t, "metrics: {listen: "+addr+"}\n")
	if code, body := getMetrics(t, "http://"+s.HTTPAddr()+"/metrics", ""); strings.Contains(body, "vaka_alarms_open") {
		t.Fatalf("web address still serves metrics (%d)", code)
	}
	if code, body := getMetrics(t, "http://"+addr+"/metrics", ""); code != 200 || !strings.Contains(body, "vaka_alarms_open") {
		t.Fatalf("own listener: %d", code)
	}
}

// A short or missing token file is a config error naming the field.
func TestMetricsTokenFileErrors(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc"), 0o600)
	for _, tc := range []struct{ yaml, want string }{
		{"metrics: {token_file: " + short + "}\n", "at least 16"},
		{"metrics: {token_file: /nonexistent/vaka.token}\n", "metrics.token_file"},
		{"metrics: {listen: nocolon}\n", "metrics.listen"},
	} {
		var cfg hub.Config
		err := config.Decode("hub.yaml", append(hubYAML(t, t.TempDir()), tc.yaml...), &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%q: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
