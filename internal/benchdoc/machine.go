package benchdoc

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"time"
)

// Machine is what a report says about where it was measured. It is read
// before the benchmarks start, so LoadAvg is the load they met at the
// start: on a shared machine that is the honest note beside every figure.
type Machine struct {
	Date    time.Time `json:"date"`
	NProc   int       `json:"nproc"`
	CPU     string    `json:"cpu"`
	Go      string    `json:"go"`
	Kernel  string    `json:"kernel"`
	LoadAvg string    `json:"loadavg"` // /proc/loadavg's 1, 5 and 15 minute averages
	OSArch  string    `json:"os_arch"`
}

// ReadMachine describes this machine now, from /proc (Linux; elsewhere
// the fields it cannot read say "unknown").
func ReadMachine() Machine {
	m := Machine{Date: time.Now().UTC(), NProc: runtime.NumCPU(), Go: runtime.Version(),
		CPU: "unknown", Kernel: "unknown", LoadAvg: "unknown", OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// LoadMachine reads a Machine written (as JSON) by `vaka-benchdoc machine`.
func LoadMachine(path string) (Machine, error) {
	var m Machine
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	err = json.Unmarshal(b, &m)
	return m, err
}
