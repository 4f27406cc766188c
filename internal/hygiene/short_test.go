package hygiene

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// moduleRoot is the directory holding go.mod, found upwards from here.
func moduleRoot(t *testing.T) string {
	t.Helper()
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
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = up
	}
}

// testPackage is the test files of one directory and package name.
type testPackage struct {
	dir   string
	funcs map[string]*ast.FuncDecl
}

// calls lists what fn calls: same-package functions by name, other
// packages' as "pkg.Name", with the first argument when it is a string
// literal (exec.Command("mount", ...) is not a test starting a program).
type call struct {
	name string
	arg0 string
}

func calls(fn *ast.FuncDecl) []call {
	var out []call
	ast.Inspect(fn, func(n ast.Node) bool {
		ce, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		c := call{}
		switch f := ce.Fun.(type) {
		case *ast.Ident:
			c.name = f.Name
		case *ast.SelectorExpr:
			if x, ok := f.X.(*ast.Ident); ok {
				c.name = x.Name + "." + f.Sel.Name
			}
		}
		if len(ce.Args) > 0 {
			if bl, ok := ce.Args[0].(*ast.BasicLit); ok && bl.Kind == token.STRING {
				c.arg0, _ = strconv.Unquote(bl.Value)
			}
		}
		if c.name != "" {
			out = append(out, c)
		}
		return true
	})
	return out
}

// reaches reports whether fn, or a same-package function it calls
// (transitively), makes a call that match accepts.
func (p *testPackage) reaches(fn *ast.FuncDecl, match func(call) bool) bool {
	seen := map[*ast.FuncDecl]bool{}
	var walk func(*ast.FuncDecl) bool
	walk = func(f *ast.FuncDecl) bool {
		if seen[f] {
			return false
		}
		seen[f] = true
		for _, c := range calls(f) {
			if match(c) {
				return true
			}
			if g, ok := p.funcs[c.name]; ok && walk(g) {
				return true
			}
		}
		return false
	}
	return walk(fn)
}

// skipsUnderShort: testing.Short() itself, or testenv.LookPath, which
// skips under -short because every program a test looks up is started.
func skipsUnderShort(c call) bool {
	return c.name == "testing.Short" || c.name == "testenv.LookPath"
}

// startsProgram: exec.Command and friends, except mounting the small
// tmpfs of the full-disk tests (fast, and no program keeps running).
func startsProgram(c call) bool {
	switch c.name {
	case "exec.Command", "exec.CommandContext", "chromedp.NewExecAllocator":
		return c.arg0 != "mount" && c.arg0 != "umount"
	}
	return false
}

func loadTestPackages(t *testing.T, root string) []*testPackage {
	t.Helper()
	byKey := map[string]*testPackage{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		key := filepath.Dir(path) + " " + f.Name.Name
		p := byKey[key]
		if p == nil {
			p = &testPackage{dir: filepath.Dir(path), funcs: map[string]*ast.FuncDecl{}}
			byKey[key] = p
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil {
				p.funcs[fn.Name.Name] = fn
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*testPackage
	for _, p := range byKey {
		out = append(out, p)
	}
	return out
}

// `go test -short ./...` is the fast loop: every TestIntegration… test,
// and every test that starts a program (a broker, Chromium, InfluxDB, the
// vaka binary, promtool, node), must skip under -short, by testing.Short()
// in the test or in a helper it calls.
func TestShortSkipsIntegrationTests(t *testing.T) {
	root := moduleRoot(t)
	var missing []string
	checked := 0
	for _, p := range loadTestPackages(t, root) {
		for name, fn := range p.funcs {
			if !strings.HasPrefix(name, "Test") || name == "TestMain" {
				continue
			}
			if !strings.HasPrefix(name, "TestIntegration") && !p.reaches(fn, startsProgram) {
				continue
			}
			checked++
			if !p.reaches(fn, skipsUnderShort) {
				rel, _ := filepath.Rel(root, p.dir)
				missing = append(missing, rel+": "+name)
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d integration tests run under -short; add `if testing.Short() { t.Skip(why) }`:\n  %s",
			len(missing), checked, strings.Join(missing, "\n  "))
	}
	if checked < 50 {
		t.Errorf("only %d integration tests found: the scan missed the module's tests", checked)
	}
}
