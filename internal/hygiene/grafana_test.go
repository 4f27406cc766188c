package hygiene

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vaka-care/vaka/internal/testenv"
)

// The shapes of Grafana's provisioning files (apiVersion 1), strict: a
// misspelt key is an error here rather than a setting Grafana ignores.
type datasourcesFile struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name           string            `yaml:"name"`
		UID            string            `yaml:"uid"`
		Type           string            `yaml:"type"`
		Access         string            `yaml:"access"`
		URL            string            `yaml:"url"`
		Editable       bool              `yaml:"editable"`
		JSONData       map[string]any    `yaml:"jsonData"`
		SecureJSONData map[string]string `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

type dashboardsFile struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		OrgID                 int    `yaml:"orgId"`
		Folder                string `yaml:"folder"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

type nfpmFile struct {
	Contents []struct {
		Src string `yaml:"src"`
		Dst string `yaml:"dst"`
	} `yaml:"contents"`
}

func decodeStrict(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// dsRefs collects every {"type":…, "uid":…} datasource reference in a
// dashboard, at any depth (panels, targets, template variables).
func dsRefs(v any, out *[][2]string) {
	switch x := v.(type) {
	case map[string]any:
		if ds, ok := x["datasource"].(map[string]any); ok {
			typ, _ := ds["type"].(string)
			uid, _ := ds["uid"].(string)
			*out = append(*out, [2]string{typ, uid})
		}
		for _, e := range x {
			dsRefs(e, out)
		}
	case []any:
		for _, e := range x {
			dsRefs(e, out)
		}
	}
}

// The Grafana provisioning in deploy/grafana/ parses as Grafana reads it;
// the dashboard provider's directory is where the vaka-hub package puts
// every dashboard in deploy/ (from files that exist); each dashboard's
// data sources are provisioned ones; the operations dashboard queries
// only metrics the code defines and names only alerts that exist.
func TestGrafanaProvisioning(t *testing.T) {
	root := moduleRoot(t)
	var dsf datasourcesFile
	decodeStrict(t, filepath.Join(root, "deploy/grafana/provisioning/datasources/vaka.yaml"), &dsf)
	if dsf.APIVersion != 1 || len(dsf.Datasources) == 0 {
		t.Fatalf("datasources: apiVersion %d, %d data sources", dsf.APIVersion, len(dsf.Datasources))
	}
	uids := map[string]string{} // uid → type
	for _, d := range dsf.Datasources {
		if d.Name == "" || d.UID == "" || d.Type == "" || d.URL == "" || d.Access != "proxy" {
			t.Errorf("data source %+v: name, uid, type, url and access proxy are needed", d)
		}
		if d.Type == "influxdb" && d.JSONData["version"] != "Flux" {
			t.Errorf("%s: the pilot dashboard's queries are Flux, jsonData.version is %v", d.Name, d.JSONData["version"])
		}
		uids[d.UID] = d.Type
	}

	var dbf dashboardsFile
	decodeStrict(t, filepath.Join(root, "deploy/grafana/provisioning/dashboards/vaka.yaml"), &dbf)
	if dbf.APIVersion != 1 || len(dbf.Providers) != 1 {
		t.Fatalf("dashboards: apiVersion %d, %d providers", dbf.APIVersion, len(dbf.Providers))
	}
	prov := dbf.Providers[0]
	if prov.Type != "file" || !path.IsAbs(prov.Options.Path) {
		t.Fatalf("provider %q: type %q, path %q: want a file provider with an absolute path", prov.Name, prov.Type, prov.Options.Path)
	}

	// What the vaka-hub package installs into the provider's directory.
	var pkg nfpmFile
	decodeStrictLoose(t, filepath.Join(root, "packaging/vaka-hub.yaml"), &pkg)
	shipped := map[string]string{} // repo file → installed path
	for _, c := range pkg.Contents {
		if c.Src == "" || !strings.HasPrefix(c.Dst, "/usr/share/vaka/grafana/") {
			continue
		}
		src := filepath.Clean(filepath.Join(root, "packaging", c.Src))
		if _, err := os.Stat(src); err != nil {
			t.Errorf("packaging/vaka-hub.yaml ships %s, which does not exist: %v", c.Src, err)
		}
		rel, _ := filepath.Rel(root, src)
		shipped[rel] = c.Dst
	}
	for _, f := range []string{"deploy/grafana/provisioning/datasources/vaka.yaml", "deploy/grafana/provisioning/dashboards/vaka.yaml"} {
		if shipped[f] == "" {
			t.Errorf("the vaka-hub package does not ship %s", f)
		}
	}

	dashboards, _ := filepath.Glob(filepath.Join(root, "deploy", "grafana*.json"))
	more, _ := filepath.Glob(filepath.Join(root, "deploy", "grafana", "*.json"))
	dashboards = append(dashboards, more...)
	if len(dashboards) < 2 {
		t.Fatalf("dashboards in deploy/: %v, want the pilot and the operations one", dashboards)
	}
	seenUID := map[string]bool{}
	for _, file := range dashboards {
		rel, _ := filepath.Rel(root, file)
		if dst := shipped[rel]; path.Dir(dst) != prov.Options.Path {
			t.Errorf("%s is installed at %q, not in the provider's %s", rel, dst, prov.Options.Path)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var dash map[string]any
		if err := json.Unmarshal(b, &dash); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		uid, _ := dash["uid"].(string)
		if uid == "" || seenUID[uid] || dash["title"] == nil {
			t.Errorf("%s: uid %q (unique and set) and a title are needed", rel, uid)
		}
		seenUID[uid] = true
		// Template variables of type datasource, by name → plugin type.
		vars := map[string]string{}
		if tl, ok := dash["templating"].(map[string]any); ok {
			list, _ := tl["list"].([]any)
			for _, v := range list {
				m, _ := v.(map[string]any)
				if m["type"] == "datasource" {
					vars[m["name"].(string)] = m["query"].(string)
				}
			}
		}
		var refs [][2]string
		dsRefs(dash, &refs)
		if len(refs) == 0 {
			t.Errorf("%s: no data source references", rel)
		}
		for _, r := range refs {
			typ, uid := r[0], r[1]
			if name, ok := strings.CutPrefix(uid, "${"); ok {
				name = strings.TrimSuffix(name, "}")
				if vars[name] == "" || !slices.Contains(mapValues(uids), vars[name]) {
					t.Errorf("%s: data source variable %s (type %q) matches no provisioned data source", rel, uid, vars[name])
				}
				continue
			}
			if uids[uid] != typ {
				t.Errorf("%s: data source %s/%s is not provisioned (have %v)", rel, typ, uid, uids)
			}
		}
	}

	// The operations dashboard: metrics the code defines, alerts that exist.
	ops, err := os.ReadFile(filepath.Join(root, "deploy/grafana/vaka-operations.json"))
	if err != nil {
		t.Fatal(err)
	}
	defined := definedMetrics(t, root)
	used := regexp.MustCompile(`\bvaka_[a-z_]+\b`).FindAllString(string(ops), -1)
	if len(used) < 15 {
		t.Fatalf("the operations dashboard uses only %d vaka_ metrics", len(used))
	}
	for _, m := range used {
		if !defined[m] {
			t.Errorf("the operations dashboard queries %s, which no Go source defines", m)
		}
	}
	rules, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/vaka-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range regexp.MustCompile(`\bVaka[A-Z][A-Za-z]+\b`).FindAllString(string(ops), -1) {
		if !strings.Contains(string(rules), "alert: "+a+"\n") {
			t.Errorf("the operations dashboard names alert %s, which deploy/prometheus/vaka-alerts.yml does not have", a)
		}
	}
}

// decodeStrictLoose reads only the keys v names (the nfpm file has many
// this test does not need).
func decodeStrictLoose(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// definedMetrics are the "vaka_…" string literals in the module's non-test
// Go files: every metric name the hub and gateway register.
func definedMetrics(t *testing.T, root string) map[string]bool {
	t.Helper()
	lit := regexp.MustCompile(`"(vaka_[a-z_]+)"`)
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Each query of the operations dashboard is valid PromQL: promtool (as in
// make test, Debian's prometheus package) checks them as recording rules.
func TestOperationsDashboardPromQL(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool")
	root := moduleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy/grafana/vaka-operations.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("vaka:dashboard_query_%d", len(rules)), Expr: q.Expr})
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard's %d queries: %v\n%s", len(rules), err, res)
	}
	if !strings.Contains(string(res), fmt.Sprintf("%d rules found", len(rules))) {
		t.Fatalf("promtool did not check all %d queries:\n%s", len(rules), res)
	}
}
