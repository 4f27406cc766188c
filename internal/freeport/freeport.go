// Package freeport picks a loopback TCP port for a server that is started
// later: another process (Mosquitto, InfluxDB, the hub binary) or a config
// that must name its port before it listens.
//
// Why not listen on port 0 and pass that port on: Linux hands out port-0
// listeners and the source ports of outgoing connections from the same
// ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 by default),
// so between the close and the server's bind any connection made on the
// machine can take the port ("address already in use", seen in CI). A port
// below that range is only ever taken by another listener.
package freeport

import (
	"math/rand/v2"
	"net"
	"strconv"
)

// Where Addr looks first (below Linux's default ephemeral range), and how
// many ports it tries there.
const (
	rangeLow  = 20000
	rangeSize = 12000
	tries     = 64
)

// Addr returns "127.0.0.1:port" with a port that was free a moment ago,
// from below the ephemeral range if one is free there, else from the
// kernel (port 0).
func Addr() (string, error) {
	for range tries {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rangeLow+rand.IntN(rangeSize)))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Port is Addr's port number.
func Port() (int, error) {
	a, err := Addr()
	if err != nil {
		return 0, err
	}
	_, p, _ := net.SplitHostPort(a)
	return strconv.Atoi(p)
}
