package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// The trivial MQTT sink (-peer sink, ceiling mode only): it accepts any
// CONNECT, reads PUBLISHes through a large buffer and answers each QoS 1
// one with a PUBACK, writing all PUBACKs for what it has read in one
// write. It runs as its own process (vaka-load -serve-sink), so the
// generator's CPU per event can be read apart from it: the generator's
// own ceiling.

// serveSink listens on loopback, prints its address and serves until its
// stdin closes (the parent went away) or maxLife passes.
func serveSink(stdout io.Writer) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "vaka-load sink:", err)
		return 1
	}
	fmt.Fprintln(stdout, ln.Addr().String())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		ln.Close()
	}()
	go func() {
		time.Sleep(maxDuration + 2*maxBehind)
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return 0
		}
		go sinkConn(c)
	}
}

func sinkConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, rawReadBuf)
	w := bufio.NewWriterSize(c, 64<<10)
	var body []byte
	for {
		h, err := r.ReadByte()
		if err != nil {
			return
		}
		n, err := readVarint(r)
		if err != nil || n > 1<<20 {
			return
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch h >> 4 {
		case 1: // CONNECT
			w.Write([]byte{0x20, 2, 0, 0})
		case 3: // PUBLISH
			if (h>>1)&3 == 1 && n >= 2 {
				tl := int(body[0])<<8 | int(body[1])
				if 2+tl+2 <= n {
					w.Write([]byte{0x40, 2, body[2+tl], body[3+tl]})
				}
			}
		case 12: // PINGREQ
			w.Write([]byte{0xd0, 0})
		case 14: // DISCONNECT
			w.Flush()
			return
		}
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// startSinkProcess runs this binary as the sink and returns its address.
func (p *peer) startSinkProcess(o options) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-serve-sink")
	cmd = pinned(cmd, o.PinSUT)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	p.closers = append(p.closers, func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("sink: no address: %w", err)
	}
	p.mqttAddr = strings.TrimSpace(line)
	p.pids = append(p.pids, cmd.Process.Pid)
	if p.mqttAddr == "" {
		return errors.New("sink: no address")
	}
	return nil
}
