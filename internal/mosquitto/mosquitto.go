// Package mosquitto starts a private Mosquitto broker on a loopback port
// for integration tests and the benchmark harness: its own config file
// (never the system one), data in a temporary directory, TCP_NODELAY on,
// a large queue for slow subscribers, and optionally a password file and
// an ACL. The caller owns the process and stops it by its PID.
package mosquitto

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vaka-care/vaka/internal/freeport"
)

// User is a login in the password file.
type User struct{ Name, Password string }

// Options configure a broker.
type Options struct {
	Binary string // default: mosquitto on PATH or /usr/sbin/mosquitto
	Dir    string // config, password file, ACL and log go here (required)
	// Users, if any, turn anonymous access off (password_file).
	Users []User
	// ACL is the acl_file's content; empty means no ACL.
	ACL string
	// Persistence stores sessions and queued messages on disk in Dir
	// (autosave on every change), to match the hub's journal.
	Persistence bool
	// Port to listen on; 0 picks a free one.
	Port int
	// Extra lines appended to the config.
	Extra string
}

// Server is a running Mosquitto.
type Server struct {
	Addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	log  *syncBuf
	done chan struct{}
	opts Options
	conf string
}

// Find returns the mosquitto binary's path.
func Find() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mosquitto not found: install the Debian package mosquitto (make test-deps)")
}

// ACL is a Mosquitto ACL giving every gateway "<site>/<gateway>" write
// access to its own event, status and heartbeat topics and read access to
// its reply topic, and the hub user read access to all of them.
func ACL(hubUser string) string {
	return fmt.Sprintf(`user %s
topic read vaka/v1/+/+/event
topic read vaka/v1/+/+/status
topic read vaka/v1/+/+/heartbeat
topic write vaka/v1/+/+/reply

pattern write vaka/v1/%%u/event
pattern write vaka/v1/%%u/status
pattern write vaka/v1/%%u/heartbeat
pattern read vaka/v1/%%u/reply
`, hubUser)
}

// Start writes the config and starts mosquitto -c FILE, returning once it
// accepts TCP connections (at most 5 s).
func Start(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("mosquitto: Dir is required")
	}
	if o.Binary == "" {
		p, err := Find()
		if err != nil {
			return nil, err
		}
		o.Binary = p
	}
	if o.Port == 0 {
		p, err := freeport.Port()
		if err != nil {
			return nil, err
		}
		o.Port = p
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\n", o.Port)
	if os.Geteuid() == 0 {
		// As root Mosquitto would switch to user mosquitto, which cannot
		// read this private directory.
		conf.WriteString("user root\n")
	}
	conf.WriteString("set_tcp_nodelay true\n")        // without it every hop can add ≈ 44 ms (Nagle)
	conf.WriteString("max_queued_messages 1000000\n") // the default 1000 silently drops QoS 1 to a slow subscriber
	conf.WriteString("max_inflight_messages 1000\n")
	conf.WriteString("log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n")
	if o.Persistence {
		fmt.Fprintf(&conf, "persistence true\npersistence_location %s/\nautosave_interval 0\nautosave_on_changes true\n", o.Dir)
	} else {
		conf.WriteString("persistence false\n")
	}
	if len(o.Users) > 0 {
		pw := filepath.Join(o.Dir, "passwd")
		if err := os.WriteFile(pw, nil, 0o600); err != nil {
			return nil, err
		}
		passwd, err := exec.LookPath("mosquitto_passwd")
		if err != nil {
			return nil, errors.New("mosquitto_passwd not found: install the Debian package mosquitto (make test-deps)")
		}
		for _, u := range o.Users {
			out, err := exec.Command(passwd, "-b", pw, u.Name, u.Password).CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		fmt.Fprintf(&conf, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	if o.ACL != "" {
		acl := filepath.Join(o.Dir, "acl")
		if err := os.WriteFile(acl, []byte(o.ACL), 0o600); err != nil {
			return nil, err
		}
		fmt.Fprintf(&conf, "acl_file %s\n", acl)
	}
	conf.WriteString(o.Extra)
	file := filepath.Join(o.Dir, "mosquitto.conf")
	if err := os.WriteFile(file, []byte(conf.String()), 0o600); err != nil {
		return nil, err
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", o.Port), opts: o, conf: file}
	return s, s.start()
}

func (s *Server) start() error {
	s.log = &syncBuf{}
	s.cmd = exec.Command(s.opts.Binary, "-c", s.conf)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("mosquitto: %w", err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("mosquitto exited at start: %s", s.log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("mosquitto: not listening on %s after 5 s: %s", s.Addr, s.log.String())
}

// Restart stops the broker and starts it again on the same port and
// config (with persistence, queued messages survive).
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// Pid is the broker's process id (for CPU accounting).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Log is what the broker wrote so far.
func (s *Server) Log() string { return s.log.String() }

// Stop ends this broker by its own PID (SIGTERM, then SIGKILL after 3 s).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		return len(p), nil // bounded: keep the first MiB
	}
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
