package main

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// procCtxSwitches counts this process's own switches: a goroutine that
// sleeps on a locked thread switches that thread out each time.
func TestProcCtxSwitchesCountsSleeps(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux")
	}
	v0, _ := procCtxSwitches(os.Getpid())
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for range 20 {
			time.Sleep(time.Millisecond)
		}
		close(done)
	}()
	<-done
	v1, _ := procCtxSwitches(os.Getpid())
	if v1-v0 < 10 {
		t.Fatalf("20 sleeps of 1 ms counted as %d voluntary switches (before %d, after %d)", v1-v0, v0, v1)
	}
}
