package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size bytes at dir for the test. It skips,
// saying why in the test output, only where mounting is impossible (not
// root, or no permission in this sandbox); CI runs as root and mounts.
func Tmpfs(t testing.TB, dir string, size int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("SKIPPED, NOT TESTED: a full disk needs a small tmpfs, and mounting one needs root (euid %d)", os.Geteuid())
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("SKIPPED, NOT TESTED: mount -t tmpfs refused here (%v: %s); the full-disk test needs it", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// FillDisk writes zeros into path until the file system is full.
func FillDisk(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("create filler: %v", err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := 0; i < 1<<16; i++ { // at most 256 MiB: the tmpfs is far smaller
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("fill: %v", err)
		}
	}
	t.Fatal("fill: the disk never became full")
}
