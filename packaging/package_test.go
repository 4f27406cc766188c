package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var pkgs = []string{"vaka-hub", "vaka-gateway", "vaka"}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildDebs builds the three packages at version for this machine's
// architecture into dir, from one vaka binary built here.
func buildDebs(t *testing.T, bin, arch, version, dir string) []string {
	t.Helper()
	cmd := exec.Command("../scripts/package.sh")
	cmd.Env = append(os.Environ(), "ARCHES="+arch, "PKG_VERSION="+version, "DIST="+dir, "VAKA_BIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("package.sh: %v\n%s", err, out)
	}
	var debs []string
	for _, p := range []string{"vaka", "vaka-hub", "vaka-gateway"} {
		debs = append(debs, filepath.Join(dir, p+"_"+version+"_"+arch+".deb"))
	}
	return debs
}

func owner(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "stat", "-c", "%U:%G", path))
}

func installedVersion(t *testing.T, pkg string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "dpkg-query", "-W", "-f=${Version}", pkg))
}

// The packages install with dpkg, the installed vaka checks the shipped
// configs as the vaka user, the units pass systemd-analyze verify; an
// upgrade keeps the data directories and an edited config; purge leaves
// none of the packages' files behind.
func TestIntegrationDebInstallUpgradePurge(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the dpkg install cycle")
	}
	if os.Geteuid() != 0 {
		t.Skip("packaging test needs root (dpkg -i); run make test as root")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "systemd-analyze", "runuser"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("packaging test needs %s: %v", tool, err)
		}
	}
	arch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	if arch == "" {
		t.Skipf("packaging test runs on amd64 or arm64, not %s", runtime.GOARCH)
	}
	for _, p := range pkgs {
		if exec.Command("dpkg-query", "-W", "-f=${Status}", p).Run() == nil {
			out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
			if strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed") {
				t.Skipf("%s is installed on this machine (%s): not touching it", p, out)
			}
		}
	}

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "vaka")
	run(t, "go", "build", "-trimpath", "-o", bin, "../cmd/vaka")
	v1 := buildDebs(t, bin, arch, "0.1.0", filepath.Join(tmp, "v1"))
	v2 := buildDebs(t, bin, arch, "0.2.0", filepath.Join(tmp, "v2"))
	t.Cleanup(func() {
		// Leave the machine as it was, whatever failed.
		exec.Command("dpkg", append([]string{"--purge"}, pkgs...)...).Run()
	})

	run(t, "dpkg", append([]string{"-i"}, v1...)...)
	for _, p := range pkgs {
		if v := installedVersion(t, p); v != "0.1.0" {
			t.Fatalf("%s installed at %q, want 0.1.0", p, v)
		}
	}
	run(t, "getent", "passwd", "vaka")
	for _, d := range []string{"/var/lib/vaka", "/var/lib/vaka-gateway"} {
		if o := owner(t, d); o != "vaka:vaka" {
			t.Fatalf("%s owned by %s, want vaka:vaka", d, o)
		}
	}
	for _, c := range []string{"/etc/vaka/hub.yaml", "/etc/vaka/gateway.yaml"} {
		if o := owner(t, c); o != "root:vaka" {
			t.Fatalf("%s owned by %s, want root:vaka", c, o)
		}
		fi, _ := os.Stat(c)
		if fi.Mode().Perm() != 0o640 {
			t.Fatalf("%s mode %v, want 0640 (it holds password hashes)", c, fi.Mode().Perm())
		}
		// As the service runs it: the vaka user, the installed binary.
		out := run(t, "runuser", "-u", "vaka", "--", "/usr/bin/vaka", "check", "--config", c)
		if !strings.Contains(out, ": OK") {
			t.Fatalf("vaka check %s: %s", c, out)
		}
	}
	conffiles := run(t, "dpkg-query", "-W", "-f=${Conffiles}\n", "vaka-hub", "vaka-gateway")
	for _, c := range []string{"/etc/vaka/hub.yaml", "/etc/vaka/gateway.yaml"} {
		if !strings.Contains(conffiles, c) {
			t.Fatalf("%s is not a conffile: %s", c, conffiles)
		}
	}
	units := []string{"/lib/systemd/system/vaka-hub.service", "/lib/systemd/system/vaka-gateway.service"}
	if out := run(t, "systemd-analyze", append([]string{"verify"}, units...)...); strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify warns:\n%s", out)
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Type=notify", "WatchdogSec=", "NoNewPrivileges=true", "ProtectSystem=strict",
			"ReadWritePaths=/var/lib/vaka", "StartLimitBurst=", "User=vaka"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s lacks %s", u, want)
			}
		}
	}

	// What an operator has by the time of an upgrade: a journal, a spool,
	// an edited config.
	data := map[string]string{
		"/var/lib/vaka/journal-marker":               "alarms\n",
		"/var/lib/vaka-gateway/spool/segment-marker": "events\n",
	}
	for p, c := range data {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	const edit = "\n# edited by the operator before the upgrade\n"
	for _, c := range []string{"/etc/vaka/hub.yaml", "/etc/vaka/gateway.yaml"} {
		f, err := os.OpenFile(c, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(edit)
		f.Close()
	}

	run(t, "dpkg", append([]string{"-i", "--force-confold"}, v2...)...)
	for _, p := range pkgs {
		if v := installedVersion(t, p); v != "0.2.0" {
			t.Fatalf("%s at %q after the upgrade, want 0.2.0", p, v)
		}
	}
	for p, c := range data {
		if b, err := os.ReadFile(p); err != nil || string(b) != c {
			t.Fatalf("upgrade lost %s: %q, %v", p, b, err)
		}
	}
	for _, c := range []string{"/etc/vaka/hub.yaml", "/etc/vaka/gateway.yaml"} {
		if b, err := os.ReadFile(c); err != nil || !strings.HasSuffix(string(b), edit) {
			t.Fatalf("upgrade replaced the operator's %s (%v)", c, err)
		}
	}
	if o := owner(t, "/var/lib/vaka"); o != "vaka:vaka" {
		t.Fatalf("/var/lib/vaka owned by %s after upgrade", o)
	}

	// Every path the packages installed, to check after purge.
	var files []string
	for _, p := range pkgs {
		for _, f := range strings.Split(run(t, "dpkg-query", "-L", p), "\n") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			// Stat, not Lstat: /lib is a symlink to usr/lib on merged-/usr systems.
			if fi, err := os.Stat(f); err == nil && !fi.IsDir() {
				files = append(files, f)
			}
		}
	}
	if len(files) < 6 {
		t.Fatalf("dpkg lists only %d files: %v", len(files), files)
	}
	run(t, "dpkg", append([]string{"--purge"}, pkgs...)...)
	gone := append(files, "/etc/vaka", "/var/lib/vaka", "/var/lib/vaka-gateway", "/usr/share/doc/vaka")
	for _, f := range gone {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("purge left %s", f)
		}
	}
}
