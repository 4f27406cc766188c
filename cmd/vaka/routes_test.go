package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vaka-care/vaka/internal/testenv"
)

// docsRouting returns the example routing section and the example
// `vaka routes test` session from docs/routing.md.
func docsRouting(t *testing.T) (yaml, cmd, out string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "routing.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- example:routing -->\\s*```yaml\\n(.*?)```").FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("no routing example in docs/routing.md")
	}
	s := regexp.MustCompile("(?s)```\\n\\$ (vaka routes test [^\\n]*)\\n(.*?)```").FindStringSubmatch(string(b))
	if s == nil {
		t.Fatal("no routes test session in docs/routing.md")
	}
	return m[1], s[1], s[2]
}

func TestRoutesTestMatchesDocs(t *testing.T) {
	routing, cmdline, want := docsRouting(t)
	h := testenv.Hash(t, "x-secret-1")
	var users strings.Builder
	for _, u := range []string{"natt1", "natt2", "dag1", "lead"} {
		fmt.Fprintf(&users, "  - {username: %s, name: %s, role: staff, password_hash: %q}\n", u, u, h)
	}
	cfg := fmt.Sprintf("data_dir: /tmp/x\nmqtt: {tcp: \"127.0.0.1:0\"}\nhttp: {address: \"127.0.0.1:0\"}\nusers:\n%s%s", users.String(), routing)
	path := filepath.Join(t.TempDir(), "hub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Split the documented command line, keeping the quoted --at value.
	var args []string
	for _, f := range regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(cmdline, -1) {
		args = append(args, strings.Trim(f, `"`))
	}
	args = args[1:] // drop "vaka"
	for i, a := range args {
		if a == "hub.yaml" {
			args[i] = path
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(args, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.String() != want {
		t.Errorf("output differs from docs/routing.md\n got:\n%s\nwant:\n%s", stdout.String(), want)
	}
	// At 10:00 the day staff are first; a technical alarm goes to the lead only.
	stdout.Reset()
	run([]string{"routes", "test", "--config", path, "--at", "2026-01-15 10:00", "site=solrosen", "kind=call"}, nil, &stdout, &stderr)
	if !strings.Contains(stdout.String(), "now         tier 0  dag-solrosen") && !strings.Contains(stdout.String(), "dag-solrosen  dag1") {
		t.Errorf("day route:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"routes", "test", "--config", path, "colour=red"}, nil, &stdout, &stderr); code == 0 {
		t.Error("unknown label accepted")
	}
}
