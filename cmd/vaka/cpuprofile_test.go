package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The hub profiles exactly between SIGUSR1 and SIGUSR2 and puts the file
// in place only when it is complete; a SIGUSR2 without a SIGUSR1 writes
// nothing.
func TestCPUProfileBetweenSignals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.prof")
	ch := make(chan os.Signal)
	done := make(chan struct{})
	go func() { serveCPUProfile(path, ch); close(done) }()

	// The channel is unbuffered: a send returns once the previous signal
	// was fully handled and the next one taken.
	ch <- syscall.SIGUSR2
	ch <- syscall.SIGUSR1
	ch <- syscall.SIGUSR1 // a second start is ignored; its send proves the first was handled
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a SIGUSR2 before any SIGUSR1 wrote %s (%v)", path, err)
	}
	if _, err := os.Stat(path + ".tmp"); err != nil {
		t.Fatalf("profiling did not start: %v", err)
	}
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
	}
	ch <- syscall.SIGUSR2
	close(ch)
	<-done
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no profile after SIGUSR2: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a pprof profile (gzip): %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("cpu")) || !bytes.Contains(raw, []byte("nanoseconds")) {
		t.Fatal("the profile names no CPU sample type")
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is left behind (%v)", err)
	}
}
