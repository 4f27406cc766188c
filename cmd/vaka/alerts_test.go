package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vaka-care/vaka/internal/testenv"
	"github.com/vaka-care/vaka/rules"
)

const alertRules = "../../deploy/prometheus/vaka-alerts.yml"

// The shipped alerting rules are valid (promtool check rules) and each
// alert fires on its recorded series and stays quiet before
// (promtool test rules, deploy/prometheus/vaka-alerts_test.yml).
func TestPrometheusAlertRules(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool")
	for _, args := range [][]string{{"check", "rules", alertRules}, {"test", "rules", "../../deploy/prometheus/vaka-alerts_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert has a test: an alert nobody fired is one that may never fire.
	names, tests := alertNames(t), readFile(t, "../../deploy/prometheus/vaka-alerts_test.yml")
	for _, a := range names {
		if !strings.Contains(tests, "alertname: "+a+"\n") {
			t.Errorf("alert %s is never fired in vaka-alerts_test.yml", a)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	if err := yaml.Unmarshal([]byte(readFile(t, alertRules)), &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

func alertNames(t *testing.T) []string {
	var out []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			out = append(out, r.Alert)
		}
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every vaka_ metric and every rule label value the alerting rules name
// is in a real hub's /metrics, so a renamed metric breaks this test and
// not a municipality's monitoring. The hub is the demo's (with the pilot
// exporter); a gateway heartbeat and a silent gateway give the
// per-gateway series and a technical alarm.
func TestAlertRulesUseRealMetrics(t *testing.T) {
	s := startDemoHub(t)
	// A heartbeat reporting a queue and drops: vaka_gateway_queued and
	// vaka_gateway_dropped_total for solrosen/avd-a.
	hb := fmt.Sprintf(`{"ts":%q,"seq":1,"spool":3,"dropped":0}`, time.Now().UTC().Format(time.RFC3339Nano))
	s.Hub.HandleHeartbeat("solrosen", "avd-a", []byte(hb))
	// The gateway's will says offline: a gateway_offline technical alarm,
	// so vaka_alarms_raised_total{kind="technical",rule="gateway_offline"}.
	s.Hub.HandleStatus("solrosen", "avd-a", []byte(`{"state":"offline"}`))

	resp, err := http.Get("http://" + s.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exposed := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			exposed[strings.Fields(line)[2]] = true
		}
		if name, _, ok := strings.Cut(line, "{"); ok && !strings.HasPrefix(line, "#") {
			exposed[name] = true
		}
	}
	metric := regexp.MustCompile(`\bvaka_[a-z_]+\b`)
	var used []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			for _, m := range metric.FindAllString(r.Expr, -1) {
				if !slices.Contains(used, m) {
					used = append(used, m)
				}
			}
		}
	}
	if len(used) < 15 {
		t.Fatalf("found only %d vaka_ metrics in the rules: %v", len(used), used)
	}
	for _, m := range used {
		if !exposed[m] {
			t.Errorf("the rules use %s, which the hub's /metrics does not have", m)
		}
	}
	if !strings.Contains(string(b), `vaka_alarms_raised_total{kind="technical",rule="`+rules.RuleGatewayOffline+`"} 1`) {
		t.Errorf("the offline gateway's alarm is not in /metrics as the rules select it")
	}
	// The rules select technical alarms by rule label: those values must
	// be the rule names the hub uses.
	for _, rule := range []string{rules.RuleGatewayOffline, rules.RuleGatewayFault, rules.RuleDeviceSilent, rules.RuleHubIntegrity} {
		if !strings.Contains(readFile(t, alertRules), `rule="`+rule+`"`) {
			t.Errorf("no alert on rule %s", rule)
		}
	}
}
