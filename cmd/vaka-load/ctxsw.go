package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procCtxSwitches is the voluntary and involuntary context switches of
// all a process's threads so far (Linux /proc/PID/task/*/status; 0
// elsewhere). Each hand-off between goroutines that parks a thread shows
// here, which is why the SCAIP run reports it per message: the hub's CPU
// per message at 1,000/s is mostly these wakeups, not the work.
func procCtxSwitches(pid int) (voluntary, involuntary int64) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, 0
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch k {
			case "voluntary_ctxt_switches":
				voluntary += n
			case "nonvoluntary_ctxt_switches":
				involuntary += n
			}
		}
	}
	return voluntary, involuntary
}
